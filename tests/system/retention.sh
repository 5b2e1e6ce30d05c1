#!/usr/bin/env bash
# Retention beside a working relay: db/archive (as retention_app, in the
# group outbox_retention) runs in a loop while the relay drains a few hundred
# invoices against the gateway simulator and the SMTP sink. A sampler
# watches the relay's backends in pg_stat_activity all along: none ever
# waits on a lock (wait_event_type Lock: transactionid, tuple, relation...).
# The relay settles everything in time, rows were archived while it ran,
# and afterwards every settled family is archived, the live outbox holds
# nothing settled, and the checker passes over live + archive (I1-I8, with
# the peers' ledgers). Also db/archive's usage: --help, bad arguments (exit
# 2, named), a role outside outbox_retention (exit 1, refused).
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

DB=retention
N=400
ARCHIVE=$CG_ROOT/db/archive
new_db $DB
seed $DB $N 50
sql $DB "UPDATE billing.customers SET payment_source = 'tok_chargeDeclined' WHERE id % 10 = 0"
RET_DB="dbname=$DB user=retention_app host=$PGHOST"

# --- usage ----------------------------------------------------------------------
like "$("$ARCHIVE" --help)" "^Usage: archive \[CONNINFO\] \[--older-than INTERVAL\]" "--help prints the usage (exit 0)"
for bad in "--batch 0" "--batch x" "--max-rows -1" "--older-than nonsense" "--older-than -1day" "--frobnicate"; do
  # shellcheck disable=SC2086  # word splitting wanted: flag and value
  out=$("$ARCHIVE" "$RET_DB" $bad 2>&1)
  rc=$?
  is "$rc:$(grep -c 'see --help' <<<"$out")" "2:1" "db/archive $bad: refused as bad usage (exit 2), saying why: $out"
done
out=$("$ARCHIVE" "dbname=$DB user=reader_app host=$PGHOST" 2>&1)
is "$?" 1 "a role outside outbox_retention cannot archive (exit 1)"
like "$out" "permission denied for function archive_settled" "... refused by the privilege system"

# --max-rows and --batch: five charges declined two days ago (no email), in
# a database of their own
SMALL=retention_small
new_db $SMALL
seed $SMALL 5 1
sql $SMALL "
  UPDATE billing.invoices SET status = 'in_flight';
  INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)
  SELECT 'charge', id, 'cg_small_' || id, 'pending', amount_cents, currency FROM billing.invoices;
  UPDATE outbox.messages SET state = 'submitting', attempts = 1, claim_token = gen_random_uuid(),
         lease_owner = 'test', lease_expires_at = now() + interval '1 minute';
  UPDATE outbox.messages SET state = 'declined';
  UPDATE billing.invoices SET status = 'open';
  SET session_replication_role = replica;
  UPDATE outbox.messages SET updated_at = now() - interval '2 days';" >/dev/null
out=$("$ARCHIVE" "dbname=$SMALL user=retention_app host=$PGHOST" --older-than '1 day' --batch 2 --max-rows 3 2>&1)
is "$(grep -c '^archived ' <<<"$out"):$(grep -o '^archived [0-9]*' <<<"$out" | tr '\n' ' ')" "2:archived 2 archived 1 " \
  "--batch 2 --max-rows 3: a batch of 2, then one of the 1 row still allowed, then it stops"
like "$out" "archive: done, 3 row\(s\) moved to outbox_archive in 2 batch\(es\), settled more than 1 day ago" "... and says so"
is "$(sql $SMALL "SELECT count(*) FROM outbox.messages")" 2 "the other two settled charges are still live"

# --- the run ----------------------------------------------------------------------
ok "gateway simulator started" sim_start --latency-ms 20
ok "SMTP sink started" smtp_start
"$CHARGER" --once --db "$(charger_db $DB)" >"$TEST_TMP/charger.log" 2>&1
is "$?" 0 "charger enqueued the invoices"

