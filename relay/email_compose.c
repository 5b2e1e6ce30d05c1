/* email_compose.c: notification texts. Headers are built only from values
 * checked here: a customer's address or a gateway reference holding CR/LF
 * cannot add a header or a recipient. */
#include "email_compose.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int email_address_ok(const char *a)
{
	const char *at = a ? strchr(a, '@') : NULL;
	if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 254)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == 0x7f || strchr("<>,;\"\\()[]:", *a))
			return 0;
	return 1;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

void email_format_amount(int64_t cents, const char *currency, char *buf, size_t len)
{
	/* Stripe's zero-decimal currencies: the amount is in whole units. */
	static const char *const zero_decimal[] = {"bif", "clp", "djf", "gnf", "jpy", "kmf",
						   "krw", "mga", "pyg", "rwf", "ugx", "vnd",
						   "vuv", "xaf", "xof", "xpf", NULL};
	char upper[4] = "";
	for (size_t i = 0; i < 3 && currency[i]; i++) {
		upper[i] = (char)toupper((unsigned char)currency[i]);
		upper[i + 1] = '\0';
	}
	for (int i = 0; zero_decimal[i]; i++) {
		if (strcmp(currency, zero_decimal[i]) == 0) {
			snprintf(buf, len, "%" PRId64 " %s", cents, upper);
			return;
		}
	}
	int64_t whole = cents / 100, part = cents % 100;
	snprintf(buf, len, "%s%" PRId64 ".%02" PRId64 " %s", cents < 0 ? "-" : "",
		 whole < 0 ? -whole : whole, part < 0 ? -part : part, upper);
}

/* RFC 5322 date, independent of the locale. */
static void format_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *email_compose(const struct email_fields *f, char *why, size_t whylen)
{
	if (!email_address_ok(f->recipient)) {
		snprintf(why, whylen, "invalid recipient address");
		return NULL;
	}
	if (!printable(f->gateway_ref) || !printable(f->domain) || !email_address_ok(f->from)) {
		snprintf(why, whylen, "a header value holds a control character");
		return NULL;
	}
	char amount[48], date[64], subject[128], body[768];
	email_format_amount(f->amount_cents, f->currency, amount, sizeof(amount));
	format_date(f->date, date, sizeof(date));
	long long inv = (long long)f->invoice_id;
	if (strcmp(f->template, "receipt") == 0) {
		snprintf(subject, sizeof(subject), "Receipt for invoice %lld", inv);
		snprintf(body, sizeof(body),
			 "Thank you for your payment.\r\n\r\n"
			 "We charged %s to your payment method for invoice %lld.\r\n"
			 "Payment reference: %s\r\n",
			 amount, inv, f->gateway_ref[0] ? f->gateway_ref : "-");
	} else if (strcmp(f->template, "decline_notice") == 0) {
		snprintf(subject, sizeof(subject), "Payment for invoice %lld was declined", inv);
		snprintf(body, sizeof(body),
			 "We tried to charge %s for invoice %lld, and your card was declined.\r\n"
			 "We will try again later. You may also update your payment method.\r\n",
			 amount, inv);
	} else if (strcmp(f->template, "failure_notice") == 0) {
		snprintf(subject, sizeof(subject), "We could not charge invoice %lld", inv);
		snprintf(body, sizeof(body),
			 "We could not charge %s for invoice %lld; you were not charged.\r\n"
			 "We will try again later.\r\n",
			 amount, inv);
	} else {
		snprintf(why, whylen, "unknown template '%s'", printable(f->template) ? f->template : "?");
		return NULL;
	}
	size_t cap = 2048 + strlen(body);
	char *msg = malloc(cap);
	if (!msg) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	int n = snprintf(msg, cap,
			 "From: %s\r\n"
			 "To: %s\r\n"
			 "Subject: %s\r\n"
			 "Date: %s\r\n"
			 "Message-ID: <outbox-%lld@%s>\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Transfer-Encoding: 8bit\r\n"
			 "\r\n"
			 "%s",
			 f->from, f->recipient, subject, date, (long long)f->id, f->domain, body);
	if (n < 0 || (size_t)n >= cap) {
		free(msg);
		snprintf(why, whylen, "message too long");
		return NULL;
	}
	return msg;
}
