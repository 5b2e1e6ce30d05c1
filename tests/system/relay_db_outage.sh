#!/usr/bin/env bash
# `pg_ctl stop -m immediate` while outcomes are being recorded, for longer
# than the lease: the relay keeps the answers that arrive meanwhile, stops
# claiming, reconnects with backoff, and records every kept answer (before
# tending leases) when the server is back; nothing lost (I2 is checked
# strictly: every gateway charge has its payment), nothing sent twice.
# Uses its own cluster so the shared one stays up.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/cluster.sh"
source "$CG_ROOT/tests/lib/peers.sh"

PG2=$(mktemp -d /tmp/cg-relay-outage.XXXXXX)
trap 'peers_stop_all; cluster_stop "$PG2" immediate; rm -rf "$PG2"; _system_cleanup' EXIT
cluster_init "$PG2"
cluster_start "$PG2"
createdb outage && "$CG_ROOT/db/migrate" dbname=outage >/dev/null &&
  psql -X -q -d outage -c "CREATE ROLE charger_app LOGIN IN ROLE outbox_charger;
                           CREATE ROLE relay_app LOGIN IN ROLE outbox_relay" &&
  PGHOST=$PG2 seed outage 3000 300 ||
  { echo "not ok 1 - second cluster set up"; echo "1..1"; exit 1; }
"$CHARGER" --once --db "dbname=outage user=charger_app host=$PG2" >/dev/null 2>&1

ok "gateway simulator started" sim_start --latency-ms 400
ok "SMTP sink started" smtp_start
PGHOST=$PG2 relay_start relay outage --max-inflight 1000 --record-batch 5
some_recorded() { [ "$(psql -X -At -d outage -c "SELECT count(*) FROM outbox.messages
                        WHERE kind = 'charge' AND state = 'succeeded'")" -gt 200 ]; }
ok "the relay is recording outcomes" wait_for 60 some_recorded
cluster_stop "$PG2" immediate
down_at=$SECONDS
lost() { grep -q "database away with" "$PEERS_TMP/relay.log"; }
ok "the relay notices the database is gone, with answers in flight" wait_for 20 lost
sleep 8 # answers keep arriving while the server is down, past the 6 s lease
cluster_start "$PG2"
diag "database down for $((SECONDS - down_at)) s"
back() { grep -q "database back: recording" "$PEERS_TMP/relay.log"; }
ok "once it is back, the relay records the answers it kept" wait_for 30 back
quiet() { [ "$(psql -X -At -d outage -c "SELECT count(*) FROM outbox.messages
                WHERE state IN ('pending', 'submitting')")" = 0 ]; }
ok "every row leaves pending/submitting" wait_for 90 quiet
relay_stop relay TERM
is "$RELAY_RC" 0 "the relay stops cleanly"
log=$(relay_log relay)
like "$log" "attempt [0-9]+ in [0-9.]+ s" "it reconnected with backoff"
diag "$(psql -X -At -d outage -c "SELECT state || ': ' || count(*) FROM outbox.messages
                                  WHERE kind = 'charge' GROUP BY state" | paste -sd' ')"
PGHOST=$PG2 check_invariants outage

done_testing
