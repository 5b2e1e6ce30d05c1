/* utf8.h: one well-formed UTF-8 character at a time. */
#ifndef CG_UTF8_H
#define CG_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at s (1 for ASCII and for the
 * terminating NUL), or 0 when the bytes there are not one: invalid,
 * overlong, a surrogate, beyond U+10FFFF, or cut off by the string's end. */
size_t utf8_char_len(const char *s);

#endif
