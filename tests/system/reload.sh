#!/usr/bin/env bash
# SIGHUP reloads the configuration of both daemons, each started once and
# sent many SIGHUPs: every reloadable key changes and says so (max_inflight,
# poll_interval, log_level, smtp_url and the charger's interval also change
# what the daemon does); a restart-only key says "needs a restart" and keeps
# its value; every bad value, an unknown key and an unreadable file are
# refused with a message naming the key (or file) and what it accepts, and
# the whole running configuration stays, the daemon running.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT
ok "gateway simulator started (500 ms per answer)" sim_start --latency-ms 500
ok "SMTP sink started" smtp_start

DB=reload
new_db $DB
seed $DB 40 10

# reload DAEMON [KEY = VALUE]...: rewrite DAEMON's config file (its base
# lines, then these, which win), SIGHUP it, wait for the reload's last line;
# OUT holds what that reload logged
reload() {
  local d=$1 log=$TEST_TMP/$1.log; shift
  { "${d}_base"; printf '%s\n' "$@"; } >"$TEST_TMP/$d.conf"
  RELOAD_FROM=$(wc -l <"$log")
  kill -HUP "${PID[$d]}"
  wait_for 10 reload_logged "$log" "$RELOAD_FROM" "${RELOAD_SYNC:-SIGHUP: configuration}" "${PID[$d]}"
  OUT=$(since "$d")
}
since() { tail -n +$((RELOAD_FROM + 1)) "$TEST_TMP/$1.log"; } # what DAEMON logged since the last reload began
# reload_logged LOG FROM PATTERN [PID]: the line is there (or PID died: no use waiting)
reload_logged() { tail -n +$(($2 + 1)) "$1" | grep -q "$3" || { [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; }; }
declare -A PID=()

# --- the relay -----------------------------------------------------------------
# --lease on the command line: a flag still wins over the file after a reload
relay_base() {
  printf '%s\n' "[relay]" "http_timeout = 3" "settle = 12" "invoice_retry_schedule = 3600" \
    "reconcile_schedule = 3600" "poll_interval = 30" "max_inflight = 2" "claim_batch = 2" \
    "mail_from = billing@chargeguard.test" "email_retry = 0.2" "lease = 9" "record_batch = 2"
}
relay_base >"$TEST_TMP/relay.conf"
RELAY_GATEWAY_KEY=sk_test_reload "$RELAY" --db "dbname=$DB user=relay_app host=$PGHOST" \
  --gateway-url "$SIM_URL" --config "$TEST_TMP/relay.conf" --lease 6 >"$TEST_TMP/relay.log" 2>&1 &
PID[relay]=$!
up() { grep -q "started:" "$TEST_TMP/relay.log"; }
ok "the relay starts from its config file" wait_for 20 up
alive() { kill -0 "${PID[$1]}" 2>/dev/null; }
submitting() { sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'submitting'"; }
charges_in() { sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = '$1'"; }
# most_submitting SECONDS: the most charges in flight seen, sampled that long
most_submitting() {
  local most=0 n end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do
    n=$(submitting); [ "$n" -gt "$most" ] && most=$n
    sleep 0.05
  done
  echo "$most"
}

"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
most=$(most_submitting 2)
ok "max_inflight = 2: at most 2 charges in flight (saw $most)" [ "$most" -le 2 -a "$most" -ge 1 ]
reload relay "max_inflight = 10" "claim_batch = 10"
like "$OUT" "SIGHUP: max_inflight changed: 2 -> 10" "max_inflight: the change is logged"
like "$OUT" "SIGHUP: claim_batch changed: 2 -> 10" "claim_batch: the change is logged"
like "$OUT" "configuration reloaded \(2 setting" "the reload counts what it changed"
above() { [ "$(submitting)" -gt 2 ]; }
ok "max_inflight = 10: more than 2 charges in flight at once" wait_for 5 above
reload relay "max_inflight = 1"
sent_before=$(charges_in succeeded)
one() { [ "$(submitting)" -le 1 ]; }
ok "max_inflight lowered to 1: what was in flight finishes, then at most 1" wait_for 5 one
most=$(most_submitting 1)
ok "max_inflight = 1 holds (saw $most)" [ "$most" -le 1 ]
reload relay "max_inflight = 50" "claim_batch = 50"
all_charged() { [ "$(charges_in succeeded)" = 40 ]; }
ok "every charge succeeds" wait_for 20 all_charged
unlike "$(cat "$TEST_TMP/relay.log")" "not sent" "lowering max_inflight cancelled nothing ($sent_before charged before)"

# poll_interval: a row that appears without NOTIFY waits for the poll
unnotified() { # FIRST [LAST]: due charge rows for new invoices, written behind the charger's back
  sql $DB "INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, status)
           SELECT g, 1, 500, 500, 'usd', now(), 'in_flight' FROM generate_series($1, ${2:-$1}) g;
           INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)
           SELECT 'charge', g, 'cg_reload_' || g, 'pending', 500, 'usd' FROM generate_series($1, ${2:-$1}) g"
}
charged() { [ "$(sql $DB "SELECT state FROM outbox.messages WHERE kind = 'charge' AND invoice_id = $1")" = succeeded ]; }
unnotified 1001
sleep 1
is "$(sql $DB "SELECT state FROM outbox.messages WHERE invoice_id = 1001")" pending \
  "poll_interval = 30: a row without NOTIFY waits"
reload relay "max_inflight = 50" "claim_batch = 50" "poll_interval = 0.2"
like "$OUT" "SIGHUP: poll_interval changed: 30 -> 0.2" "poll_interval: the change is logged"
ok "the waiting row is charged" wait_for 5 charged 1001
unnotified 1002
ok "poll_interval = 0.2: the poll timer restarted, a new row is charged within 2 s" wait_for 2 charged 1002

# log_level: debug lines appear, then info lines go
POLL=("max_inflight = 50" "claim_batch = 50" "poll_interval = 0.2")
unlike "$(cat "$TEST_TMP/relay.log")" "invoice=1002 .*recorded succeeded" "log_level = info: no debug line"
reload relay "${POLL[@]}" "log_level = debug"
like "$OUT" "SIGHUP: log_level changed: info -> debug" "log_level: the change is logged"
unnotified 1003
debug_line() { grep -q "invoice=1003 .*recorded succeeded" "$TEST_TMP/relay.log"; }
ok "log_level = debug: the charge's debug lines appear" wait_for 5 debug_line
reload relay "${POLL[@]}" "log_level = warn"
like "$OUT" "SIGHUP: log_level changed: debug -> warn" "log_level warn: the change is logged"
RELOAD_SYNC="needs a restart" reload relay "${POLL[@]}" "log_level = warn" "http_timeout = 2"
like "$OUT" "http_timeout needs a restart; still using 3 \(the configuration now says 2\)" \
  "a restart-only key that changed: needs a restart, still using the old value"
sleep 0.3
unlike "$(since relay)" "configuration reloaded" "log_level = warn: info lines are dropped"
reload relay "${POLL[@]}" "lease = 7"
unlike "$OUT" "lease" "lease is given as a flag: the file's new value is not even considered"

# smtp_url and mail_from: emails wait until there is a server, then go
waiting=$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND state = 'pending'")
ok "no smtp_url: the $waiting emails wait" [ "$waiting" -ge 40 ]
reload relay "${POLL[@]}" "smtp_url = $SMTP_URL" "mail_from = receipts@reload.test"
like "$OUT" "SIGHUP: smtp_url changed: '' -> '$SMTP_URL'" "smtp_url: the change is logged"
like "$OUT" "SIGHUP: mail_from changed: 'billing@chargeguard.test' -> 'receipts@reload.test'" \
  "mail_from: the change is logged"
emails_sent() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND state = 'sent'")" = "$waiting" ]; }
ok "smtp_url set by a reload: the waiting emails are sent" wait_for 20 emails_sent
like "$(cat "$SMTP_LEDGER")" "receipts@reload.test" "they come from the new mail_from"
POLL+=("smtp_url = $SMTP_URL" "mail_from = receipts@reload.test")

