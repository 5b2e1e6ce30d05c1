/* fetch.c: read a ledger whole, from a file or an http:// URL (libcurl). */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct growbuf {
	struct text t;
	size_t cap;
	bool too_big, no_memory;
};

static int grow_append(struct growbuf *b, const char *p, size_t n)
{
	if (n > FETCH_MAX_BYTES - b->t.len) {
		b->too_big = true;
		return -1;
	}
	if (b->t.len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->t.len + n + 1)
			cap *= 2;
		char *d = realloc(b->t.data, cap);
		if (!d) {
			b->no_memory = true;
			return -1;
		}
		b->t.data = d;
		b->cap = cap;
	}
	memcpy(b->t.data + b->t.len, p, n);
	b->t.len += n;
	b->t.data[b->t.len] = '\0';
	return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct growbuf *b = ud;
	size_t n = size * nmemb;
	/* returning less than n makes libcurl stop with CURLE_WRITE_ERROR */
	return grow_append(b, p, n) == 0 ? n : 0;
}

static int fetch_url(const char *url, struct growbuf *b, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "%s: cannot initialise libcurl", url);
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	/* a ledger URL that moved is a broken test setup, not something to follow */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		if (b->too_big)
			snprintf(err, errlen, "%s: larger than %zu bytes", url, FETCH_MAX_BYTES);
		else if (b->no_memory)
			snprintf(err, errlen, "%s: out of memory", url);
		else
			snprintf(err, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "%s: HTTP status %ld", url, status);
		return -1;
	}
	return 0;
}

static int fetch_file(const char *path, struct growbuf *b, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char chunk[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (grow_append(b, chunk, n) != 0) {
			snprintf(err, errlen, "%s: %s", path,
				 b->too_big ? "too large for a ledger" : "out of memory");
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		rc = -1;
	}
	fclose(f);
	return rc;
}

int fetch_source(const char *src, struct text *out, char *err, size_t errlen)
{
	struct growbuf b = {0};
	bool is_url = strncasecmp(src, "http://", 7) == 0 || strncasecmp(src, "https://", 8) == 0;
	int rc = is_url ? fetch_url(src, &b, err, errlen) : fetch_file(src, &b, err, errlen);
	if (rc == 0 && !b.t.data && grow_append(&b, "", 0) != 0) {
		snprintf(err, errlen, "%s: out of memory", src);
		rc = -1;
	}
	if (rc == 0 && memchr(b.t.data, '\0', b.t.len)) {
		snprintf(err, errlen, "%s: contains a NUL byte at offset %zu", src,
			 (size_t)((char *)memchr(b.t.data, '\0', b.t.len) - b.t.data));
		rc = -1;
	}
	if (rc != 0) {
		free(b.t.data);
		return -1;
	}
	*out = b.t;
	return 0;
}
