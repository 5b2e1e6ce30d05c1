#!/usr/bin/env bash
# Every fault the simulator can inject, one run each: the relay classifies
# the answer as PROTOCOL.md says (ambiguous -> unknown, never re-sent;
# proven not executed -> pending, same key, sent again), and the invariants
# hold against the gateway's own ledger. Unknown rows stay unknown here:
# looking them up is the reconciliation step (issue 4).
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

N=40
ok "gateway simulator started" sim_start --seed 11
ok "SMTP sink started" smtp_start

source "$CG_ROOT/tests/lib/fault_run.sh"
FAULT_RELAY_ARGS=()

run_fault 500_before     unknown no
run_fault 500_after      unknown yes
run_fault reset_after    unknown yes
run_fault close_mid_body unknown yes
run_fault delay:5        unknown yes   # longer than --http-timeout 3
run_fault nonjson_after  unknown yes
run_fault reset_before   unknown no    # we cannot tell it from a reset after charging
run_fault forget_after   succeeded yes # a normal 200: recorded; only lookups would miss it
run_fault 429            succeeded yes ', "times": 10'

# 429 is the one fault answered by sending again, with the same key.
is "$(ledger_sql relay_fault_429 "SELECT count(*) FROM lreq WHERE (r->>'status')::int = 429")" \
  "$(sql relay_fault_429 "SELECT sum(attempts - 1) FROM outbox.messages WHERE kind = 'charge'")" \
  "429: each rate-limited row was claimed again once per 429, and sent with the same key"

done_testing
