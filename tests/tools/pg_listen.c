/* pg_listen: test tool. LISTENs on a channel for a while; on each
 * notification prints it and, if given, the value of a probe query run at
 * that moment (e.g. how many pending rows are visible). Blocking libpq is
 * fine here: this is not a daemon.
 *
 *   pg_listen CONNINFO CHANNEL SECONDS [PROBE_SQL]
 * prints "listening" once ready, then "notify <payload> <probe value>". */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: pg_listen CONNINFO CHANNEL SECONDS [PROBE_SQL]\n");
		return 2;
	}
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_listen: %s", PQerrorMessage(c));
		return 1;
	}
	/* The channel is an identifier (LISTEN takes no parameters): quote it. */
	char *chan = PQescapeIdentifier(c, argv[2], 64);
	char sql[128];
	snprintf(sql, sizeof(sql), "LISTEN %s", chan);
	PQfreemem(chan);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pg_listen: %s", PQerrorMessage(c));
		return 1;
	}
	PQclear(r);
	printf("listening\n");
	fflush(stdout);

	double deadline = now() + atof(argv[3]);
	while (now() < deadline) {
		int fd = PQsocket(c);
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(fd, &rd);
		struct timeval tv = {0, 100000};
		if (select(fd + 1, &rd, NULL, NULL, &tv) < 0)
			break;
		if (!PQconsumeInput(c)) {
			fprintf(stderr, "pg_listen: %s", PQerrorMessage(c));
			return 1;
		}
		PGnotify *n;
		while ((n = PQnotifies(c))) {
			const char *probe = "-";
			PGresult *pr = NULL;
			if (argc > 4) {
				pr = PQexecParams(c, argv[4], 0, NULL, NULL, NULL, NULL, 0);
				probe = PQresultStatus(pr) == PGRES_TUPLES_OK && PQntuples(pr) > 0
						? PQgetvalue(pr, 0, 0)
						: "error";
			}
			printf("notify %s %s\n", n->extra, probe);
			fflush(stdout);
			PQclear(pr);
			PQfreemem(n);
		}
	}
	PQfinish(c);
	return 0;
}
