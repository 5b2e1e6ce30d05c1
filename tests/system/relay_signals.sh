#!/usr/bin/env bash
# Signals and a refused key: SIGTERM while a claim waits gives the claimed
# rows back unsent; a 401 stops sending (rows dead, never re-sent) until
# SIGHUP reloads a fixed key file; SIGHUP never kills the relay.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT
ok "gateway simulator started" sim_start

# lock_outbox DB: another session holds a lock on outbox.messages that every
# claim waits for (until unlock_outbox DB)
lock_outbox() {
  PGAPPNAME=cg-lock psql -X -q -d "$1" >/dev/null 2>&1 \
    -c "BEGIN; LOCK TABLE outbox.messages IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" &
  LOCK_HOLDER=$!
  locked() { [ "$(sql "$1" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                            WHERE a.application_name = 'cg-lock' AND l.mode = 'ShareRowExclusiveLock' AND l.granted")" = 1 ]; }
  ok "another session locks the outbox" wait_for 20 locked "$1"
}
unlock_outbox() {
  sql "$1" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cg-lock'" >/dev/null
  wait "$LOCK_HOLDER" 2>/dev/null
}
# claim_waits DB: a relay's claim (charges or emails) waits for the lock
claim_waits() { [ "$(sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                               AND query ~ 'claim_(charges|emails)'")" -ge 1 ]; }
gone() { ! kill -0 "${RELAY_PIDS[$1]}" 2>/dev/null; }

# --- SIGTERM while the claim waits on a lock ---------------------------------
DB=relay_sig_claim
new_db $DB
seed $DB 20 5
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
lock_outbox $DB
relay_start stopper $DB
ok "the relay's claim waits for the lock" wait_for 20 claim_waits $DB
kill -TERM "${RELAY_PIDS[stopper]}"
sleep 1
ok "SIGTERM: the relay waits for the claim on the wire" kill -0 "${RELAY_PIDS[stopper]}"
unlock_outbox $DB
ok "once the claim is answered, the relay stops by itself" wait_for 20 gone stopper
relay_stop stopper 0 # collect its exit status (a second TERM would mean "now")
is "$RELAY_RC" 0 "it stopped cleanly"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'pending'")" 20 \
  "the rows its claim took are given back pending (never sent)"
is "$(ledger_sql $DB "SELECT count(*) FROM lreq")" 0 "nothing was POSTed"
like "$(relay_log stopper)" "not sent: the relay is stopping" "the log says why"

# --- SIGTERM while a claim that finds nothing is on the wire ------------------
# The answer with no rows is the last thing the relay waits for: it must stop
# then, not wait out its stop deadline (--http-timeout + 10 s) and exit 1.
DB=relay_sig_empty
new_db $DB
lock_outbox $DB
relay_start idle $DB --smtp-url "smtp://127.0.0.1:1" # both claims (charges, emails) run
ok "the idle relay's claim waits for the lock" wait_for 20 claim_waits $DB
kill -TERM "${RELAY_PIDS[idle]}"
sleep 1
ok "SIGTERM: the idle relay waits for its claim" kill -0 "${RELAY_PIDS[idle]}"
unlock_outbox $DB
ok "once the empty claim is answered, the idle relay stops at once (not at its deadline)" \
  wait_for 4 gone idle
relay_stop idle 0
is "$RELAY_RC" 0 "it stopped cleanly"
unlike "$(relay_log idle)" "stop deadline passed" "its stop deadline never passed"

# --- a refused key stops sending; SIGHUP with a fixed key file resumes -----
DB=relay_sig_key
new_db $DB
seed $DB 30 10
curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
KEY=$TEST_TMP/gateway.key
( umask 077; echo rk_live_wrong >"$KEY" )
"$RELAY" --db "dbname=$DB user=relay_app host=$PGHOST" --gateway-url "$SIM_URL" \
  --gateway-key-file "$KEY" "${RELAY_TEST_ARGS[@]}" --claim-batch 5 --max-inflight 5 \
  >"$TEST_TMP/key.log" 2>&1 &
pid=$!
refused() { grep -q "refuses our API key" "$TEST_TMP/key.log"; }
ok "401: the relay says the gateway refuses its key" wait_for 20 refused
sleep 1.5
posts=$(ledger_sql $DB "SELECT count(*) FROM lreq")
ok "401: it stopped sending after the first refusals ($posts POSTs for 30 rows)" [ "$posts" -le 5 ]
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'dead'")" "$posts" \
  "401: each refused row is dead, for a person (never re-sent by the relay)"
like "$(sql $DB "SELECT last_error FROM outbox.messages WHERE state = 'dead' LIMIT 1")" "refused our API key" \
  "401: the dead row says why"
echo sk_test_fixed >"$KEY"
kill -HUP $pid
resumed() { grep -q "gateway key reloaded, sending resumes" "$TEST_TMP/key.log"; }
ok "SIGHUP: the key is reloaded, sending resumes" wait_for 10 resumed
rest() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" = $((30 - posts)) ]; }
ok "the other rows are charged with the fixed key" wait_for 30 rest
ok "SIGHUP did not stop the relay" kill -0 $pid
kill -TERM $pid; wait $pid
is "$?" 0 "the relay stops cleanly"
is "$(ledger_sql $DB "SELECT count(*) FROM lreq a WHERE (a.r->>'status')::int = 401
                      AND EXISTS (SELECT 1 FROM lreq b WHERE b.r->>'idempotency_key' = a.r->>'idempotency_key'
                                  AND (b.r->>'seq')::int > (a.r->>'seq')::int)")" 0 \
  "no refused row was ever POSTed again"
unlike "$(cat "$TEST_TMP/key.log")" "rk_live_wrong|sk_test_fixed" "the key never appears in the log"

# --- SIGHUP with the key from the environment -------------------------------
relay_start hup $DB
sleep 1
kill -HUP "${RELAY_PIDS[hup]}"
sleep 0.5
ok "SIGHUP with RELAY_GATEWAY_KEY: still running" kill -0 "${RELAY_PIDS[hup]}"
like "$(relay_log hup)" "read only at start" "and it says the key cannot be reloaded from the environment"
relay_stop hup TERM
is "$RELAY_RC" 0 "stops cleanly"

done_testing
