#!/usr/bin/env bash
# A relay paused (SIGSTOP) past its lease, then resumed: meanwhile another
# relay's janitor turns its rows unknown; on resume its late answers are
# refused by the claim token (or dropped as lost) and never recorded, and
# nothing is sent twice.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

DB=relay_paused
new_db $DB
seed $DB 60 20
ok "gateway simulator started" sim_start
ok "SMTP sink started" smtp_start
# every charge takes 2 s at the gateway, so the paused relay has them in flight
curl -sf -X POST "$SIM_URL/_control/faults" -d '[{"fault": "delay:2"}]' >/dev/null
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
relay_start stale $DB --claim-batch 60
claimed() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'submitting'")" = 60 ]; }
ok "the first relay claimed all 60 rows" wait_for 20 claimed
sleep 0.5 # its POSTs are out
kill -STOP "${RELAY_PIDS[stale]}"
relay_start janitor $DB
expired() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'unknown'")" = 60 ]; }
ok "past the lease, the other relay's janitor turns the 60 rows unknown" wait_for 30 expired
kill -CONT "${RELAY_PIDS[stale]}"
refused() { [ "$(grep -E "NOT recorded|lease lost" "$PEERS_TMP/stale.log" | grep -oE 'row=[0-9]+' | sort -u | wc -l)" = 60 ]; }
ok "resumed, the stale relay records none of its 60 late answers" wait_for 30 refused
relay_stop stale TERM
relay_stop janitor TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'unknown'")" 60 \
  "the rows stay unknown, to be looked up (never recorded from a stale claim)"
is "$(ledger_sql $DB "SELECT count(*) FROM lreq WHERE r->>'method' = 'POST'")" 60 \
  "exactly one POST per row: nobody re-sent them"
check_invariants $DB --allow-unknown

done_testing
