#!/usr/bin/env bash
# --metrics-listen and --log-format json, on real daemons: the relay (with
# the gateway simulator and the SMTP sink) and the charger charge invoices,
# some declining; /metrics is scraped during and after the run, checked
# line by line (promtool's parser and linter, and a strict awk check of
# every line's shape), and its counts are compared with the database:
# outcomes with the rows' states, outbox_messages with a GROUP BY kind,
# state, log lines per level with the log itself. /healthz is 200, then 503
# while the database is stopped (this test owns its cluster), and 200 again.
# Outcomes settled by lookups count too. The json logs parse with jq line
# by line; neither the gateway key nor the database password appears in any
# log, /metrics or /healthz.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/cluster.sh"
source "$CG_ROOT/tests/lib/peers.sh"

PG2=$(mktemp -d /tmp/cg-relay-metrics.XXXXXX)
trap 'peers_stop_all; cluster_stop "$PG2" immediate; rm -rf "$PG2"; _system_cleanup' EXIT
N=300
KEY="sk_test_metrics_$RANDOM$RANDOM$RANDOM"
DBPW="pw-metrics-$RANDOM$RANDOM$RANDOM"
cluster_init "$PG2" && cluster_start "$PG2" &&
  createdb metrics && "$CG_ROOT/db/migrate" dbname=metrics >/dev/null &&
  psql -X -q -d metrics -c "CREATE ROLE charger_app LOGIN IN ROLE outbox_charger;
                            CREATE ROLE relay_app LOGIN PASSWORD '$DBPW' IN ROLE outbox_relay" &&
  psql -X -q -d metrics -c "
    INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
    SELECT g, 'customer' || g || '@example.com', 'cus_' || g,
           CASE WHEN g % 10 = 0 THEN 'tok_chargeDeclined' ELSE 'tok_visa' END
      FROM generate_series(1, 50) g;
    INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
    SELECT g, 1 + g % 50, 500 + g, 500 + g, 'usd', now() - interval '1 day'
      FROM generate_series(1, $N) g;" ||
  { echo "not ok 1 - own cluster set up"; echo "1..1"; exit 1; }
q() { psql -X -At -q -d metrics -c "$1"; }

