/* notify_listen: test tool. Plays systemd's side of sd_notify: binds a Unix
 * datagram socket and appends every message it receives to a file, one
 * line per message (its newlines shown as spaces), each prefixed with the
 * monotonic time in seconds, so a test can check what arrived and when.
 * Blocking I/O is fine here: this is not a daemon.
 *
 *   notify_listen SOCKET_PATH OUT_FILE
 * creates OUT_FILE empty once the socket is bound, then runs until killed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: notify_listen SOCKET_PATH OUT_FILE\n");
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "notify_listen: socket path too long: %s\n", argv[1]);
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "notify_listen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		fprintf(stderr, "notify_listen: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	setvbuf(out, NULL, _IOLBF, 0);
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notify_listen: recv: %s\n", strerror(errno));
			return 1;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n' || buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fprintf(out, "%ld.%03ld %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000000, buf);
	}
}
