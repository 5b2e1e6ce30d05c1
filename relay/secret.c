/* secret.c: load the gateway key. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_key(char *key, char *why, size_t whylen)
{
	size_t n = strlen(key);
	while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' '))
		key[--n] = '\0';
	if (n == 0) {
		snprintf(why, whylen, "the gateway key is empty");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (key[i] <= ' ' || key[i] > '~') {
			snprintf(why, whylen, "the gateway key holds a blank or non-printable character");
			return -1;
		}
	}
	return 0;
}

int secret_load(const char *path, const char *env, char *key, size_t len, char *why,
		size_t whylen)
{
	key[0] = '\0';
	if (!path || !*path) {
		const char *v = getenv(env);
		if (!v || !*v) {
			snprintf(why, whylen, "no gateway key: give --gateway-key-file or set %s", env);
			return -1;
		}
		if (strlen(v) >= len) {
			snprintf(why, whylen, "%s is too long", env);
			return -1;
		}
		memcpy(key, v, strlen(v) + 1);
		return check_key(key, why, whylen);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "gateway key file %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "gateway key file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, whylen,
			 "gateway key file %s may be read by group or others (mode %04o): chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	ssize_t n = read(fd, key, len - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "gateway key file %s: %s", path, strerror(errno));
		return -1;
	}
	if ((size_t)n == len - 1) {
		snprintf(why, whylen, "gateway key file %s is too long", path);
		return -1;
	}
	key[n] = '\0';
	if (memchr(key, '\0', (size_t)n)) {
		snprintf(why, whylen, "gateway key file %s holds a NUL byte", path);
		return -1;
	}
	return check_key(key, why, whylen);
}

void secret_scrub_env(const char *env)
{
	char *v = getenv(env);
	if (v)
		memset(v, 'x', strlen(v));
	unsetenv(env);
}
