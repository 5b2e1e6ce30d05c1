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

# run_fault KIND EXPECTED_STATE_OF_FAULTED CHARGED(yes/no) [RULE_EXTRA]
run_fault() {
  local kind=$1 want=$2 charged=$3 extra=${4:-}
  local db="relay_fault_${kind//[^a-z0-9]/_}"
  new_db "$db"
  seed "$db" $N 20
  curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
  curl -sf -X POST "$SIM_URL/_control/faults" \
    -d "[{\"fault\": \"$kind\", \"probability\": 0.5 $extra}]" >/dev/null
  "$CHARGER" --once --db "$(charger_db "$db")" >/dev/null 2>&1
  relay_start "$db" "$db"
  done_sending() { [ "$(sql "$db" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                                    AND state IN ('pending', 'submitting')")" = 0 ]; }
  ok "$kind: every charge leaves pending/submitting" wait_for 60 done_sending
  relay_stop "$db" TERM
  is "$RELAY_RC" 0 "$kind: relay stops cleanly"

  local f=${kind%%:*}
  local faulted
  faulted=$(ledger_sql "$db" "SELECT string_agg(DISTINCT r->>'outbox_id', ',') FROM lreq
                              WHERE r->>'fault' LIKE '$f%'")
  ok "$kind: the simulator faulted some requests (${faulted:-none})" [ -n "$faulted" ]
  [ -n "$faulted" ] || faulted=0
  is "$(sql "$db" "SELECT string_agg(DISTINCT state, ',') FROM outbox.messages WHERE id IN ($faulted)")" \
    "$want" "$kind: faulted rows end $want"
  is "$(sql "$db" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND id NOT IN ($faulted)
                   AND state <> 'succeeded'")" 0 "$kind: the other rows succeeded"
  local charged_faulted
  charged_faulted=$(ledger_sql "$db" "SELECT count(*) FROM lch WHERE c->>'status' = 'succeeded'
                                      AND (c->'metadata'->>'outbox_id')::bigint IN ($faulted)")
  if [ "$charged" = yes ]; then
    ok "$kind: the gateway did charge the faulted rows ($charged_faulted): it acted, we could not tell" \
      [ "$charged_faulted" -gt 0 ]
  else
    is "$charged_faulted" 0 "$kind: the gateway charged none of the faulted rows"
  fi
  check_invariants "$db" --allow-unknown
}

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
