/* main.c: the SMTP sink's entry point: options, ledger, ready file, run. */
#include "fault.h"
#include "ledger.h"
#include "server.h"
#include "sinklog.h"
#include "smtpsink_config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Write the port via a temporary name and rename, so a test polling for
 * the file never reads it empty or half written. */
static int write_ready_file(const char *path, int port, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "--ready-file %s: path too long", path);
		return -1;
	}
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "--ready-file %.300s: cannot create: %s", tmp, strerror(errno));
		return -1;
	}
	int bad = fprintf(f, "%d\n", port) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "--ready-file %.300s: cannot write: %s", path, strerror(errno));
		remove(tmp);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct smtpsink_config cfg = {0};
	char err[512];
	int rc = cfg_load(&smtpsink_cfg_spec, &cfg, argc, argv, err, sizeof(err));
	if (rc == CFG_HELP) {
		cfg_print_help(&smtpsink_cfg_spec, stdout);
		cfg_free(&smtpsink_cfg_spec, &cfg);
		return 0;
	}
	if (rc == CFG_VERSION) {
		printf("smtpsink (chargeguard) %s\n", CG_VERSION);
		cfg_free(&smtpsink_cfg_spec, &cfg);
		return 0;
	}
	if (rc != CFG_OK || smtpsink_config_check(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "smtpsink: %s\n", err);
		cfg_free(&smtpsink_cfg_spec, &cfg);
		return 2;
	}
	log_init("smtpsink", (enum log_level)cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* blocked before any thread exists, so every thread inherits the mask
	 * and the signals wait for server_run's signalfd */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	int status = 1;
	struct ledger ledger;
	struct fault fault;
	struct server srv;
	if (ledger_open(&ledger, cfg.ledger, cfg.maildir, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	fault_init(&fault, cfg.drop_prob, (uint64_t)cfg.drop_after_data_first,
		   (uint64_t)cfg.seed);
	struct session_env env = {.cfg = &cfg, .ledger = &ledger, .fault = &fault};
	if (server_listen(&srv, &env, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out_fault;
	}
	if (cfg.ready_file && write_ready_file(cfg.ready_file, srv.port, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out_server;
	}
	log_info("listening on 127.0.0.1:%d (ledger %s, drop after DATA: first %d, then p=%g, "
		 "seed %d)", srv.port, cfg.ledger ? cfg.ledger : "none", cfg.drop_after_data_first,
		 cfg.drop_prob, cfg.seed);
	if (server_run(&srv, err, sizeof(err)) != 0)
		log_error("%s", err);
	else
		status = 0;
	log_info("exiting with status %d; %llu message(s) received", status,
		 (unsigned long long)ledger.seq);
out_server:
	server_close(&srv);
out_fault:
	fault_destroy(&fault);
	ledger_close(&ledger);
out:
	cfg_free(&smtpsink_cfg_spec, &cfg);
	return status;
}
