/* hostport.c: parse a numeric listen address (inet_pton: never DNS). */
#include "hostport.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(const char *flag, const char *s, const char *what, char *why, size_t whylen)
{
	snprintf(why, whylen,
		 "%s '%s': %s; expected a numeric HOST:PORT such as 127.0.0.1:9100 or "
		 "[::1]:9100 (host names are not resolved: no DNS on the event loop)",
		 flag, s, what);
	return -1;
}

int hostport_parse(const char *flag, const char *s, struct hostport *out, char *why,
		   size_t whylen)
{
	memset(out, 0, sizeof(*out));
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon)
		return refuse(flag, s, "no ':PORT'", why, whylen);
	size_t hlen = (size_t)(colon - s);
	if (s[0] == '[') { /* [v6]:port */
		if (hlen < 2 || s[hlen - 1] != ']')
			return refuse(flag, s, "an IPv6 address needs brackets", why, whylen);
		hlen -= 2;
		memcpy(host, s + 1, hlen < sizeof(host) ? hlen : 0);
	} else {
		if (memchr(s, ':', hlen))
			return refuse(flag, s, "an IPv6 address needs brackets", why, whylen);
		memcpy(host, s, hlen < sizeof(host) ? hlen : 0);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return refuse(flag, s, "no HOST", why, whylen);
	host[hlen] = '\0';

	const char *port = colon + 1;
	char *end;
	long p = strtol(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || p < 0 || p > 65535)
		return refuse(flag, s, "PORT must be a number from 0 to 65535", why, whylen);

	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
	if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		out->len = sizeof(*v4);
		out->family = AF_INET;
	} else if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*v6);
		out->family = AF_INET6;
	} else {
		return refuse(flag, s, "HOST is not a numeric IPv4 or IPv6 address", why, whylen);
	}
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 0;
}
