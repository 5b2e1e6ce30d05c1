/* message.h: what the ledger needs from a received message's header
 * section: Message-ID, Subject and To, unfolded, as valid UTF-8. */
#ifndef SMTPSINK_MESSAGE_H
#define SMTPSINK_MESSAGE_H

#include <stddef.h>

struct msg_headers {
	char *message_id; /* NULL when the header is absent; else owned */
	char *subject;
	char *to;
};

/* Scan the header section of msg (CRLF line ends, already dot-unstuffed)
 * up to its first empty line. Names match case-insensitively; the first
 * occurrence wins; folded lines are unfolded (CRLF removed, the blanks kept,
 * RFC 5322 2.2.3); values are trimmed, left MIME-encoded, and made valid
 * UTF-8. 0, or -1 when out of memory (*out then holds nothing). */
int msg_headers_parse(const char *msg, size_t len, struct msg_headers *out);
void msg_headers_free(struct msg_headers *h);

/* A NUL-terminated copy of s[0..n) that is valid UTF-8 for JSON: each byte
 * of an invalid sequence, and each NUL, becomes U+FFFD. NULL: out of memory. */
char *utf8_sanitize(const char *s, size_t n);

#endif
