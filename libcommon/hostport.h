/* hostport.h: a listen address given as numeric HOST:PORT. No name is
 * ever resolved: a daemon's event loop must not wait on DNS. */
#ifndef CG_HOSTPORT_H
#define CG_HOSTPORT_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

struct hostport {
	struct sockaddr_storage addr;
	socklen_t len;
	int family; /* AF_INET or AF_INET6 */
	char text[64]; /* as given, for log lines */
};

/* "127.0.0.1:9100", "0.0.0.0:9100", "[::1]:9100"; port 0 = any free port.
 * 0, or -1 with one line in why that names `flag` and the accepted form. */
int hostport_parse(const char *flag, const char *s, struct hostport *out, char *why,
		   size_t whylen);

#endif
