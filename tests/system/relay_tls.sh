#!/usr/bin/env bash
# TLS and secrets (issue 8, part 3), with a test CA made here by openssl and
# socat TLS fronts before the simulator and the SMTP sink:
#  - with --gateway-ca-file/--smtp-ca-file naming the test CA and a
#    certificate for 127.0.0.1, charges and emails go through over https and
#    smtps (so the CA file is what libcurl trusts: the system's CAs would
#    refuse this certificate);
#  - with a certificate for another host name, the handshake fails before
#    the request leaves: the simulator's ledger stays empty and no row
#    succeeds or is sent again;
#  - a 302 to another host is not followed: nothing reaches the simulator;
#  - plain http:// and smtp:// to a non-loopback address (192.0.2.1) and an
#    unreadable CA file are refused at start (exit 2, naming the key), with
#    no connection attempted;
#  - the gateway key appears in no log, metric, error or event of these runs.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
source "$CG_ROOT/tests/lib/tls.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

export RELAY_TEST_KEY="sk_test_tls_$RANDOM$RANDOM$RANDOM"
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
ok "a test CA, a certificate for 127.0.0.1 and one for another host name" \
  eval 'tls_make_ca "$PKI" && tls_make_cert "$PKI" good "IP:127.0.0.1,DNS:localhost" &&
        tls_make_cert "$PKI" wrong "DNS:wrong.example"'
