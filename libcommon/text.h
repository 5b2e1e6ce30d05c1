/* text.h: making outside text safe to store. */
#ifndef CG_TEXT_H
#define CG_TEXT_H

/* In place: every byte that is not part of a well-formed UTF-8 sequence
 * (invalid, overlong, surrogate, beyond U+10FFFF, or cut off at the end by a
 * truncation) becomes '?', and control characters become ' ', so the text
 * can go into JSON, a database column and a log line. */
void utf8_sanitize(char *s);

#endif
