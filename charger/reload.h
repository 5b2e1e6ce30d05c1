/* reload.h: SIGHUP in the charger (interval, batch, log_level and db_wait
 * change at run time; the rest is named as needing a restart). */
#ifndef CHARGER_RELOAD_H
#define CHARGER_RELOAD_H

#include "enqueue.h"

/* argc/argv: main's, parsed again with the config file and environment. */
void charger_reload(struct charger *ch, int argc, char **argv);

#endif