# every other reloadable key: its change is logged
reload relay "${POLL[@]}" "record_batch = 50" "email_max_inflight = 8" "lookup_max_inflight = 4" \
  "email_max_attempts = 5" "email_retry = 1.5" "reconcile_schedule = 120,600" \
  "invoice_retry_schedule = 7200,86400"
for change in "record_batch changed: 2 -> 50" "email_max_inflight changed: 64 -> 8" \
              "lookup_max_inflight changed: 16 -> 4" "email_max_attempts changed: 12 -> 5" \
              "email_retry changed: 0.2 -> 1.5" "reconcile_schedule changed: 3600 -> 120,600" \
              "invoice_retry_schedule changed: 3600 -> 7200,86400"; do
  like "$OUT" "SIGHUP: $change" "${change%% *}: the change is logged"
done
reload relay "${POLL[@]}" "record_batch = 500"
like "$OUT" "record_batch changed: 50 -> 500" "record_batch: the change is logged"
# 30 answers at once: record batches far larger than the 2 the relay
# started with (its batch array grew with the reload; ASan would catch an
# overrun)
unnotified 1010 1039
burst_charged() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE invoice_id BETWEEN 1010 AND 1039 AND state = 'succeeded'")" = 30 ]; }
ok "record_batch grown past its size at start: a burst of 30 answers is recorded" wait_for 10 burst_charged
ok "the relay is running" alive relay

