/* text.c: outside text made safe to store. */
#include "text.h"

#include "utf8.h"

#include <stddef.h>

void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = utf8_char_len((const char *)p);
		if (n == 0) {
			*p++ = '?';
		} else if (n == 1) {
			if (*p < 0x20 || *p == 0x7f)
				*p = ' ';
			p++;
		} else {
			p += n;
		}
	}
}
