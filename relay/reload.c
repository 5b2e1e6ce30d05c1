/* reload.c: SIGHUP in the relay: the configuration, then the gateway key. */
#include "relay.h"

#include "config_reload.h"
#include "log.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read the gateway key again (the usual fix after a 401) and resume
 * sending. */
static void reload_key(struct relay *r)
{
	char why[256];
	if (!r->cfg->gateway_key_file[0]) {
		log_info("SIGHUP: the key came from RELAY_GATEWAY_KEY, which is read only at start "
			 "(restart to change it)%s",
			 r->sending_stopped ? "; sending resumes with it" : "");
	} else {
		char key[sizeof(r->key)];
		int rc = secret_load(r->cfg->gateway_key_file, "RELAY_GATEWAY_KEY", key, sizeof(key),
				     why, sizeof(why));
		if (rc == 0 && r->gateway->check_key)
			rc = r->gateway->check_key(key, why, sizeof(why));
		if (rc == 0)
			memcpy(r->key, key, sizeof(key));
		explicit_bzero(key, sizeof(key));
		if (rc != 0) {
			log_error("SIGHUP: gateway key not reloaded: %s; keeping the old one", why);
			return;
		}
		log_info("SIGHUP: gateway key reloaded%s",
			 r->sending_stopped ? ", sending resumes" : "");
	}
	r->sending_stopped = false;
}

static int check(const void *cfg, char *why, size_t whylen)
{
	return relay_config_check(cfg, why, whylen);
}

/* The record batch array was sized for the running record_batch; a larger
 * one needs room before it is used. A smaller one keeps the array: a batch
 * on the wire may hold more jobs than the new limit. */
static int grow_record_batch(void *ud, const void *fresh, char *why, size_t whylen)
{
	struct relay *r = ud;
	int want = ((const struct relay_config *)fresh)->record_batch;
	if (want <= r->batch_cap)
		return 0;
	struct job **b = realloc(r->batch, (size_t)want * sizeof(*b));
	if (!b) {
		snprintf(why, whylen, "out of memory for record_batch %d", want);
		return -1;
	}
	r->batch = b;
	r->batch_cap = want;
	return 0;
}

/* Timers and derived values that copy a setting when they start. Limits
 * (max_inflight, claim_batch, the email and lookup ones) are read at each
 * claim: a lower one lets what is in flight finish and claims nothing more
 * until the count is under it; a higher one claims at once, below. */
static void take_effect(struct relay *r, const struct relay_config *was)
{
	const struct relay_config *cfg = r->cfg;
	log_set_level((enum log_level)cfg->log_level);
	if (cfg->poll_interval != was->poll_interval && !r->stopping) {
		/* from now, not from the last tick: a longer interval must not
		 * fire at once, a shorter one must not wait out the old one */
		r->poll.repeat = cfg->poll_interval;
		ev_timer_again(r->loop, &r->poll);
	}
	if (strcmp(cfg->mail_from, was->mail_from) != 0)
		snprintf(r->mail_domain, sizeof(r->mail_domain), "%s", strchr(cfg->mail_from, '@') + 1);
}

static void reload_config(struct relay *r)
{
	/* *r->cfg is main()'s own struct: const for every step but this one */
	struct relay_config *running = (struct relay_config *)r->cfg;
	struct relay_config fresh = {0};
	if (cfg_reload(&relay_cfg_spec, running, &fresh, sizeof(fresh), r->argc, r->argv, check,
		       grow_record_batch, r) == 0)
		take_effect(r, &fresh);
	cfg_free(&relay_cfg_spec, &fresh);
}

void relay_reload(struct relay *r)
{
	reload_config(r);
	reload_key(r);
	charges_claim(r);
	emails_claim(r);
	reconcile_claim(r);
}