# every bad value: refused, naming the key and what it accepts; the valid
# change beside it (claim_batch) is not applied either
GOOD=("${POLL[@]}" "record_batch = 500")
bad_relay=(
  "max_inflight = 0|key 'max_inflight': 0 is out of range; expected an integer from 1 to 10000"
  "claim_batch = 1001|key 'claim_batch': 1001 is out of range; expected an integer from 1 to 1000"
  "record_batch = 0|key 'record_batch': 0 is out of range; expected an integer from 1 to 1000"
  "poll_interval = 0|key 'poll_interval': 0 is out of range; expected a number of seconds from 0.01 to 60"
  "email_max_inflight = x|key 'email_max_inflight': 'x' is not an integer; expected an integer from 1 to 1000"
  "lookup_max_inflight = 1001|key 'lookup_max_inflight': 1001 is out of range; expected an integer from 1 to 1000"
  "email_max_attempts = 0|key 'email_max_attempts': 0 is out of range; expected an integer from 1 to 1000"
  "email_retry = 0|key 'email_retry': 0 is out of range; expected a number of seconds from 0.01 to 86400"
  "reconcile_schedule = 60,,300|key 'reconcile_schedule': '60,,300' is not a list of 1 to 32 comma-separated seconds, each from 1 to 31536000"
  "invoice_retry_schedule = 0|key 'invoice_retry_schedule': '0' is not a list of 1 to 32 comma-separated seconds, each from 1 to 31536000"
  "invoice_retry_schedule = 10|the first --invoice-retry-schedule wait \(10 s\) must be longer than --settle \(12 s\)"
  "log_level = loud|key 'log_level': 'loud' is not one of: debug, info, warn, error"
  "smtp_url = smtp://mail.example.com:25|--smtp-url: plain smtp:// is refused for mail.example.com"
  "mail_from = nobody|--mail-from 'nobody' is not a plain address"
  "http_timeout = 0|key 'http_timeout': 0 is out of range; expected a number of seconds from 0.1 to 300"
  "http_timeout = 6|--lease 6 s must exceed --http-timeout 6 s by the margin 1 s"
  "lease = 0.5|key 'lease': 0.5 is out of range; expected a number of seconds from 1 to 3600"
  "settle = 0|key 'settle': 0 is out of range; expected a number of seconds from 1 to 604800"
  "settle = 9|--settle 9 s must exceed --lease \+ --http-timeout \+ margin \(10 s\)"
  "gateway = paypal|key 'gateway': 'paypal' is not one of: stripe, authorizenet"
  "log_format = xml|key 'log_format': 'xml' is not one of: text, json"
  "metrics_listen = nowhere|--metrics-listen"
  "metrics_db_interval = 0|key 'metrics_db_interval': 0 is out of range; expected a number of seconds from 1 to 3600"
  "bogus = 1|unknown key 'bogus'"
)
for entry in "${bad_relay[@]}"; do
  reload relay "${GOOD[@]}" "claim_batch = 7" "${entry%%|*}"
  like "$OUT" "SIGHUP: configuration not reloaded, every setting stays as it was: .*${entry#*|}" \
    "relay ${entry%%|*}: refused, naming the key and what it accepts"
  unlike "$OUT" "changed:" "relay ${entry%%|*}: nothing else changed"