# url_in LOG: the metrics URL a daemon logged (it listens on port 0: a free port)
url_in() { grep -o 'http://127\.0\.0\.1:[0-9]*' "$1" | head -1; }
# scrape URL FILE: GET /metrics into FILE (headers into FILE.headers); never
# waits long: a scrape must not wait on the database
scrape() { curl -sS --max-time 3 -D "$2.headers" -o "$2" "$1/metrics"; }
# metric FILE SERIES: the value of one series, e.g. 'relay_inflight' or
# 'outbox_messages{kind="charge",state="succeeded"}'
metric() { awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print "missing" }' "$1"; }
# shape FILE: every line is a HELP, a TYPE or a sample of the family its
# TYPE line announced, with well-formed, properly escaped labels and a number
shape() {
  awk '
    /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
    /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$/ { fam = $3; type = $4; next }
    {
      if (match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/) == 0) { print "bad line " NR ": " $0; bad = 1; next }
      name = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
      ok = name == fam || (type == "histogram" && (name == fam "_bucket" || name == fam "_sum" || name == fam "_count"))
      if (!ok) { print "sample " name " outside its family " fam " (line " NR ")"; bad = 1 }
      if (rest ~ /^\{/) {
        lab = "[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
        if (match(rest, "^\\{" lab "(," lab ")*\\}") == 0) { print "bad labels line " NR ": " $0; bad = 1; next }
        rest = substr(rest, RLENGTH + 1)
      }
      if (rest !~ /^ (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$/) { print "bad value line " NR ": " $0; bad = 1 }
    }
    END { exit bad }' "$1"
}
# buckets FILE NAME: NAME's buckets never decrease, end with +Inf == _count
buckets() {
  awk -v n="$2" '
    index($0, n "_bucket{") == 1 { v = $2 + 0; if (v < last) bad = 1; last = v; if ($0 ~ /le="\+Inf"/) inf = v }
    $1 == n "_count" { count = $2 + 0 }
    END { exit !(bad == 0 && inf != "" && inf == count) }' "$1"
}
# Prometheus's own parser and linter (scripts/deps puts it in tests/peers/bin)
PROMTOOL=$CG_ROOT/tests/peers/bin/promtool
[ -x "$PROMTOOL" ] || PROMTOOL=$(command -v promtool)
valid() { # FILE WHEN
  ok "$2: every line has the exposition format's shape" shape "$1"
  if [ -n "$PROMTOOL" ]; then
    local lint
    lint=$("$PROMTOOL" check metrics <"$1" 2>&1)
    is "$?" 0 "$2: promtool check metrics accepts it (parser and linter)${lint:+: $lint}"
  else
    _tap_result 0 "$2: promtool check metrics # SKIP no promtool (scripts/deps extracts it into tests/peers/bin)"
  fi
}

ok "gateway simulator started" sim_start --latency-ms 150
ok "SMTP sink started" smtp_start

# --- bad flags: named, with the accepted form ---------------------------------
out=$(RELAY_GATEWAY_KEY=$KEY "$RELAY" --gateway-url "$SIM_URL" --metrics-listen localhost:9100 2>&1)
is "$?" 2 "relay --metrics-listen with a host name: refused (exit 2)"
like "$out" "--metrics-listen 'localhost:9100': HOST is not a numeric IPv4 or IPv6 address.*127\.0\.0\.1:9100" \
  "the refusal names the flag and the accepted form"
out=$("$CHARGER" --once --metrics-listen 127.0.0.1 2>&1)
is "$?" 2 "charger --metrics-listen without a port: refused (exit 2)"
like "$out" "--metrics-listen '127\.0\.0\.1': no ':PORT'" "the charger's refusal names the flag"
out=$("$CHARGER" --once --log-format yaml 2>&1)
like "$out" "--log-format: 'yaml' is not one of: text, json" "--log-format names its choices"

# --- metrics need schema 8 (outbox.metrics_snapshot); without them, 6 will do
createdb metrics_old && "$CG_ROOT/db/migrate" --target 7 dbname=metrics_old >/dev/null
out=$(RELAY_GATEWAY_KEY=$KEY timeout 30 "$RELAY" --db "dbname=metrics_old user=relay_app host=$PG2" \
  --gateway-url "$SIM_URL" "${RELAY_TEST_ARGS[@]}" --metrics-listen 127.0.0.1:0 2>&1)
is "$?" 1 "a schema without 0008: the relay with --metrics-listen refuses to run"
like "$out" "schema is at version 7 but this program needs 8: run db/migrate" "and says which migration it needs"

# --- the charger: its own /metrics and /healthz ----------------------------------
CHLOG=$TEST_TMP/charger.log
"$CHARGER" --db "dbname=metrics user=charger_app host=$PG2" --interval 3600 \
  --metrics-listen 127.0.0.1:0 --log-format json >"$CHLOG" 2>&1 &
CHARGER_PID=$!
enqueued() { [ "$(q "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'")" = "$N" ]; }
ok "the charger enqueues the $N invoices" wait_for 30 enqueued
CH_URL=$(url_in "$CHLOG")
like "$CH_URL" "^http://127\.0\.0\.1:[0-9]+$" "the charger logs where it serves its metrics"
pass_done() { scrape "$CH_URL" "$TEST_TMP/ch.txt" && [ "$(metric "$TEST_TMP/ch.txt" charger_passes_total)" = 1 ]; }
ok "the charger's /metrics counts its first pass" wait_for 10 pass_done
is "$(metric "$TEST_TMP/ch.txt" charger_invoices_enqueued_total)" "$N" "charger_invoices_enqueued_total equals the rows written"
valid "$TEST_TMP/ch.txt" "charger /metrics"
is "$(curl -s -o /dev/null -w '%{http_code}' "$CH_URL/healthz")" 200 "charger /healthz: 200"
kill -TERM $CHARGER_PID; wait $CHARGER_PID
is "$?" 0 "the charger stops cleanly"

# --- the relay --------------------------------------------------------------------
LOG=$TEST_TMP/relay.log
RELAY_DB="dbname=metrics user=relay_app host=$PG2 password=$DBPW" RELAY_GATEWAY_KEY=$KEY \
  "$RELAY" --gateway-url "$SIM_URL" --smtp-url "$SMTP_URL" "${RELAY_TEST_ARGS[@]}" \
  --max-inflight 20 --metrics-listen 127.0.0.1:0 --metrics-db-interval 1 --log-format json \
  >"$LOG" 2>&1 &
RELAY_PIDS[relay]=$!
started() { [ -n "$(url_in "$LOG")" ]; }
ok "the relay logs where it serves its metrics" wait_for 10 started
URL=$(url_in "$LOG")

# another relay on the same address cannot start
out=$(RELAY_GATEWAY_KEY=$KEY timeout 20 "$RELAY" --db "dbname=metrics user=relay_app host=$PG2" \
  --gateway-url "$SIM_URL" "${RELAY_TEST_ARGS[@]}" --metrics-listen "${URL#http://}" 2>&1)
is "$?" 1 "a second relay on the same metrics address refuses to run (exit 1)"
like "$out" "refusing to run: cannot listen on 127\.0\.0\.1:[0-9]+" "and says it cannot listen there"

# during the run
succeeded() { q "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'"; }
midway() { local s; s=$(succeeded); [ "$s" -gt 20 ] && [ "$s" -lt $((N * 8 / 10)) ]; }
ok "the relay is midway through the charges" wait_for 60 midway
scrape "$URL" "$TEST_TMP/during.txt"
is "$?" 0 "/metrics answers during the run"
after=$(succeeded)
valid "$TEST_TMP/during.txt" "/metrics during the run"
during=$(metric "$TEST_TMP/during.txt" 'outbox_charge_outcomes_total{outcome="succeeded"}')
ok "during: outcomes counted ($during) never exceed the rows recorded ($after)" \
  test "$during" -ge 1 -a "$during" -le "$after"
ok "during: relay_inflight is a number of charges in flight" \
  test "$(metric "$TEST_TMP/during.txt" relay_inflight)" -le 20
like "$(cat "$TEST_TMP/during.txt.headers")" "Content-Type: text/plain; version=0\.0\.4" \
  "Content-Type: text/plain; version=0.0.4"

ok "all charges and emails settle" wait_for 120 settled metrics
declined=$(q "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'declined'")
ok "some charges were declined ($declined)" test "$declined" -gt 0

# after the run: the counts against the database, once the snapshot is newer
# than the last change (--metrics-db-interval 1)
group_by() { q "SELECT 'outbox_messages{kind=\"' || kind || '\",state=\"' || state || '\"} ' || count(*)
                 FROM outbox.messages GROUP BY kind, state ORDER BY 1"; }
exposed() { grep '^outbox_messages{' "$1" | awk '$2 != 0' | sort; }
caught_up() { scrape "$URL" "$TEST_TMP/after.txt" && [ "$(exposed "$TEST_TMP/after.txt")" = "$(group_by)" ]; }
ok "outbox_messages equals SELECT kind, state, count(*) ... GROUP BY kind, state" wait_for 15 caught_up
A=$TEST_TMP/after.txt
valid "$A" "/metrics after the run"
is "$(grep -c '^outbox_messages{' "$A")" 14 "outbox_messages has every allowed (kind, state), zeros included"
for o in succeeded declined failed unknown; do
  is "$(metric "$A" "outbox_charge_outcomes_total{outcome=\"$o\"}")" \
    "$(q "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = '$o'")" \
    "outbox_charge_outcomes_total{outcome=\"$o\"} equals the $o rows"
done
is "$(metric "$A" 'relay_gateway_answers_total{class="succeeded"}')" "$(succeeded)" \
  "relay_gateway_answers_total{class=\"succeeded\"} equals the succeeded rows"
is "$(metric "$A" relay_charges_sent_total)" "$N" "relay_charges_sent_total: one POST per charge"
is "$(metric "$A" relay_send_seconds_count)" "$N" "relay_send_seconds_count: one observation per POST"
for h in relay_claim_seconds relay_send_seconds relay_record_seconds; do
  ok "$h: buckets cumulative, +Inf equals _count" buckets "$A" "$h"
done
is "$(metric "$A" 'relay_emails_total{result="sent"}')" \
  "$(q "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND state = 'sent'")" \
  "relay_emails_total{result=\"sent\"} equals the sent email rows"
is "$(metric "$A" relay_inflight)" 0 "relay_inflight: 0 once everything is recorded"
is "$(metric "$A" 'outbox_oldest_pending_age_seconds{kind="charge"}')" 0 "nothing pending is late"
like "$(metric "$A" relay_db_snapshot_age_seconds)" '^0(\.[0-9]+)?$|^1(\.[0-9]+)?$' \
  "relay_db_snapshot_age_seconds: the counts are fresh"
is "$(metric "$A" 'relay_claims_lost_total{step="record"}')" 0 "no claim lost in a fault-free run"
# every line written so far is counted, per level (an idle relay writes none)
for level in info warn error; do
  is "$(metric "$A" "relay_log_lines_total{level=\"$level\"}")" \
    "$(jq -r .level "$LOG" | grep -cx "$level")" "relay_log_lines_total{level=\"$level\"} equals the $level lines of the log"
done

# /healthz, then the database goes away
like "$(curl -s "$URL/healthz")" "^ok: database answered [0-9.]+ s ago$" "/healthz says ok, in one line"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" 200 "/healthz: 200 with the database up"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/metrics")" 405 "POST /metrics: 405"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/other")" 404 "an unknown path: 404"
cluster_stop "$PG2" immediate
down() { [ "$(curl -s --max-time 3 -o "$TEST_TMP/health.txt" -w '%{http_code}' "$URL/healthz")" = 503 ]; }
ok "/healthz: 503 while the database is stopped" wait_for 10 down
like "$(cat "$TEST_TMP/health.txt")" "^unavailable: database not connected" "the 503 says why, in one line"
is "$(wc -l <"$TEST_TMP/health.txt")" 1 "one line"
t0=$(date +%s%N)
scrape "$URL" "$TEST_TMP/down.txt"
is "$?" 0 "/metrics still answers with the database down"
ms=$((($(date +%s%N) - t0) / 1000000))
ok "and at once (${ms} ms): a scrape never waits for the database" test "$ms" -lt 1000
is "$(metric "$TEST_TMP/down.txt" relay_db_connected)" 0 "relay_db_connected: 0"
valid "$TEST_TMP/down.txt" "/metrics with the database down"
cluster_start "$PG2"
up() { [ "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]; }
ok "/healthz: 200 again once the database is back" wait_for 30 up
scrape "$URL" "$TEST_TMP/back.txt"
ok "relay_db_reconnects_total counts the reconnect" test "$(metric "$TEST_TMP/back.txt" relay_db_reconnects_total)" -ge 1

relay_stop relay TERM
is "$RELAY_RC" 0 "the relay stops cleanly"
charged=$(succeeded)

# --- outcomes that come from lookups --------------------------------------------
# The gateway charges and answers 500: unknown, then a lookup finds the
# charge: each such row counts once as unknown and once as succeeded.
# (Customers 1 to 9 have good cards.)
M=10
q "INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
   SELECT 100000 + g, 1 + (g - 1) % 9, 700, 700, 'usd', now() - interval '1 day' FROM generate_series(1, $M) g" >/dev/null
curl -sf -X POST "$SIM_URL/_control/faults" -d '[{"fault": "500_after"}]' >/dev/null
"$CHARGER" --once --db "dbname=metrics user=charger_app host=$PG2" >/dev/null 2>&1
RLOG=$TEST_TMP/recon.log
RELAY_DB="dbname=metrics user=relay_app host=$PG2 password=$DBPW" RELAY_GATEWAY_KEY=$KEY \
  "$RELAY" --gateway-url "$SIM_URL" --smtp-url "$SMTP_URL" "${RELAY_TEST_ARGS[@]}" \
  --lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1 \
  --metrics-listen 127.0.0.1:0 --metrics-db-interval 1 >"$RLOG" 2>&1 &
RELAY_PIDS[recon]=$!
looked_up() { [ "$(q "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND invoice_id > 100000
                     AND state = 'succeeded'")" = "$M" ]; }
ok "500 after charging: the $M charges are found by lookups" wait_for 60 looked_up
R=$TEST_TMP/recon.txt
recon_counted() { scrape "$(url_in "$RLOG")" "$R" &&
                  [ "$(metric "$R" 'outbox_charge_outcomes_total{outcome="succeeded"}')" = "$M" ]; }
ok "outcomes from lookups are counted" wait_for 10 recon_counted
is "$(metric "$R" 'outbox_charge_outcomes_total{outcome="unknown"}')" "$M" "each first counted as unknown"
is "$(metric "$R" 'relay_gateway_answers_total{class="unknown"}')" "$M" "relay_gateway_answers_total{class=\"unknown\"}: the 500s"
is "$(metric "$R" 'relay_lookups_total{found="succeeded"}')" "$M" "relay_lookups_total{found=\"succeeded\"}"
is "$(metric "$R" 'relay_lookup_verdicts_total{verdict="succeeded"}')" "$M" "relay_lookup_verdicts_total{verdict=\"succeeded\"}"
valid "$R" "/metrics after lookups"
relay_stop recon TERM
is "$RELAY_RC" 0 "that relay stops cleanly too"

# --- the json logs -------------------------------------------------------------
for f in "$LOG" "$CHLOG"; do
  lines=$(wc -l <"$f")
  is "$(jq -c . "$f" 2>&1 | wc -l)" "$lines" "$(basename "$f"): each of its $lines lines is one JSON object (jq)"
  is "$(jq -r 'select((.time | type) == "string" and (.level | type) == "string"
                      and (.message | type) == "string" and (.pid | type) == "number") | 1' "$f" | wc -l)" \
    "$lines" "$(basename "$f"): every line has time, level, message, pid"
done
is "$(jq -r 'select(.message | startswith("gateway answered 200")) | select((.invoice | type) == "number"
             and (.row | type) == "number" and (.attempt | type) == "number" and (.claim | type) == "string") | 1' \
      "$LOG" | wc -l)" "$charged" \
  "each success's line names its invoice, row and attempt (numbers) and claim token (string)"
is "$(jq -r 'select(.message | test("^exiting with status 0")) | .level' "$LOG")" info "the exit line is there"

# --- no secret anywhere ----------------------------------------------------------
all="$LOG $CHLOG $RLOG $TEST_TMP/during.txt $TEST_TMP/after.txt $TEST_TMP/down.txt $TEST_TMP/health.txt $R"
is "$(cat $all | grep -cF "$KEY")" 0 "the gateway key appears in no log, /metrics or /healthz"
is "$(cat $all | grep -cF "$DBPW")" 0 "the database password appears in no log, /metrics or /healthz"

# --- the example Grafana dashboard (docs/grafana/chargeguard.json) ---------------
# It parses, and every metric its queries name is one these scrapes of a
# running relay and charger really carry (a histogram's _bucket included).
DASH=$CG_ROOT/docs/grafana/chargeguard.json
ok "docs/grafana/chargeguard.json parses (python3 -m json.tool)" python3 -m json.tool "$DASH" /dev/null
used=$(jq -r '.. | objects | .expr? // empty' "$DASH" | grep -oE '\b(outbox|relay|charger|process)_[a-z_]+' | sort -u)
served=$(cat "$TEST_TMP/after.txt" "$TEST_TMP/ch.txt" | grep -v '^#' | grep -oE '^[a-z_]+' | sort -u)
ok "the dashboard queries $(wc -l <<<"$used") metrics" [ "$(wc -l <<<"$used")" -ge 20 ]
is "$(comm -23 <(echo "$used") <(echo "$served") | tr '\n' ' ')" "" \
  "every metric the dashboard queries is served by the relay or the charger"

done_testing
