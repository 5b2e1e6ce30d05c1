/* json_escape.h: text as the inside of a JSON string, for log lines. */
#ifndef CG_JSON_ESCAPE_H
#define CG_JSON_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Write s, escaped for the inside of a JSON string, to out (cap bytes, NUL
 * included); returns the bytes written. Quotes, backslashes and control
 * characters are escaped; bytes that are not well-formed UTF-8 become
 * U+FFFD, so the result is always valid JSON text. Never cuts an escape or
 * a character in half: when s does not fit, *truncated is set. */
size_t json_escape(char *out, size_t cap, const char *s, bool *truncated);

#endif
