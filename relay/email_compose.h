/* email_compose.h: the text of a notification email (RFC 5322, CRLF). */
#ifndef RELAY_EMAIL_COMPOSE_H
#define RELAY_EMAIL_COMPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct email_fields {
	int64_t id;          /* outbox row: Message-ID <outbox-ID@domain> */
	int64_t invoice_id;
	const char *template; /* receipt | decline_notice | failure_notice */
	const char *recipient;
	const char *from;
	const char *domain;
	int64_t amount_cents;
	const char *currency;
	const char *gateway_ref; /* may be "" */
	time_t date;
};

/* A plain address (no display name, no control characters or specials):
 * anything else could smuggle headers or recipients in. */
int email_address_ok(const char *address);

/* The whole message, malloc'd; NULL with why (bad recipient, unknown
 * template, out of memory). */
char *email_compose(const struct email_fields *f, char *why, size_t whylen);

/* "19.99 USD", "1999 JPY" (zero-decimal currencies). */
void email_format_amount(int64_t cents, const char *currency, char *buf, size_t len);

#endif
