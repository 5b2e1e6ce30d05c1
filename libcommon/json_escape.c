/* json_escape.c: JSON string escaping (RFC 8259, section 7). */
#include "json_escape.h"

#include "utf8.h"

#include <stdio.h>
#include <string.h>

size_t json_escape(char *out, size_t cap, const char *s, bool *truncated)
{
	size_t len = 0;
	*truncated = false;
	if (cap == 0)
		return 0;
	while (*s) {
		char esc[8];
		const char *piece = esc;
		size_t n = utf8_char_len(s), adv = n;
		unsigned char c = (unsigned char)*s;
		if (n == 0) { /* not UTF-8: one byte becomes U+FFFD */
			piece = "\\ufffd";
			n = 6;
			adv = 1;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, n = 2;
		} else if (c == '\n') {
			piece = "\\n", n = 2;
		} else if (c == '\r') {
			piece = "\\r", n = 2;
		} else if (c == '\t') {
			piece = "\\t", n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			n = 6;
		} else {
			piece = s; /* one whole character, copied as it is */
		}
		if (len + n + 1 > cap) {
			*truncated = true;
			break;
		}
		memcpy(out + len, piece, n);
		len += n;
		s += adv;
	}
	out[len] = '\0';
	return len;
}
