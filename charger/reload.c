/* reload.c: SIGHUP in the charger: parse the configuration again, validate
 * it whole, and swap in what may change at run time. */
#include "reload.h"

#include "config_reload.h"
#include "log.h"

static int check(const void *cfg, char *why, size_t whylen)
{
	return charger_config_check(cfg, why, whylen);
}

/* The wait for the next pass started with the old interval: count the time
 * already waited against the new one (a pass that is now overdue runs at
 * once). During a pass nothing waits; the pass's end uses the new value. */
static void take_effect(struct charger *ch, const struct charger_config *was)
{
	log_set_level((enum log_level)ch->cfg->log_level);
	if (ch->cfg->interval == was->interval || !ev_is_active(&ch->next_pass))
		return;
	double waited = was->interval - ev_timer_remaining(ch->loop, &ch->next_pass);
	double wait = ch->cfg->interval - waited;
	if (wait < 0)
		wait = 0;
	ev_timer_stop(ch->loop, &ch->next_pass);
	ev_timer_set(&ch->next_pass, wait, 0.);
	ev_timer_start(ch->loop, &ch->next_pass);
	log_info("next pass in %g s", wait);
}

void charger_reload(struct charger *ch, int argc, char **argv)
{
	/* *ch->cfg is main()'s own struct: const for every step but this one */
	struct charger_config *running = (struct charger_config *)ch->cfg;
	struct charger_config fresh = {0};
	if (cfg_reload(&charger_cfg_spec, running, &fresh, sizeof(fresh), argc, argv, check, NULL,
		       NULL) == 0)
		take_effect(ch, &fresh);
	cfg_free(&charger_cfg_spec, &fresh);
}
