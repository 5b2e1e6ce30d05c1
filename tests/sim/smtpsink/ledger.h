/* ledger.h: the sink's own record of every message it received, one JSON
 * line each (flushed at once, so a test reads it while the sink runs), and
 * optionally each raw message as DIR/SEQ.eml. */
#ifndef SMTPSINK_LEDGER_H
#define SMTPSINK_LEDGER_H

#include "message.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ledger {
	pthread_mutex_t mu; /* guards seq and the file: lines stay whole */
	uint64_t seq;
	FILE *file;      /* NULL: no ledger */
	bool own_file;   /* false for stdout */
	char *maildir;   /* NULL: raw messages are not kept */
	bool failed;     /* a write failed: logged once */
};

struct ledger_entry {
	uint64_t seq;
	double t; /* unix seconds when the terminating '.' arrived */
	uint64_t conn;
	const char *mail_from; /* "" for the null reverse-path <> */
	char *const *rcpt;
	size_t nrcpt;
	const struct msg_headers *headers;
	size_t size; /* bytes after dot-unstuffing, CRLF line ends */
	bool acknowledged;
};

/* path NULL: no ledger; "-": stdout. maildir is created if missing (one
 * level). 0, or -1 with err set. */
int ledger_open(struct ledger *l, const char *path, const char *maildir, char *err,
		size_t errlen);
void ledger_close(struct ledger *l);

/* The next message number, from 1. */
uint64_t ledger_next_seq(struct ledger *l);

/* Write msg as DIR/SEQ.eml (via a temporary name, so a reader never sees
 * half a file); no-op without --maildir. 0 or -1 (logged). */
int ledger_store_raw(struct ledger *l, uint64_t seq, const char *msg, size_t len);

/* Append the entry's line and flush. 0 or -1 (logged). */
int ledger_append(struct ledger *l, const struct ledger_entry *e);

#endif