ok "gateway simulator started" sim_start --seed 21
ok "SMTP sink started" smtp_start
SIM_PORT=${SIM_URL##*:}
SMTP_PORT=${SMTP_URL##*:}
ok "TLS front for the simulator (good certificate)" tls_front "$PKI/good.pem" "$PKI/good.key" "$SIM_PORT"
GOOD_URL=https://127.0.0.1:$FRONT_PORT
ok "TLS front for the SMTP sink (good certificate)" tls_front "$PKI/good.pem" "$PKI/good.key" "$SMTP_PORT"
SMTPS_URL=smtps://127.0.0.1:$FRONT_PORT
ok "TLS front for the simulator (certificate for wrong.example)" \
  tls_front "$PKI/wrong.pem" "$PKI/wrong.key" "$SIM_PORT"
WRONG_URL=https://127.0.0.1:$FRONT_PORT
ok "a front answering 302 to the simulator's own URL" redirect_front "$SIM_URL/v1/charges"
REDIRECT_URL=http://127.0.0.1:$FRONT_PORT

prepare() { # DB N
  new_db "$1"
  seed "$1" "$2" "$2"
  curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
  "$CHARGER" --once --db "$(charger_db "$1")" >/dev/null 2>&1
}
requests() { curl -sf "$SIM_URL/_ledger" | jq '.requests | length'; }
sent_out() { [ "$(sql "$1" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                            AND state IN ('pending', 'submitting')")" = 0 ]; }

# --- the right CA and certificate: https and smtps work ----------------------
prepare tls_ok 5
SIM_URL=$GOOD_URL SMTP_URL=$SMTPS_URL relay_start ok tls_ok \
  --gateway-ca-file "$PKI/ca.pem" --smtp-ca-file "$PKI/ca.pem"
ok "right CA and certificate: every charge and email settles over https and smtps" wait_for 30 settled tls_ok
relay_stop ok TERM
is "$RELAY_RC" 0 "right CA: the relay stops cleanly"
is "$(sql tls_ok "SELECT string_agg(DISTINCT state, ',') FROM outbox.messages WHERE kind = 'charge'")" \
  succeeded "right CA: the charges succeeded"
is "$(curl -sf "$SIM_URL/_ledger" | jq '[.charges[] | select(.status == "succeeded")] | length')" 5 \
  "right CA: the simulator charged each once"
is "$(wc -l <"$SMTP_LEDGER")" 5 "right CA: the SMTP sink received the 5 receipts over smtps"
check_invariants tls_ok --expect-settled

# --- a certificate for another host name: nothing leaves ------------------------
prepare tls_wrong 3
SIM_URL=$WRONG_URL relay_start wrong tls_wrong --gateway-ca-file "$PKI/ca.pem" \
  --metrics-listen 127.0.0.1:0
ok "wrong host name: every charge leaves pending/submitting" wait_for 30 sent_out tls_wrong
metrics_url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$PEERS_TMP/wrong.log" | head -1)
curl -sS --max-time 3 "$metrics_url/metrics" >"$TEST_TMP/wrong.metrics"
relay_stop wrong TERM
is "$RELAY_RC" 0 "wrong host name: the relay stops cleanly"
is "$(requests)" 0 "wrong host name: no request reached the simulator (its ledger is empty)"
is "$(sql tls_wrong "SELECT string_agg(DISTINCT state, ',') FROM outbox.messages WHERE kind = 'charge'")" \
  unknown "wrong host name: each row is unknown (connected, so PROTOCOL.md allows no re-send)"
is "$(sql tls_wrong "SELECT max(attempts) FROM outbox.messages WHERE kind = 'charge'")" 1 \
  "wrong host name: each row was tried once, never again"
like "$(sql tls_wrong "SELECT string_agg(DISTINCT last_error, ' | ') FROM outbox.messages WHERE kind = 'charge'")" \
  "certificate|SSL|wrong\\.example" "wrong host name: last_error names the certificate problem"

# --- a redirect is not followed ---------------------------------------------------
prepare tls_redirect 3
SIM_URL=$REDIRECT_URL relay_start redirect tls_redirect
ok "302: every charge leaves pending/submitting" wait_for 30 sent_out tls_redirect
relay_stop redirect TERM
is "$(requests)" 0 "302 to the simulator: not followed (its ledger is empty)"
is "$(sql tls_redirect "SELECT string_agg(DISTINCT state, ',') FROM outbox.messages WHERE kind = 'charge'")" \
  unknown "302: each row is unknown (an unexpected status after sending)"

# --- refused at start ---------------------------------------------------------------
new_db tls_refused
refused() { # NAME ARGS...: a relay that should exit by itself at start; RELAY_RC
  local name=$1; shift
  local run=("$RELAY")
  # LeakSanitizer cannot work under ptrace: leaks are checked in the other runs
  command -v strace >/dev/null &&
    run=(env ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=connect -o "$TEST_TMP/$name.strace" "$RELAY")
  RELAY_GATEWAY_KEY=$RELAY_TEST_KEY timeout 20 "${run[@]}" --db "dbname=tls_refused user=relay_app host=$PGHOST" \
    --gateway-url "$SIM_URL" "${RELAY_TEST_ARGS[@]}" "$@" >"$PEERS_TMP/$name.log" 2>&1
  RELAY_RC=$?
}
refused plain_gw --gateway-url http://192.0.2.1:80
is "$RELAY_RC" 2 "plain http:// to 192.0.2.1: refused at start (exit 2)"
like "$(relay_log plain_gw)" "plain http:// is refused for 192\\.0\\.2\\.1" "and says why"
refused plain_smtp --smtp-url smtp://192.0.2.1:25
is "$RELAY_RC" 2 "plain smtp:// to 192.0.2.1: refused at start (exit 2)"
like "$(relay_log plain_smtp)" "plain smtp:// is refused for 192\\.0\\.2\\.1" "and says why"
if command -v strace >/dev/null; then
  is "$(cat "$TEST_TMP"/plain_*.strace | grep -c '192\.0\.2\.1')" 0 "192.0.2.1 was never contacted (strace)"
else
  echo "ok $((TAP_N += 1)) - 192.0.2.1 was never contacted # SKIP strace is not installed"
fi
refused no_ca --gateway-ca-file "$TEST_TMP/no-such-ca.pem"
is "$RELAY_RC" 2 "a CA file that does not exist: refused at start (exit 2)"
like "$(relay_log no_ca)" "gateway_ca_file.*no-such-ca\\.pem.*No such file" "and the message names the key and the file"
refused dir_ca --smtp-ca-file "$PKI"
is "$RELAY_RC" 2 "a directory as the SMTP CA file: refused at start (exit 2)"
like "$(relay_log dir_ca)" "smtp_ca_file.*not a regular file" "and the message names the key"
chmod 000 "$PKI/wrong.pem"
if [ "$(id -u)" -ne 0 ]; then
  refused unreadable_ca --gateway-ca-file "$PKI/wrong.pem"
  is "$RELAY_RC" 2 "an unreadable CA file: refused at start (exit 2)"
else
  echo "ok $((TAP_N += 1)) - an unreadable CA file: refused at start # SKIP root reads any file"
fi

# --- the key: in no log, metric, error or event ----------------------------------
is "$(cat "$PEERS_TMP"/*.log "$TEST_TMP/wrong.metrics" | grep -cF "$RELAY_TEST_KEY")" 0 \
  "the gateway key appears in no relay log and not in /metrics"
ok "the metrics were scraped" [ -s "$TEST_TMP/wrong.metrics" ]
for db in tls_ok tls_wrong tls_redirect; do
  is "$(sql $db "SELECT (SELECT count(*) FROM outbox.messages WHERE strpos(coalesce(last_error, ''), '$RELAY_TEST_KEY') > 0)
                      + (SELECT count(*) FROM outbox.events WHERE strpos(coalesce(detail, ''), '$RELAY_TEST_KEY') > 0)")" 0 \
    "$db: the key is in no row's last_error and no event's detail"
done

done_testing
