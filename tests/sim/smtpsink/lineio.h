/* lineio.h: bounded line reading and reply writing on a blocking socket
 * (the socket's SO_RCVTIMEO / SO_SNDTIMEO bound the waits). */
#ifndef SMTPSINK_LINEIO_H
#define SMTPSINK_LINEIO_H

#include <stdbool.h>
#include <stddef.h>

struct lineio {
	int fd;
	size_t start, end; /* unread bytes are buf[start..end) */
	char buf[16384];
};

enum lio_result {
	LIO_LINE = 1,     /* a line was read */
	LIO_EOF = 0,      /* the peer closed (a partial last line is dropped) */
	LIO_ERROR = -1,   /* errno says why */
	LIO_TIMEOUT = -2, /* nothing within the socket's receive timeout */
};

void lio_init(struct lineio *io, int fd);

/* Read one line, ending at LF (a CR before it is dropped: RFC 5321 wants
 * CRLF, but lenient readers are the norm and bare LF is not our test's
 * subject). line gets at most cap-1 bytes and a NUL; *len is the length
 * without CRLF. A longer line is read to its end anyway, *too_long set and
 * the first cap-1 bytes kept, so the session stays in step. The CR counts
 * against cap before it is dropped: for lines of up to L bytes, pass L+2. */
enum lio_result lio_read_line(struct lineio *io, char *line, size_t cap, size_t *len,
			      bool *too_long);

/* Write all of s; 0, or -1 (errno) when the peer is gone or stopped reading. */
int lio_write(struct lineio *io, const char *s, size_t n);

/* Write one reply line: the formatted text and CRLF (bounded to 1 KiB). */
int lio_reply(struct lineio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
