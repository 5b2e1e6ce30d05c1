/* message.c: Message-ID, Subject and To out of a message's header section. */
#include "message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned min, cp;
	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	/* overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8 */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

char *utf8_sanitize(const char *s, size_t n)
{
	/* worst case: every byte becomes the 3-byte U+FFFD */
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(u + i, n - i);
		if (k) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The header being collected: where its value's pieces are. */
struct collecting {
	char **slot;   /* the field of msg_headers it will fill, or NULL */
	char *buf;     /* unfolded value so far */
	size_t len, cap;
};

static int append(struct collecting *c, const char *s, size_t n)
{
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 128;
		while (cap < c->len + n + 1)
			cap *= 2;
		char *p = realloc(c->buf, cap);
		if (!p)
			return -1;
		c->buf = p;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, s, n);
	c->len += n;
	return 0;
}

/* Store the collected value (trimmed, sanitised) in its slot. */
static int finish(struct collecting *c)
{
	if (!c->slot)
		return 0;
	size_t a = 0, b = c->len;
	while (a < b && is_wsp(c->buf[a]))
		a++;
	while (b > a && is_wsp(c->buf[b - 1]))
		b--;
	char *v = utf8_sanitize(c->buf ? c->buf + a : "", b - a);
	if (!v)
		return -1;
	*c->slot = v;
	c->slot = NULL;
	c->len = 0;
	return 0;
}

static char **slot_for(struct msg_headers *h, const char *name, size_t n)
{
	static const struct {
		const char *name;
		size_t off;
	} wanted[] = {
		{"message-id", offsetof(struct msg_headers, message_id)},
		{"subject", offsetof(struct msg_headers, subject)},
		{"to", offsetof(struct msg_headers, to)},
	};
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (strlen(wanted[i].name) == n && strncasecmp(wanted[i].name, name, n) == 0) {
			char **slot = (char **)((char *)h + wanted[i].off);
			return *slot ? NULL : slot; /* the first occurrence wins */
		}
	}
	return NULL;
}

int msg_headers_parse(const char *msg, size_t len, struct msg_headers *out)
{
	memset(out, 0, sizeof(*out));
	struct collecting c = {0};
	size_t pos = 0;
	while (pos < len) {
		const char *line = msg + pos;
		const char *crlf = memchr(line, '\n', len - pos);
		size_t n = crlf ? (size_t)(crlf - line) : len - pos;
		pos += crlf ? n + 1 : n;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break; /* end of the header section */
		if (is_wsp(line[0])) {
			/* a folded continuation: unfolding removes only the CRLF */
			if (c.slot && append(&c, line, n) != 0)
				goto fail;
			continue;
		}
		if (finish(&c) != 0)
			goto fail;
		const char *colon = memchr(line, ':', n);
		if (!colon)
			continue; /* not a header field: ignored, like most readers do */
		size_t name_len = (size_t)(colon - line);
		/* obsolete syntax (RFC 5322 4.5) allows blanks before the colon */
		while (name_len > 0 && is_wsp(line[name_len - 1]))
			name_len--;
		c.slot = slot_for(out, line, name_len);
		if (c.slot && append(&c, colon + 1, n - (size_t)(colon + 1 - line)) != 0)
			goto fail;
	}
	if (finish(&c) != 0)
		goto fail;
	free(c.buf);
	return 0;
fail:
	free(c.buf);
	msg_headers_free(out);
	return -1;
}

void msg_headers_free(struct msg_headers *h)
{
	free(h->message_id);
	free(h->subject);
	free(h->to);
	memset(h, 0, sizeof(*h));
}