done
ok "the relay is still running after every refused reload" alive relay
mv "$TEST_TMP/relay.conf" "$TEST_TMP/relay.conf.away"
before=$(wc -l <"$TEST_TMP/relay.log")
kill -HUP "${PID[relay]}"
wait_for 10 reload_logged "$TEST_TMP/relay.log" "$before" "SIGHUP: configuration"
like "$(tail -n +$((before + 1)) "$TEST_TMP/relay.log")" \
  "configuration not reloaded, every setting stays as it was: config file .*relay.conf: cannot open" \
  "an unreadable config file: refused, naming the file"
unnotified 1005
ok "the relay runs on with its old settings (a row is charged by the 0.2 s poll)" wait_for 3 charged 1005
kill -TERM "${PID[relay]}"; wait "${PID[relay]}"
is "$?" 0 "the relay stops cleanly after all those reloads"

# --- the charger -----------------------------------------------------------------
charger_base() { printf '%s\n' "[charger]" "interval = 30" "batch = 500"; }
charger_base >"$TEST_TMP/charger.conf"
"$CHARGER" --db "$(charger_db $DB)" --config "$TEST_TMP/charger.conf" >"$TEST_TMP/charger.log" 2>&1 &
PID[charger]=$!
passes() { grep -c 'pass [0-9]* done' "$TEST_TMP/charger.log"; }
first() { [ "$(passes)" -ge 1 ]; }
ok "the charger makes its first pass" wait_for 20 first
sleep 0.6
is "$(passes)" 1 "interval = 30: no second pass yet"
reload charger "interval = 0.3" "batch = 50" "db_wait = 10"
like "$OUT" "SIGHUP: interval changed: 30 -> 0.3" "interval: the change is logged"
like "$OUT" "SIGHUP: batch changed: 500 -> 50" "batch: the change is logged"
like "$OUT" "SIGHUP: db_wait changed: 300 -> 10" "db_wait: the change is logged"
like "$OUT" "next pass in 0 s" "the wait already longer than the new interval: the next pass is now"
more() { [ "$(passes)" -ge 4 ]; }
ok "interval = 0.3: passes follow every 0.3 s" wait_for 3 more
reload charger "interval = 0.3" "log_level = warn"
like "$OUT" "SIGHUP: log_level changed: info -> warn" "charger log_level: the change is logged"
n=$(passes); sleep 1
is "$(passes)" "$n" "log_level = warn: the passes' info lines stop"
RELOAD_SYNC="needs a restart" reload charger "interval = 0.3" "log_level = warn" "log_format = json"
like "$OUT" "log_format needs a restart; still using text \(the configuration now says json\)" \
  "charger: a restart-only key needs a restart"
reload charger "interval = 0.3" "log_level = info"
bad_charger=(
  "interval = 0|key 'interval': 0 is out of range; expected a number of seconds from 0.1 to 86400"
  "batch = 10001|key 'batch': 10001 is out of range; expected an integer from 1 to 10000"
  "db_wait = -1|key 'db_wait': -1 is out of range; expected a number of seconds from 0 to 86400"
  "log_level = loud|key 'log_level': 'loud' is not one of: debug, info, warn, error"
  "log_format = xml|key 'log_format': 'xml' is not one of: text, json"
  "metrics_listen = nowhere|--metrics-listen"
  "once = true|unknown key 'once'"
)
for entry in "${bad_charger[@]}"; do
  reload charger "interval = 0.3" "batch = 7" "${entry%%|*}"
  like "$OUT" "SIGHUP: configuration not reloaded, every setting stays as it was: .*${entry#*|}" \
    "charger ${entry%%|*}: refused, naming the key and what it accepts"
  unlike "$OUT" "changed:" "charger ${entry%%|*}: nothing else changed"
done
rm "$TEST_TMP/charger.conf"
before=$(wc -l <"$TEST_TMP/charger.log")
kill -HUP "${PID[charger]}"
wait_for 10 reload_logged "$TEST_TMP/charger.log" "$before" "SIGHUP: configuration"
like "$(tail -n +$((before + 1)) "$TEST_TMP/charger.log")" "config file .*charger.conf: cannot open" \
  "charger: an unreadable config file is refused, naming the file"
n=$(passes)
later() { [ "$(passes)" -gt $((n + 1)) ]; }
ok "the charger runs on with its old settings" wait_for 3 later
kill -TERM "${PID[charger]}"; wait "${PID[charger]}"
is "$?" 0 "the charger stops cleanly"

done_testing
