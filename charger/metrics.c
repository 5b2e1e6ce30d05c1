/* metrics.c: the charger's own counters for /metrics, built when scraped.
 * Listed in docs/operations.md, "Metrics and alerts". */
#include "metrics.h"

static void write_charger(void *ud, struct prom_buf *b)
{
	const struct charger *ch = ud;
	const struct {
		const char *name, *help;
		unsigned long value;
	} counters[] = {
		{"charger_passes_total", "Passes finished (each enqueues everything due)",
		 ch->stats.passes},
		{"charger_invoices_enqueued_total",
		 "Invoices enqueued (charge and notification rows written, invoice in flight)",
		 ch->stats.enqueued},
		{"charger_invoices_unchargeable_total",
		 "Due invoices newly found unchargeable (no payment method, nothing due, bad currency)",
		 ch->stats.unchargeable},
		{"charger_batches_failed_total",
		 "Batches rolled back or abandoned (SQL error or lost connection)",
		 ch->stats.batches_failed},
	};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		prom_counter(b, counters[i].name, counters[i].help, counters[i].value);
	prom_gauge(b, "charger_last_pass_timestamp_seconds",
		   "When the last pass finished, Unix seconds; 0 before the first",
		   ch->stats.last_pass_at);
}

int charger_metrics_start(struct daemon_metrics *m, struct charger *ch, char *why,
			  size_t whylen)
{
	*m = (struct daemon_metrics){.prefix = "charger", .db = ch->db, .write = write_charger,
				     .ud = ch};
	return daemon_metrics_start(m, ch->loop, ch->cfg->metrics_listen, why, whylen);
}
