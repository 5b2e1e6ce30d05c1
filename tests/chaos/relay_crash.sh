#!/usr/bin/env bash
# kill -9 of the relay at every crash point it lists, then a fresh relay:
# rows the dead one held expire into unknown (never pending: their POST may
# have left) and are settled by lookups, with no person involved; nothing is
# sent twice, nothing recorded twice, and every invariant, liveness (I5)
# included, holds against the gateway's ledger.
# Part of `make chaos` (fixed passes 1 and 3 of every point, for a table
# comparable across runs); `make test` sweeps every point once at a seeded
# pass in tests/system/chaos_short.sh.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

ok "gateway simulator started" sim_start --latency-ms 5
ok "SMTP sink started" smtp_start

# short windows: the dead relay's leases must expire before the heir's janitor acts
FAST=(--lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1)
for point in $("$RELAY" --list-crash-points); do
  for pass in 1 3; do
    db="relay_crash_${point//./_}_$pass"
    new_db "$db"
    seed "$db" 300 30
    curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null # this run's ledger only
    # a fifth of the charges answer 500 after charging: unknown rows, so
    # every run has lookups to do (and relay.during_reconcile is reached)
    curl -sf -X POST "$SIM_URL/_control/faults" \
      -d '[{"fault": "500_after", "probability": 0.2}]' >/dev/null
    smtp_restart
    "$CHARGER" --once --db "$(charger_db "$db")" >/dev/null 2>&1
    OUTBOX_CRASH_AT="$point:$pass" relay_start dead "$db" --claim-batch 50 --record-batch 50 "${FAST[@]}"
    # it kills itself; if it never reaches the point, stop it after 60 s
    wait_for 60 bash -c "! kill -0 ${RELAY_PIDS[dead]} 2>/dev/null"
    relay_stop dead KILL
    is "$RELAY_RC" 137 "$point:$pass: the relay died by SIGKILL"
    like "$(relay_log dead)" "crash point $point reached \(pass $pass\)" "$point:$pass: at that point"

    relay_start heir "$db" "${FAST[@]}"
    # the dead relay's leases (6 s) expire; the heir's janitor makes them unknown
    t0=$SECONDS
    terminal() { [ "$(sql "$db" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                                 AND state IN ('pending', 'submitting', 'unknown')")" = 0 ]; }
    ok "$point:$pass: every charge reaches a terminal state, no person involved" wait_for 90 terminal
    waited=$((SECONDS - t0))
    ok "$point:$pass: and every email is sent" wait_for 30 settled "$db"
    relay_stop heir TERM
    is "$RELAY_RC" 0 "$point:$pass: the second relay stops cleanly"
    [ "$RELAY_RC" = 0 ] || relay_log heir | grep -E "runtime error|Sanitizer|SUMMARY| error|stop|exiting" | tail -8 | sed 's/^/# /'
    diag "$point:$pass: terminal ${waited} s after the heir started; charges $(sql "$db" "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
                  FROM (SELECT state, count(*) n FROM outbox.messages WHERE kind = 'charge' GROUP BY state) s")"
    check_invariants "$db" --expect-settled
  done
done

done_testing
