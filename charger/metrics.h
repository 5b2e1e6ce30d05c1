/* metrics.h: the charger's metrics (--metrics-listen). */
#ifndef CHARGER_METRICS_H
#define CHARGER_METRICS_H

#include "daemon_metrics.h"
#include "enqueue.h"

/* Serve /metrics and /healthz for ch on ch->cfg->metrics_listen: 0, or -1
 * with why (the address cannot be parsed or bound). */
int charger_metrics_start(struct daemon_metrics *m, struct charger *ch, char *why,
			  size_t whylen);

#endif
