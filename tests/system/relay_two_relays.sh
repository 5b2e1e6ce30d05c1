#!/usr/bin/env bash
# Two relays drain one outbox at once: they share the work, no row is sent
# twice, every outcome is recorded once.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

DB=relay_two
new_db $DB
seed $DB 4000 400
ok "gateway simulator started" sim_start --latency-ms 10
ok "SMTP sink started" smtp_start
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
relay_start one $DB --claim-batch 50
relay_start two $DB --claim-batch 50
ok "all charges and emails settle" wait_for 180 settled $DB
relay_stop one TERM
is "$RELAY_RC" 0 "relay one stops cleanly"
relay_stop two TERM
is "$RELAY_RC" 0 "relay two stops cleanly"
a=$(grep -oE 'claimed [0-9]+' "$PEERS_TMP/one.log" | tail -1 | grep -oE '[0-9]+')
b=$(grep -oE 'claimed [0-9]+' "$PEERS_TMP/two.log" | tail -1 | grep -oE '[0-9]+')
is "$((a + b))" 4000 "their claims add up to the 4,000 rows ($a + $b)"
ok "both did work" [ "$a" -gt 0 ] && [ "$b" -gt 0 ]
unlike "$(relay_log one; relay_log two)" "NOT recorded|lease lost" "neither lost a claim"
check_invariants $DB --expect-settled

done_testing