# The sampler: one psql session, every 20 ms for at most 1500 samples,
# prints the relay's backends that wait on a lock (none expected) and one
# line per sample (to prove it ran), until the test commits a row to
# public.retention_stop (read in SQL: no process spawned per sample).
SAMPLES=$TEST_TMP/samples
STOP=$TEST_TMP/stop
sql $DB "CREATE TABLE public.retention_stop (at timestamptz)"
sample=$(cat <<'SQL'
SELECT 'sample';
SELECT format('WAIT %s %s:%s %s', application_name, wait_event_type, wait_event, left(query, 60))
  FROM pg_stat_activity
 WHERE application_name LIKE 'chargeguard-relay%' AND wait_event_type = 'Lock';
SELECT EXISTS (SELECT 1 FROM public.retention_stop) AS stop \gset
\if :stop
\q
\endif
SELECT pg_sleep(0.02);
SQL
)
{
  for _ in $(seq 1500); do printf '%s\n' "$sample"; done
} | psql -X -At -q -d $DB >"$SAMPLES" 2>&1 &
SAMPLER=$!

# The archiver: db/archive again and again, small batches, nothing older
# than 0 s kept, until the flag file appears (at most 60 runs).
(
  for _ in $(seq 60); do
    [ -e "$STOP" ] && break
    "$ARCHIVE" "$RET_DB" --older-than '0 seconds' --batch 20 >>"$TEST_TMP/archive.log" 2>&1 ||
      echo "ARCHIVE FAILED" >>"$TEST_TMP/archive.log"
    sleep 0.1
  done
) &
ARCHIVER=$!

t0=$SECONDS
relay_start relay $DB --max-inflight 64
ok "all $N charges and their emails settle within 30 s (about 3 s alone here), with db/archive running beside the relay" \
  wait_for 30 settled $DB
diag "relay settled $N charges in $((SECONDS - t0)) s"
archived_meanwhile=$(sql $DB "SELECT count(*) FROM outbox_archive.messages")
touch "$STOP"
sql $DB "INSERT INTO public.retention_stop VALUES (now())"
wait "$ARCHIVER" "$SAMPLER"
relay_stop relay TERM
is "$RELAY_RC" 0 "SIGTERM: the relay stops cleanly (exit 0)"

ok "rows were archived while the relay was still working ($archived_meanwhile)" [ "$archived_meanwhile" -gt 0 ]
unlike "$(cat "$TEST_TMP/archive.log")" "ARCHIVE FAILED|ERROR" "every db/archive run succeeded"
like "$(cat "$TEST_TMP/archive.log")" "archived [1-9][0-9]* rows, oldest left " "db/archive printed its progress"
samples=$(grep -c '^sample$' "$SAMPLES")
ok "the sampler watched the relay's backends throughout ($samples samples)" [ "$samples" -ge 50 ]
is "$(grep -v '^sample$' "$SAMPLES")" "" "no relay backend ever waited on a lock (pg_stat_activity wait_event_type Lock)"
unlike "$(relay_log relay)" "NOT recorded|lease lost|; back to pending" "no outcome lost, no lease lost"

# --- afterwards ----------------------------------------------------------------------
out=$("$ARCHIVE" "$RET_DB" --older-than '0 seconds' --batch 1000 2>&1)
like "$out" "archive: done, [0-9]+ row\(s\) moved" "a last db/archive run finishes: $(tail -1 <<<"$out")"
is "$(sql $DB "SELECT count(*) FROM outbox.messages")" 0 "the live outbox is empty: every family was settled, so all moved"
is "$(sql $DB "SELECT count(*) FROM outbox.events")" 0 "... with all their events"
is "$(sql $DB "SELECT count(*) FROM outbox_archive.messages WHERE kind = 'charge'")" "$N" "the archive holds the $N charges"
is "$(sql $DB "SELECT count(*) FROM billing.payments p JOIN outbox_archive.messages m ON m.id = p.outbox_id")" \
  "$(sql $DB "SELECT count(*) FROM billing.payments")" "every payment joins to its archived charge"
is "$(sql $DB "SELECT sum(count) FILTER (WHERE kind = 'charge') FROM outbox.metrics_snapshot()")" "$N" \
  "metrics_snapshot still counts the $N charges (live + archived)"
check_invariants $DB --expect-settled

done_testing
