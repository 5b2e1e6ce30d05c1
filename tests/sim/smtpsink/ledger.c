/* ledger.c: the sink's JSON-lines ledger and its optional raw message store. */
#include "ledger.h"

#include "sinklog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ledger_open(struct ledger *l, const char *path, const char *maildir, char *err,
		size_t errlen)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	if (path && strcmp(path, "-") == 0) {
		l->file = stdout;
	} else if (path) {
		/* truncated: one run, one ledger, seq from 1 */
		l->file = fopen(path, "w");
		if (!l->file) {
			snprintf(err, errlen, "--ledger %s: cannot open: %s", path, strerror(errno));
			goto fail;
		}
		l->own_file = true;
	}
	if (maildir) {
		if (mkdir(maildir, 0777) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "--maildir %s: cannot create: %s", maildir,
				 strerror(errno));
			goto fail;
		}
		struct stat st;
		if (stat(maildir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "--maildir %s: not a directory", maildir);
			goto fail;
		}
		l->maildir = strdup(maildir);
		if (!l->maildir) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return 0;
fail:
	ledger_close(l);
	return -1;
}

void ledger_close(struct ledger *l)
{
	if (l->file && l->own_file)
		fclose(l->file);
	else if (l->file)
		fflush(l->file);
	l->file = NULL;
	free(l->maildir);
	l->maildir = NULL;
	pthread_mutex_destroy(&l->mu);
}

uint64_t ledger_next_seq(struct ledger *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t seq = ++l->seq;
	pthread_mutex_unlock(&l->mu);
	return seq;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int ledger_store_raw(struct ledger *l, uint64_t seq, const char *msg, size_t len)
{
	if (!l->maildir)
		return 0;
	char tmp[PATH_MAX], final[PATH_MAX];
	int a = snprintf(tmp, sizeof(tmp), "%s/.%llu.eml.tmp", l->maildir,
			 (unsigned long long)seq);
	int b = snprintf(final, sizeof(final), "%s/%llu.eml", l->maildir,
			 (unsigned long long)seq);
	if (a < 0 || b < 0 || (size_t)a >= sizeof(tmp) || (size_t)b >= sizeof(final)) {
		slog_error("seq=%llu: maildir path too long", (unsigned long long)seq);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		slog_error("seq=%llu: cannot create %s: %s", (unsigned long long)seq, tmp,
			   strerror(errno));
		return -1;
	}
	int rc = write_all(fd, msg, len);
	int saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && rename(tmp, final) != 0) {
		rc = -1;
		saved = errno;
	}
	if (rc != 0) {
		slog_error("seq=%llu: cannot write %s: %s", (unsigned long long)seq, final,
			   strerror(saved));
		unlink(tmp);
	}
	return rc;
}

/* A string, or JSON null when absent. */
static cJSON *string_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *rcpt_array(char *const *rcpt, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *r = cJSON_CreateString(rcpt[i]);
		if (!r || !cJSON_AddItemToArray(a, r)) {
			cJSON_Delete(r);
			cJSON_Delete(a);
			a = NULL;
		}
	}
	return a;
}

static char *entry_json(const struct ledger_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	/* in the order the README lists the fields, so lines read alike */
	static const char *const names[] = {"seq",        "t",       "conn", "mail_from", "rcpt",
					    "message_id", "subject", "to",   "size",      "acknowledged"};
	cJSON *items[] = {
		cJSON_CreateNumber((double)e->seq),
		cJSON_CreateNumber(e->t),
		cJSON_CreateNumber((double)e->conn),
		cJSON_CreateString(e->mail_from),
		rcpt_array(e->rcpt, e->nrcpt),
		string_or_null(e->headers->message_id),
		string_or_null(e->headers->subject),
		string_or_null(e->headers->to),
		cJSON_CreateNumber((double)e->size),
		cJSON_CreateBool(e->acknowledged),
	};
	bool ok = true;
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		/* once one fails, the rest are freed here, not leaked */
		if (!ok || !items[i] || !cJSON_AddItemToObject(o, names[i], items[i])) {
			ok = false;
			cJSON_Delete(items[i]);
		}
	}
	char *out = ok ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return out;
}

int ledger_append(struct ledger *l, const struct ledger_entry *e)
{
	if (!l->file)
		return 0;
	char *line = entry_json(e);
	if (!line) {
		slog_error("seq=%llu: out of memory building the ledger line",
			   (unsigned long long)e->seq);
		return -1;
	}
	pthread_mutex_lock(&l->mu);
	int rc = 0;
	if (fputs(line, l->file) == EOF || fputc('\n', l->file) == EOF || fflush(l->file) != 0) {
		rc = -1;
		if (!l->failed)
			slog_error("seq=%llu: cannot write the ledger: %s",
				   (unsigned long long)e->seq, strerror(errno));
		l->failed = true;
	}
	pthread_mutex_unlock(&l->mu);
	free(line);
	return rc;
}
