/* main.c: gatewaysim's entry point: options, signals, the server's life. */
#include "http.h"
#include "log.h"
#include "options.h"
#include "sim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Each connection costs a descriptor: lift the soft limit to the hard one
 * so that thousands of connections are not refused at 1024. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			sim_log(LOG_LEVEL_WARN, "cannot raise the descriptor limit: %s",
				strerror(errno));
	}
}

/* Write "PORT\n" to a temporary file, then rename it into place: whoever
 * polls for the file never reads it half-written. */
static int write_ready_file(const char *path, int port, char *err, size_t errlen)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	if (!tmp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "w");
	int rc = -1;
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
	} else {
		bool ok = fprintf(f, "%d\n", port) > 0;
		ok = fclose(f) == 0 && ok;
		if (!ok)
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		else if (rename(tmp, path) != 0)
			snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
				 strerror(errno));
		else
			rc = 0;
		if (rc != 0)
			unlink(tmp);
	}
	free(tmp);
	return rc;
}

static uint64_t default_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 32);
}

int main(int argc, char **argv)
{
	struct options opt = {0};
	char err[512];
	switch (options_parse(&opt, argc, argv, err, sizeof(err))) {
	case OPTIONS_HELP:
		options_print_help(stdout);
		options_free(&opt);
		return 0;
	case OPTIONS_VERSION:
		printf("gatewaysim (chargeguard) %s\n", CG_VERSION);
		options_free(&opt);
		return 0;
	case OPTIONS_ERROR:
		fprintf(stderr, "gatewaysim: %s\n", err);
		options_free(&opt);
		return 2;
	case OPTIONS_OK:
		break;
	}
	log_init("gatewaysim", opt.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (!opt.seed_given)
		opt.seed = default_seed();

	/* Signals are taken synchronously by this thread (sigwait): block them
	 * before any thread exists, so every thread inherits the mask and no
	 * connection thread is ever interrupted by one. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	int fault_flags = (int)opt.faults.count;
	struct sim sim;
	if (sim_init(&sim, opt.latency_ms / 1000.0, opt.seed, opt.key_prefix, &opt.faults) != 0) {
		fprintf(stderr, "gatewaysim: cannot initialise (out of memory)\n");
		options_free(&opt);
		return 1;
	}
	sim.anet.login = opt.anet_login;
	sim.anet.key = opt.anet_key;
	struct http_server http;
	if (http_start(&http, &sim, opt.port, opt.max_connections, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatewaysim: %s\n", err);
		sim_free(&sim);
		options_free(&opt);
		return 1;
	}
	if (opt.ready_file && write_ready_file(opt.ready_file, http.port, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatewaysim: %s\n", err);
		http_stop(&http);
		sim_free(&sim);
		options_free(&opt);
		return 1;
	}
	sim_log(LOG_LEVEL_INFO,
		"listening on 127.0.0.1:%d (latency %d ms, seed %llu, %d --fault flag(s))",
		http.port, opt.latency_ms, (unsigned long long)opt.seed, fault_flags);

	int sig = 0;
	while (sigwait(&stop_signals, &sig) != 0)
		;
	sim_log(LOG_LEVEL_INFO, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");

	http_stop(&http);
	if (opt.ready_file)
		unlink(opt.ready_file);
	sim_free(&sim);
	options_free(&opt);
	return 0;
}
