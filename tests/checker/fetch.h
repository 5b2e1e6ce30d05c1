/* fetch.h: read a ledger whole, from a file or an http:// URL (libcurl). */
#ifndef CHECKER_FETCH_H
#define CHECKER_FETCH_H

#include <stddef.h>

/* A NUL-terminated byte string owned by the caller (free(data)). */
struct text {
	char *data;
	size_t len;
};

/* Ledgers are test artefacts; anything bigger is a runaway, not a ledger. */
#define FETCH_MAX_BYTES ((size_t)1 << 30)

/* src: "http://..." or "https://..." (GET, 2xx only), else a file path.
 * Returns 0, or -1 with err naming the source and the problem. A NUL byte
 * in the data is refused: the text goes to the server as a C string, where
 * it would silently cut the ledger short. */
int fetch_source(const char *src, struct text *out, char *err, size_t errlen);

#endif
