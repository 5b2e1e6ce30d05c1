/* lineio.c: bounded line reading and reply writing on a blocking socket. */
#include "lineio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void lio_init(struct lineio *io, int fd)
{
	io->fd = fd;
	io->start = io->end = 0;
}

static enum lio_result fill(struct lineio *io)
{
	for (;;) {
		ssize_t n = recv(io->fd, io->buf, sizeof(io->buf), 0);
		if (n > 0) {
			io->start = 0;
			io->end = (size_t)n;
			return LIO_LINE;
		}
		if (n == 0)
			return LIO_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return LIO_TIMEOUT;
		return LIO_ERROR;
	}
}

enum lio_result lio_read_line(struct lineio *io, char *line, size_t cap, size_t *len,
			      bool *too_long)
{
	size_t kept = 0;
	bool over = false;
	for (;;) {
		if (io->start == io->end) {
			enum lio_result r = fill(io);
			if (r != LIO_LINE)
				return r;
		}
		const char *from = io->buf + io->start;
		size_t avail = io->end - io->start;
		const char *nl = memchr(from, '\n', avail);
		size_t take = nl ? (size_t)(nl - from) : avail;
		size_t room = cap - 1 - kept;
		if (take > room) {
			over = true;
			memcpy(line + kept, from, room);
			kept += room;
		} else {
			memcpy(line + kept, from, take);
			kept += take;
		}
		io->start += take;
		if (nl) {
			io->start++; /* the LF */
			/* an over-long line is refused whole, its ending does not matter */
			if (!over && kept > 0 && line[kept - 1] == '\r')
				kept--;
			line[kept] = '\0';
			*len = kept;
			*too_long = over;
			return LIO_LINE;
		}
	}
}

int lio_write(struct lineio *io, const char *s, size_t n)
{
	while (n > 0) {
		/* MSG_NOSIGNAL: a vanished client is an error code, not SIGPIPE */
		ssize_t w = send(io->fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int lio_reply(struct lineio *io, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	size_t len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 3;
	line[len++] = '\r';
	line[len++] = '\n';
	return lio_write(io, line, len);
}
