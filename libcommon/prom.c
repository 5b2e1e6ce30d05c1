/* prom.c: Prometheus text exposition builder. */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(struct prom_buf *b) { memset(b, 0, sizeof(*b)); }

void prom_free(struct prom_buf *b)
{
	free(b->data);
	prom_init(b);
}

char *prom_take(struct prom_buf *b, size_t *len)
{
	char *text = b->error[0] ? NULL : b->data ? b->data : calloc(1, 1);
	if (b->error[0])
		free(b->data);
	else if (text)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return text;
}

static void fail(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct prom_buf *b, const char *fmt, ...)
{
	if (b->error[0])
		return; /* keep the first reason */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->error, sizeof(b->error), fmt, ap);
	va_end(ap);
}

static bool reserve(struct prom_buf *b, size_t more)
{
	if (b->error[0])
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		fail(b, "out of memory");
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void puts_(struct prom_buf *b, const char *s) { put(b, s, strlen(s)); }

/* HELP text escapes backslash and newline; label values also the double
 * quote (the exposition format's two escaping rules). */
static void put_escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\", 2);
		else if (*s == '\n')
			put(b, "\\n", 2);
		else if (*s == '"' && quote)
			put(b, "\\\"", 2);
		else
			put(b, s, 1);
	}
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (colon && c == ':');
		if (!alpha && !(p > s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

bool prom_metric_name_ok(const char *name) { return name_ok(name, true); }

/* "__" names are reserved for Prometheus itself. */
bool prom_label_name_ok(const char *name)
{
	return name_ok(name, false) && strncmp(name, "__", 2) != 0;
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	if (!prom_metric_name_ok(name)) {
		fail(b, "bad metric name '%.60s'", name ? name : "(null)");
		return;
	}
	if (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0 &&
	    strcmp(type, "histogram") != 0) {
		fail(b, "%s: bad metric type '%.20s'", name, type);
		return;
	}
	puts_(b, "# HELP ");
	puts_(b, name);
	put(b, " ", 1);
	put_escaped(b, help, false);
	puts_(b, "\n# TYPE ");
	puts_(b, name);
	put(b, " ", 1);
	puts_(b, type);
	put(b, "\n", 1);
}

/* name{a="x",b="y"  -- without the closing brace, so `le` can follow. */
static void open_sample(struct prom_buf *b, const char *name, const char *suffix,
			const char *const *labels, bool *any)
{
	*any = false;
	if (!prom_metric_name_ok(name)) {
		fail(b, "bad metric name '%.60s'", name ? name : "(null)");
		return;
	}
	puts_(b, name);
	puts_(b, suffix);
	for (int i = 0; labels && labels[i]; i += 2) {
		if (!prom_label_name_ok(labels[i]) || !labels[i + 1]) {
			fail(b, "%s: bad label '%.40s' or missing value", name, labels[i]);
			return;
		}
		put(b, *any ? "," : "{", 1);
		puts_(b, labels[i]);
		put(b, "=\"", 2);
		put_escaped(b, labels[i + 1], true);
		put(b, "\"", 1);
		*any = true;
	}
}

/* Integers print exactly (a counter past 2^53 still prints digits, not
 * an exponent); the format's spellings of the special values. */
static void format_number(char *out, size_t len, double v)
{
	if (isnan(v))
		snprintf(out, len, "NaN");
	else if (isinf(v))
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.17g", v);
}

static void close_sample(struct prom_buf *b, bool any, const char *value)
{
	if (any)
		put(b, "}", 1);
	put(b, " ", 1);
	puts_(b, value);
	put(b, "\n", 1);
}

void prom_value(struct prom_buf *b, const char *name, const char *const *labels, double v)
{
	char num[40];
	bool any;
	format_number(num, sizeof(num), v);
	open_sample(b, name, "", labels, &any);
	close_sample(b, any, num);
}

void prom_count(struct prom_buf *b, const char *name, const char *const *labels, uint64_t v)
{
	char num[24];
	bool any;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	open_sample(b, name, "", labels, &any);
	close_sample(b, any, num);
}

void prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t v)
{
	prom_family(b, name, "counter", help);
	prom_count(b, name, NULL, v);
}

void prom_gauge(struct prom_buf *b, const char *name, const char *help, double v)
{
	prom_family(b, name, "gauge", help);
	prom_value(b, name, NULL, v);
}

int prom_hist_init(struct prom_histogram *h, const double *bounds, int n)
{
	memset(h, 0, sizeof(*h));
	if (n < 1 || n > PROM_MAX_BUCKETS)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return -1;
		h->bounds[i] = bounds[i];
	}
	h->n = n;
	return 0;
}

void prom_hist_observe(struct prom_histogram *h, double v)
{
	int i = 0;
	while (i < h->n && v > h->bounds[i]) /* le: "less than or equal" */
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

void prom_hist_write(struct prom_buf *b, const char *name, const char *const *labels,
		     const struct prom_histogram *h)
{
	uint64_t cum = 0;
	char le[40], num[24];
	bool any;
	for (int i = 0; i <= h->n; i++) {
		cum += h->counts[i];
		if (i < h->n)
			snprintf(le, sizeof(le), "%.15g", h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		open_sample(b, name, "_bucket", labels, &any);
		put(b, any ? "," : "{", 1);
		puts_(b, "le=\"");
		puts_(b, le);
		put(b, "\"", 1);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
		close_sample(b, true, num);
	}
	format_number(le, sizeof(le), h->sum);
	open_sample(b, name, "_sum", labels, &any);
	close_sample(b, any, le);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)h->count);
	open_sample(b, name, "_count", labels, &any);
	close_sample(b, any, num);
}
