# tests/lib/fault_run.sh: one relay run under one simulator fault, checked
# (sourced by relay_faults.sh and relay_authorizenet.sh after peers.sh).
#
#   run_fault KIND EXPECTED_STATE_OF_FAULTED CHARGED(yes/no) [RULE_EXTRA]
#
# Seeds N invoices into a fresh database named ${FAULT_DB_PREFIX}KIND, asks
# the simulator to fault half the charge requests with KIND, runs the charger
# and a relay (extra arguments: the FAULT_RELAY_ARGS array) until nothing is
# pending, then checks: faulted rows end in the expected state, the others
# succeeded, the gateway did (or did not) charge the faulted rows, the
# invariants (unknown rows allowed: they are looked up later), and whatever
# fault_extra_checks DB KIND does, when the caller defines it.
run_fault() {
  local kind=$1 want=$2 charged=$3 extra=${4:-}
  local db="${FAULT_DB_PREFIX:-relay_fault_}${kind//[^a-z0-9]/_}"
  new_db "$db"
  seed "$db" "$N" 20
  curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
  curl -sf -X POST "$SIM_URL/_control/faults" \
    -d "[{\"fault\": \"$kind\", \"probability\": 0.5 $extra}]" >/dev/null
  "$CHARGER" --once --db "$(charger_db "$db")" >/dev/null 2>&1
  relay_start "$db" "$db" "${FAULT_RELAY_ARGS[@]}"
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
  if declare -F fault_extra_checks >/dev/null; then fault_extra_checks "$db" "$kind"; fi
  check_invariants "$db" --allow-unknown
}
