/* prom.h: building Prometheus text exposition (format 0.0.4) in memory.
 *
 * Counters and histograms are plain numbers bumped where events happen;
 * the text is built only when someone scrapes, into a growable buffer.
 * Metric and label names are checked (a bad one is a programming error and
 * fails the whole buffer, visibly); label values and HELP text are escaped
 * as the format requires. Numbers are printed with '.' (the daemons never
 * call setlocale). */
#ifndef CG_PROM_H
#define CG_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_buf {
	char *data;
	size_t len, cap;
	char error[128]; /* set once: out of memory, or a bad name */
};

void prom_init(struct prom_buf *b);
void prom_free(struct prom_buf *b);
/* The text (NUL-terminated, caller frees) and its length; NULL when the
 * buffer failed (b->error says why). The buffer is empty afterwards. */
char *prom_take(struct prom_buf *b, size_t *len);

/* "# HELP name help" and "# TYPE name type"; type is counter, gauge or
 * histogram. Write it once, before the family's samples. */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);

/* One sample. labels: NULL, or name/value pairs ending with NULL:
 * (const char *[]){"kind", "charge", "state", "pending", NULL}. */
void prom_value(struct prom_buf *b, const char *name, const char *const *labels, double v);
void prom_count(struct prom_buf *b, const char *name, const char *const *labels, uint64_t v);

/* A family with its one unlabelled sample. */
void prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t v);
void prom_gauge(struct prom_buf *b, const char *name, const char *help, double v);

/* A histogram: upper bounds ascending, counts per bucket (the last one is
 * +Inf); cumulative counts are computed when written. */
#define PROM_MAX_BUCKETS 20
struct prom_histogram {
	int n;
	double bounds[PROM_MAX_BUCKETS];
	uint64_t counts[PROM_MAX_BUCKETS + 1];
	double sum;
	uint64_t count;
};

/* n bounds, strictly ascending, finite, n <= PROM_MAX_BUCKETS: -1 if not. */
int prom_hist_init(struct prom_histogram *h, const double *bounds, int n);
void prom_hist_observe(struct prom_histogram *h, double v);
/* name_bucket{...,le="..."} (cumulative, ending with le="+Inf"),
 * name_sum and name_count. */
void prom_hist_write(struct prom_buf *b, const char *name, const char *const *labels,
		     const struct prom_histogram *h);

/* Is this a valid metric name / label name? */
bool prom_metric_name_ok(const char *name);
bool prom_label_name_ok(const char *name);

#endif
