/* replay_main.c: a harness without libFuzzer (gcc, ASan+UBSan, valgrind):
 * runs LLVMFuzzerTestOneInput once on every file of the directories (or
 * files) given, in name order, and prints one TAP line per argument. A
 * crash or a violated property aborts the run, which the suite counts as
 * a failure (the plan is printed first). */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Each input in a buffer of exactly its size, so ASan sees a read past it. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	int ok = buf && fread(buf, 1, len, f) == len;
	fclose(f);
	if (!ok) {
		free(buf);
		fprintf(stderr, "%s: cannot read\n", path);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir; the number replayed, or -1. */
static long replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	long done = 0;
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (done >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			done = replay_file(path) == 0 ? done + 1 : -1;
		free(names[i]);
	}
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	printf("1..%d\n", argc - 1);
	fflush(stdout);
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long n = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? replay_dir(argv[i])
			 : replay_file(argv[i]) == 0                    ? 1
									: -1;
		/* an empty corpus proves nothing */
		printf("%s %d - %s: %ld input(s) replayed\n", n > 0 ? "ok" : "not ok", i, argv[i], n);
		fflush(stdout);
		failed |= n <= 0;
	}
	return failed;
}
