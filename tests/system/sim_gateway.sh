#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq filters name their $variables in single quotes
# The gateway simulator (tests/sim/README.md, "gatewaysim"), ASan+UBSan
# build, through curl: every behaviour the relay's tests lean on. No
# database: this sources tap.sh directly, not system.sh.
CG_ROOT=${CG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$CG_ROOT/tests/lib/tap.sh"
# Sanitizer reports fail the run; LeakSanitizer's exit code is 23.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# tests/run points CG_BIN at build/asan/bin; the simulator lives beside it.
SIM_BIN=${GATEWAYSIM:-$(dirname "${CG_BIN:-$CG_ROOT/build/asan/bin}")/sim/gatewaysim}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cg-simgw.XXXXXX")
SIM_PIDS=()
cleanup() {
  local p
  for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

if ! command -v jq >/dev/null; then
  echo "ok 1 # SKIP jq is not installed (apt-get install jq): the JSON checks need it"
  done_testing
  exit
fi
if [ ! -x "$SIM_BIN" ]; then
  _tap_result 1 "$SIM_BIN exists (run make first)"
  done_testing
  exit
fi

KEY=sk_test_4eC39HqLyjWDarjtT1zdp7dc
AUTH=(-H "Authorization: Bearer $KEY")

# start_sim NAME ARGS...: run the simulator on a free port; sets SIM_PID,
# PORT, URL. Its stderr goes to $TMP/NAME.log.
start_sim() {
  local name=$1 i; shift
  "$SIM_BIN" --port 0 --ready-file "$TMP/$name.port" "$@" 2>"$TMP/$name.log" &
  SIM_PID=$!
  SIM_PIDS+=("$SIM_PID")
  for i in $(seq 200); do [ -s "$TMP/$name.port" ] && break; sleep 0.05; done
  PORT=$(cat "$TMP/$name.port" 2>/dev/null)
  URL=http://127.0.0.1:$PORT
}

# stop_sim SIGNAL NAME: stop it, check a clean exit (sanitizers included).
stop_sim() {
  local sig=$1 name=$2 rc
  kill -"$sig" "$SIM_PID"
  wait "$SIM_PID"; rc=$?
  is "$rc" 0 "$name: SIG$sig stops it with exit 0 (and no sanitizer report)"
  ok "$name: the ready file is removed on a clean exit" [ ! -e "$TMP/$name.port" ]
}

# charge KEY [curl args...]: POST /v1/charges with the API key (and the
# idempotency key unless KEY is ""). Sets CODE, RC (curl's exit), TIME;
# body in $TMP/body, headers in $TMP/headers.
charge() {
  local key=$1 out; shift
  local idem=()
  [ -n "$key" ] && idem=(-H "Idempotency-Key: $key")
  out=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code} %{time_total}' \
    "${AUTH[@]}" "${idem[@]}" "$URL/v1/charges" "$@" 2>"$TMP/curl.err")
  RC=$?
  CODE=${out% *}
  TIME=${out#* }
}

# params OUTBOX_ID [CUSTOMER [SOURCE]]: the form the relay sends.
params() {
  P=(-d amount=1000 -d currency=usd -d "customer=${2:-cus_A}" -d "source=${3:-tok_visa}"
     -d "description=Invoice $1" -d "metadata[invoice_id]=$1" -d "metadata[outbox_id]=$1")
}

get() { curl -s -o "$TMP/body" -w '%{http_code}' "${AUTH[@]}" "$@"; }
bq() { jq -r "$@" "$TMP/body"; }
header() { grep -i "^$1:" "$TMP/headers" | head -1 | cut -d: -f2- | tr -d ' \r'; }
ledger() { curl -s "$URL/_ledger" >"$TMP/ledger.json"; }
lq() { jq -r "$@" "$TMP/ledger.json"; }
# jtest FILTER FILE: the filter holds (jq -e), quietly
jtest() { jq -e "$@" >/dev/null; }
# requests / charges of one idempotency key in the ledger
req_of() { lq --arg k "$1" "[.requests[] | select(.idempotency_key == \$k)]$2"; }
charges_of() { lq --arg k "$1" "[.charges[] | select(.idempotency_key == \$k)]$2"; }
set_rules() {
  curl -s -o "$TMP/rules.out" -w '%{http_code}' "$URL/_control/faults" \
    -H 'Content-Type: application/json' --data-binary "$1"
}
# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $deadline ]; do "$@" && return 0; sleep 0.05; done
  return 1
}

# ---- command line ------------------------------------------------------------
help=$("$SIM_BIN" --help); rc=$?
is "$rc" 0 "--help exits 0"
for opt in --port --latency-ms --seed --fault --key-prefix --ready-file --max-connections \
           --verbose --help --version; do
  like "$help" "^  $opt" "--help documents $opt"
done
like "$help" "500_before.*500_after" "--help lists the fault kinds"
like "$(tr -s ' \n' '  ' <<<"$help")" "forget_after, 409, huge_after" "--help lists 409 and huge_after"
for bad in "" "--port" "--port 70000" "--port 0 --bogus" "--port 0 extra" \
           "--port 0 --latency-ms -1" "--port 0 --fault 500_before" \
           "--port 0 --fault nosuch:0.5" "--port 0 --fault 500_before:1.5" \
           "--port 0 --fault delay:x:1" "--port 0 --seed abc" "--port 0 --verbose=1"; do
  # shellcheck disable=SC2086
  err=$("$SIM_BIN" $bad 2>&1 >/dev/null); rc=$?
  is "$rc" 2 "refuses '$bad' with exit 2"
  like "$err" "^gatewaysim: .+" "'$bad': says why"
done
like "$("$SIM_BIN" --version)" "^gatewaysim .*[0-9]" "--version"

# ---- the main simulator ----------------------------------------------------------
start_sim main --seed 42 --verbose
like "$(cat "$TMP/main.port" 2>/dev/null)" '^[0-9]+$' "ready file holds the chosen port"
ok "the ready file ends with a newline" [ "$(tail -c1 "$TMP/main.port" | od -An -c | tr -d ' ')" = '\n' ]
is "$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/_health")" 200 "GET /_health: 200"
is "$(tr -d '\n' <"$TMP/body")" ok "GET /_health: ok"
if command -v ss >/dev/null; then
  like "$(ss -Hltn "sport = :$PORT")" "127\.0\.0\.1:$PORT" "listens on 127.0.0.1"
  unlike "$(ss -Hltn "sport = :$PORT")" "(0\.0\.0\.0|\*|\[::\]):$PORT" "and on no other address"
fi

# ---- success -------------------------------------------------------------------
t0=$(date +%s)
params 1
charge ok-1 "${P[@]}" -d "metadata[extra]=kept"
is "$CODE" 200 "charge: 200"
like "$(header Content-Type)" "^application/json" "charge: JSON"
like "$(bq .id)" '^ch_[A-Za-z0-9]{24}$' "charge id is ch_ and 24 alphanumerics"
is "$(bq '[.object, .amount, .currency, .customer, .source, .status, .paid, .captured] | map(tostring) | join(" ")')" \
   "charge 1000 usd cus_A tok_visa succeeded true true" "charge object fields"
is "$(bq '.metadata | [.invoice_id, .outbox_id, .extra] | join(" ")')" "1 1 kept" "metadata kept, any key"
is "$(bq '.created | type')" number "created is a number"
ok "created is unix seconds, now" [ "$(bq .created)" -ge "$t0" -a "$(bq .created)" -le "$(($(date +%s) + 1))" ]
ok "created is an integer" jtest '.created == (.created | floor)' "$TMP/body"
is "$(header Idempotent-Replayed)" "" "a first answer is not marked replayed"
CH1=$(bq .id)
params 2
charge "" "${P[@]}"
is "$CODE" 200 "a charge without Idempotency-Key: 200"

# ---- validation: 400, nothing charged, nothing stored for the key -------------------
v=val-1
base=(-d currency=usd -d customer=cus_V -d "metadata[outbox_id]=100")
check_400() { # DESC CURL-ARGS...
  local desc=$1; shift
  charge $v "$@"
  is "$CODE" 400 "400 when $desc"
  is "$(bq .error.type)" invalid_request_error "$desc: invalid_request_error"
}
check_400 "amount is missing" "${base[@]}"
check_400 "amount is 0" -d amount=0 "${base[@]}"
check_400 "amount is negative" -d amount=-5 "${base[@]}"
check_400 "amount is not an integer" -d amount=12.5 "${base[@]}"
check_400 "amount is not a number" -d amount=abc "${base[@]}"
check_400 "amount is too large" -d amount=100000000 "${base[@]}"
check_400 "currency is upper case" -d amount=500 -d currency=USD -d customer=cus_V
check_400 "currency has two letters" -d amount=500 -d currency=us -d customer=cus_V
check_400 "currency is missing" -d amount=500 -d customer=cus_V
check_400 "neither customer nor source" -d amount=500 -d currency=usd
check_400 "the body has a bad %-escape" -d 'amount=5%zz0' "${base[@]}"
check_400 "a parameter is unknown" -d amount=500 -d amuont=5 "${base[@]}"
check_400 "a parameter is repeated" -d amount=500 -d amount=600 "${base[@]}"
is "$(bq .error.param)" amount "the error names the parameter"
long=$(printf 'k%.0s' $(seq 256))
charge "$long" -d amount=500 "${base[@]}"
is "$CODE" 400 "400 when the idempotency key has 256 characters"
charge "${long:1}" -d amount=500 "${base[@]}"
is "$CODE" 200 "a 255-character key is accepted"
charge $v -d amount=500 "${base[@]}"
is "$CODE" 200 "a corrected retry with the same key succeeds"
is "$(header Idempotent-Replayed)" "" "and is not a replay of the 400s"
head -c 70000 /dev/zero | tr '\0' a >"$TMP/big"
charge big-1 --data-binary @"$TMP/big"
is "$CODE" 413 "a body over 64 KiB: 413"
ledger
is "$(charges_of $v ' | length')" 1 "validation: only the corrected request charged"
is "$(req_of $v ' | map(select(.executed)) | length')" 1 "validation: the 400s are not executed"
is "$(req_of $v ' | map(.status) | unique | map(tostring) | join(",")')" "200,400" "ledger statuses of the key"
is "$(req_of $v ' | map(select(.amount == "abc")) | length')" 1 "ledger keeps an unparsable amount as sent"

# ---- authentication ----------------------------------------------------------------
params 3
AUTH=()
charge auth-1 "${P[@]}"
is "$CODE" 401 "no API key: 401"
is "$(bq .error.type)" invalid_request_error "401: invalid_request_error (as Stripe)"
AUTH=(-H "Authorization: Bearer sk_live_nope")
charge auth-1 "${P[@]}"
is "$CODE" 401 "a key without the prefix: 401"
unlike "$(cat "$TMP/body")" "sk_live_nope" "the 401 does not echo the key"
AUTH=(-u "$KEY:")
charge auth-1 "${P[@]}"
is "$CODE" 200 "Basic auth with the key as user name (curl -u KEY:) is accepted"
AUTH=(-H "Authorization: Bearer $KEY")
ledger
is "$(req_of auth-1 ' | map(.status | tostring) | join(",")')" "401,401,200" "401s are in the ledger"
is "$(req_of auth-1 ' | map(.outbox_id) | join(",")')" "3,3,3" "the ledger names the charge row of a 401 too"
is "$(charges_of auth-1 ' | length')" 1 "401s stored nothing: the retry charged once"

# ---- declines ----------------------------------------------------------------------
n=10
for d in "tok_chargeDeclined card_declined generic_decline" \
         "tok_chargeDeclinedInsufficientFunds card_declined insufficient_funds" \
         "tok_chargeDeclinedExpiredCard expired_card expired_card"; do
  read -r tok code dcode <<<"$d"
  n=$((n + 1))
  params $n cus_D "$tok"
  charge "decl-$tok" "${P[@]}"
  is "$CODE" 402 "$tok: 402"
  is "$(bq '[.error.type, .error.code, .error.decline_code] | join(" ")')" "card_error $code $dcode" \
     "$tok: card_error $code $dcode"
  like "$(bq .error.message)" "." "$tok: a message"
  like "$(bq .error.charge)" '^ch_[A-Za-z0-9]{24}$' "$tok: error.charge holds the charge id"
  declined=$(bq .error.charge)
  ledger
  is "$(lq --arg id "$declined" '.charges[] | select(.id == $id) | [.status, .outcome, .forgotten] | map(tostring) | join(" ")')" \
     "failed declined false" "$tok: the ledger keeps a failed charge"
  is "$(get "$URL/v1/charges/$declined")" 200 "$tok: GET /v1/charges/ID finds it"
  is "$(bq '[.status, .paid] | map(tostring) | join(" ")')" "failed false" "$tok: status failed, not paid"
done
get "$URL/v1/charges?customer=cus_D&limit=100" >/dev/null
is "$(bq '[.data[] | select(.status == "failed")] | length')" 3 "declined charges are listed, status failed"
params 11 cus_D tok_chargeDeclined
charge decl-tok_chargeDeclined "${P[@]}"
is "$CODE" 402 "a decline is replayed too"
is "$(header Idempotent-Replayed)" true "the replayed decline carries Idempotent-Replayed"

# ---- idempotent replay --------------------------------------------------------------
params 20
charge rep-1 "${P[@]}"
cp "$TMP/body" "$TMP/first"
first_id=$(bq .id)
# the same parameters in another order and encoding are the same request
charge rep-1 --data-urlencode "metadata[outbox_id]=20" -d "metadata[invoice_id]=20" \
  -d source=tok_visa -d "description=Invoice%2020" -d customer=cus_A -d currency=usd -d amount=1000
is "$CODE" 200 "replay: 200"
ok "replay: the body is the same, byte for byte" cmp -s "$TMP/first" "$TMP/body"
is "$(header Idempotent-Replayed)" true "replay: Idempotent-Replayed: true"
like "$(header Original-Request)" "^req_" "replay: Original-Request names the first request"
ledger
is "$(charges_of rep-1 ' | length')" 1 "replay: no second charge"
is "$(req_of rep-1 ' | map([.replayed, .executed] | map(tostring) | join("/")) | join(" ")')" \
   "false/true true/false" "replay: the ledger shows the second as replayed, not executed"
is "$(req_of rep-1 ' | map(.charge_id) | unique | join(" ")')" "$first_id" "replay: both name the charge"

# ---- same key, other parameters ---------------------------------------------------------
charge rep-1 -d amount=2000 -d currency=usd -d customer=cus_A -d source=tok_visa
is "$CODE" 400 "same key, other parameters: 400"
is "$(bq .error.type)" idempotency_error "same key, other parameters: idempotency_error"
ledger
is "$(charges_of rep-1 ' | length')" 1 "the mismatch charged nothing"
is "$(req_of rep-1 ' | last | [.status, .executed, .replayed] | map(tostring) | join(" ")')" \
   "400 false false" "the mismatch is in the ledger, not executed"

# ---- 409: the same key while the first request still runs ------------------------------
is "$(set_rules '[{"fault": "delay:2", "match": {"customer": "cus_slow"}}]')" 200 "install a delay rule"
params 30 cus_slow
curl -s -o "$TMP/slow.body" -w '%{http_code} %{time_total}' "${AUTH[@]}" -H "Idempotency-Key: k409" \
  "$URL/v1/charges" "${P[@]}" >"$TMP/slow.result" &
bg=$!
first_running() { ledger; [ "$(req_of k409 ' | map(select(.executed and .t_end == null)) | length')" = 1 ]; }
ok "the first request is executing (ledger: executed, t_end null)" wait_for 20 first_running
is "$(req_of k409 ' | first | .status')" null "an open request shows status null"
charge k409 "${P[@]}"
is "$CODE" 409 "a concurrent request with the same key: 409"
is "$(bq .error.type)" idempotency_error "409: idempotency_error"
like "$(bq .error.message)" "another request with the same key is in progress" "409: says why"
# latency does not serialise: another key is answered meanwhile
params 31
charge k409-other "${P[@]}"
is "$CODE" 200 "another key is served while the first waits"
ok "and is not held up by the delay ($TIME s)" awk -v t="$TIME" 'BEGIN { exit !(t < 1.5) }'
wait $bg
read -r slow_code slow_time <"$TMP/slow.result"
is "$slow_code" 200 "the delayed first request then succeeds"
ok "delay:2 made it late ($slow_time s)" awk -v t="$slow_time" 'BEGIN { exit !(t >= 2) }'
params 30 cus_slow
charge k409 "${P[@]}"
is "$CODE" 200 "after it finished, the key replays"
is "$(header Idempotent-Replayed)" true "as a replay"
ok "of the delayed answer" cmp -s "$TMP/slow.body" "$TMP/body"
ledger
is "$(charges_of k409 ' | length')" 1 "409: one charge for the key"
is "$(req_of k409 ' | map("\(.status)/\(.executed)/\(.fault)") | join(" ")')" \
   "200/true/delay 409/false/none 200/false/none" "409: the ledger (the 409 not executed)"
is "$(req_of k409 ' | first | .delay_s')" 2 "the ledger gives the delay in seconds"
set_rules '[]' >/dev/null

# ---- faults --------------------------------------------------------------------------
# fault_once KIND KEY OUTBOX: the next charge POST gets KIND (rule, times 1)
fault_once() {
  set_rules "[{\"fault\": \"$1\", \"times\": 1}]" >/dev/null
  params "$3"
  charge "$2" "${P[@]}"
}
replay_check() { # KEY DESC
  params "$3"
  charge "$1" "${P[@]}"
  is "$(header Idempotent-Replayed)" true "$2: the retry is a replay"
}

fault_once 500_before f-500b 40
is "$CODE" 500 "500_before: 500"
is "$(bq .error.type)" api_error "500_before: api_error"
cp "$TMP/body" "$TMP/first"
replay_check f-500b 500_before 40
is "$CODE" 500 "500_before: the retry gets the stored 500"
ok "500_before: byte for byte" cmp -s "$TMP/first" "$TMP/body"
ledger
is "$(charges_of f-500b ' | length')" 0 "500_before: not charged"
is "$(req_of f-500b ' | map("\(.status)/\(.fault)/\(.executed)/\(.replayed)/\(.charge_id)") | join(" ")')" \
   "500/500_before/true/false/null 500/none/false/true/null" "500_before: ledger"

fault_once 500_after f-500a 41
is "$CODE" 500 "500_after: 500"
replay_check f-500a 500_after 41
is "$CODE" 500 "500_after: the retry gets the stored 500"
ledger
is "$(charges_of f-500a ' | map(.status) | join(" ")')" succeeded "500_after: charged"
is "$(req_of f-500a ' | first | [.fault, .executed, (.charge_id | startswith("ch_"))] | map(tostring) | join(" ")')" \
   "500_after true true" "500_after: ledger"

fault_once reset_after f-ra 42
is "$RC" 56 "reset_after: the client sees a reset (curl exit 56)"
like "$(cat "$TMP/curl.err")" "reset" "reset_after: curl says 'reset'"
ledger
is "$(charges_of f-ra ' | map(.status) | join(" ")')" succeeded "reset_after: charged"
is "$(req_of f-ra ' | first | [.status, .fault, .executed] | map(tostring) | join(" ")')" \
   "0 reset_after true" "reset_after: ledger status 0"
replay_check f-ra reset_after 42
is "$CODE" 200 "reset_after: the retry gets the stored 200"
is "$(bq .id)" "$(charges_of f-ra ' | first | .id')" "reset_after: with the charge made"

fault_once close_mid_body f-cmb 43
is "$RC" 18 "close_mid_body: curl reports a partial body (exit 18)"
is "$CODE" 200 "close_mid_body: status 200"
cl=$(header Content-Length)
got=$(stat -c %s "$TMP/body")
ok "close_mid_body: Content-Length $cl > $got bytes received" [ "${cl:-0}" -gt "$got" ]
ok "close_mid_body: what came is not valid JSON" bash -c "! jq . '$TMP/body' >/dev/null 2>&1"
ledger
is "$(charges_of f-cmb ' | map(.status) | join(" ")')" succeeded "close_mid_body: charged"
is "$(req_of f-cmb ' | first | [.status, .fault] | map(tostring) | join(" ")')" "200 close_mid_body" \
   "close_mid_body: ledger"
replay_check f-cmb close_mid_body 43
is "$RC/$CODE" 0/200 "close_mid_body: the retry gets the whole 200"
is "$(bq .id)" "$(charges_of f-cmb ' | first | .id')" "close_mid_body: with the charge made"

fault_once delay:1.2 f-delay 44
is "$CODE" 200 "delay:1.2: the normal answer"
ok "delay:1.2: at least 1.2 s late ($TIME s)" awk -v t="$TIME" 'BEGIN { exit !(t >= 1.2) }'
ledger
is "$(charges_of f-delay ' | length')" 1 "delay: charged"
is "$(req_of f-delay ' | first | "\(.fault) \(.delay_s)"')" "delay 1.2" "delay: the ledger gives the fraction of a second"

fault_once 429 f-429 45
is "$CODE" 429 "429: 429"
is "$(bq .error.type)" rate_limit_error "429: rate_limit_error"
ledger
is "$(charges_of f-429 ' | length')" 0 "429: not charged"
params 45
charge f-429 "${P[@]}"
is "$CODE" 200 "429: a retry with the same key succeeds"
is "$(header Idempotent-Replayed)" "" "429: it executes (nothing was stored)"
ledger
is "$(charges_of f-429 ' | length')" 1 "429: charged once"
is "$(req_of f-429 ' | map("\(.status)/\(.executed)") | join(" ")')" "429/false 200/true" "429: ledger"

fault_once nonjson_after f-html 46
is "$CODE" 200 "nonjson_after: 200"
like "$(header Content-Type)" "^text/html" "nonjson_after: text/html"
like "$(head -c 100 "$TMP/body")" "<!DOCTYPE html>" "nonjson_after: an HTML page"
cp "$TMP/body" "$TMP/first"
ledger
is "$(charges_of f-html ' | length')" 1 "nonjson_after: charged"
replay_check f-html nonjson_after 46
ok "nonjson_after: the retry gets the same HTML" cmp -s "$TMP/first" "$TMP/body"

fault_once reset_before f-rb 47
is "$RC" 56 "reset_before: the client sees a reset (curl exit 56)"
ledger
is "$(charges_of f-rb ' | length')" 0 "reset_before: not charged"
is "$(req_of f-rb ' | first | [.status, .fault, .executed] | map(tostring) | join(" ")')" \
   "0 reset_before false" "reset_before: ledger"
params 47
charge f-rb "${P[@]}"
is "$CODE" 200 "reset_before: a retry with the same key executes"
is "$(header Idempotent-Replayed)" "" "reset_before: nothing was stored"

fault_once forget_after f-forget 48
is "$CODE" 200 "forget_after: the normal 200"
forgotten=$(bq .id)
get "$URL/v1/charges?customer=cus_A&limit=100" >/dev/null
is "$(bq --arg id "$forgotten" '[.data[] | select(.id == $id)] | length')" 0 \
   "forget_after: absent from GET /v1/charges"
is "$(get "$URL/v1/charges/$forgotten")" 404 "forget_after: GET /v1/charges/ID: 404"
ledger
is "$(charges_of f-forget ' | map("\(.status)/\(.forgotten)") | join(" ")')" succeeded/true \
   "forget_after: the ledger keeps it, forgotten"
replay_check f-forget forget_after 48
is "$(bq .id)" "$forgotten" "forget_after: the retry replays the 200"

fault_once 409 f-409 49
is "$CODE" 409 "409: 409 without another request using the key"
is "$(bq '[.error.type, .error.code] | join(" ")')" "idempotency_error idempotency_key_in_use" \
   "409: idempotency_error, idempotency_key_in_use"
like "$(bq .error.message)" "in progress" "409: says another request is in progress"
ledger
is "$(charges_of f-409 ' | length')" 0 "409: not charged"
is "$(req_of f-409 ' | first | [.status, .fault, .executed, .charge_id] | map(tostring) | join(" ")')" \
   "409 409 false null" "409: ledger (not executed)"
params 49
charge f-409 "${P[@]}"
is "$CODE" 200 "409: a retry with the same key executes (nothing was stored)"
is "$(header Idempotent-Replayed)" "" "409: and is no replay"

fault_once huge_after f-huge 55
is "$RC/$CODE" 0/200 "huge_after: 200"
is "$(stat -c %s "$TMP/body")" 5242880 "huge_after: the body is 5 MiB"
is "$(header Content-Length)" 5242880 "huge_after: Content-Length says so"
is "$(bq '[.object, .status, .metadata.outbox_id] | join(" ")')" "charge succeeded 55" \
   "huge_after: the charge object, padded with blanks (valid JSON)"
huge_id=$(bq .id)
ledger
is "$(charges_of f-huge ' | map(.status) | join(" ")')" succeeded "huge_after: charged"
is "$(req_of f-huge ' | first | [.status, .fault, .executed, .charge_id] | map(tostring) | join(" ")')" \
   "200 huge_after true $huge_id" "huge_after: ledger"
replay_check f-huge huge_after 55
is "$(stat -c %s "$TMP/body")/$(bq .id)" "5242880/$huge_id" "huge_after: the retry replays the same 5 MiB answer"
set_rules '[]' >/dev/null

# ---- rules: match, times, order, validation -------------------------------------------
is "$(set_rules '[{"fault": "500_before", "match": {"invoice_id": 52, "source": "tok_visa"}},
                  {"fault": "429", "match": {"outbox_id": "51"}, "times": 2},
                  {"fault": "500_after", "match": {"outbox_id": "51"}}]')" 200 "install three rules"
is "$(jq -r '.rules | length' "$TMP/rules.out")" 3 "the answer lists them"
is "$(curl -s "$URL/_control/faults" | jq -r '[.rules[].fault] | join(" ")')" "500_before 429 500_after" \
   "GET /_control/faults shows them in order"
params 50
charge r-50 "${P[@]}"
is "$CODE" 200 "a request no rule matches is untouched"
params 52
charge r-52 "${P[@]}"
is "$CODE" 500 "match on invoice_id (given as a JSON number) and source"
params 52 cus_A tok_mastercard
charge r-52b "${P[@]}"
is "$CODE" 200 "every match field must agree (other source: no fault)"
codes=""
for i in 1 2 3; do params 51; charge "r-51-$i" "${P[@]}"; codes="$codes $CODE"; done
is "$codes" " 429 429 500" "times: the first rule hits twice, then the next matching rule applies"
is "$(curl -s "$URL/_control/faults" | jq -r '.rules[1].times')" 0 "times counts down"
is "$(set_rules '[{"fault": "500_before", "match": {}, "times": 1}]')" 200 "a rule with an empty match"
params 54
charge r-54 "${P[@]}"
is "$CODE" 500 "an empty match matches every request (probability defaults to 1)"
is "$(set_rules '[{"fault": "500_before", "probability": 0}]')" 200 "a probability-0 rule"
params 53
charge r-53 "${P[@]}"
is "$CODE" 200 "probability 0 never fires"
for bad in '{"fault": "500_before"}' '[{"fault": "boom"}]' '[{"fault": "delay"}]' \
           '[{"fault": "429", "probabilty": 0.5}]' '[{"fault": "429", "probability": 2}]' \
           '[{"fault": "429", "times": -1}]' '[{"fault": "429", "match": {"color": "red"}}]' \
           '[{"match": {}}]' 'not json'; do
  is "$(set_rules "$bad")" 400 "rules refused: $bad"
done
is "$(curl -s "$URL/_control/faults" | jq -r '.rules | length')" 1 "a refused set leaves the rules as they were"
set_rules '[]' >/dev/null

# ---- GET /v1/charges -----------------------------------------------------------------
t_list=$(date +%s)
ids=()
for i in 1 2 3 4 5 6; do
  src=tok_visa; [ $i = 4 ] && src=tok_chargeDeclined
  params $((60 + i)) cus_list $src
  charge "list-$i" "${P[@]}"
  ids+=("$(bq '.id // .error.charge')")
done
params 70 cus_other
charge list-other "${P[@]}"
newest_first=$(printf '%s\n' "${ids[@]}" | tac | tr '\n' ' ')
is "$(get "$URL/v1/charges?customer=cus_list")" 200 "list: 200"
is "$(bq '[.object, .url, .has_more] | map(tostring) | join(" ")')" "list /v1/charges false" \
   "list: object, url, has_more"
is "$(bq '.data | map(.id) | join(" ")') " "$newest_first" "list: the customer's charges, newest first"
is "$(bq '[.data[].customer] | unique | join(" ")')" cus_list "list: only that customer"
is "$(bq '.data[0] | [.object, .amount, .status] | map(tostring) | join(" ")')" "charge 1000 succeeded" \
   "list: charge objects"
is "$(get "$URL/v1/charges?customer=cus_list&limit=2")" 200 "list: limit=2"
is "$(bq '[(.data | length), .has_more] | map(tostring) | join(" ")')" "2 true" "list: 2 items, has_more"
pages="" after="" more=true count=0
while [ "$more" = true ] && [ $count -lt 10 ]; do
  get "$URL/v1/charges?customer=cus_list&limit=2${after:+&starting_after=$after}" >/dev/null
  pages="$pages$(bq '.data | map(.id + " ") | join("")')"
  after=$(bq '.data[-1].id')
  more=$(bq .has_more)
  count=$((count + 1))
done
is "$pages" "$newest_first" "list: starting_after pages through all of them, in order"
is "$count" 3 "list: in three pages of two"
get -G "$URL/v1/charges" --data-urlencode "created[gte]=$((t_list + 100))" \
  --data-urlencode customer=cus_list >/dev/null
is "$(bq '.data | length')" 0 "list: created[gte] in the future: none"
get -G "$URL/v1/charges" --data-urlencode "created[gte]=$((t_list - 1))" \
  --data-urlencode customer=cus_list >/dev/null
is "$(bq '.data | length')" 6 "list: created[gte] just before: all six"
get "$URL/v1/charges?limit=100" >/dev/null
total=$(bq '.data | length')
ok "list: no customer filter lists every customer ($total)" [ "$total" -gt 6 ]
get "$URL/v1/charges" >/dev/null
is "$(bq '[(.data | length), .has_more] | map(tostring) | join(" ")')" "10 true" "list: default limit 10"
for q in "limit=0" "limit=101" "limit=x" "starting_after=ch_nosuch" "created%5Bgte%5D=soon" "colour=red"; do
  is "$(get "$URL/v1/charges?$q")" 400 "list: 400 for $q"
done
is "$(get "$URL/v1/charges/ch_nosuch")" 404 "GET /v1/charges/ID of nothing: 404"
is "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$URL/v1/nothing")" 404 "an unknown /v1 path: 404"
is "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${AUTH[@]}" "$URL/v1/charges")" 405 \
   "a wrong method: 405"

# ---- the ledger ------------------------------------------------------------------------
ledger
ok "the ledger is one JSON object" jtest 'type == "object" and (.requests | type) == "array" and (.charges | type) == "array"' "$TMP/ledger.json"
is "$(lq '[.requests[].seq] == [range(1; (.requests | length) + 1)]')" true "seq counts from 1 in arrival order"
is "$(lq '.requests[0] | keys_unsorted | join(",")')" \
   "seq,t_start,t_end,method,path,operation,idempotency_key,outbox_id,invoice_id,amount,currency,customer,source,status,fault,replayed,executed,charge_id" \
   "a request has every field"
is "$(lq '.requests[0] | [.method, .path, .idempotency_key, .outbox_id, .invoice_id, .amount, .currency, .customer, .source, .status, .fault, .replayed, .executed, .charge_id] | map(tostring) | join(" ")')" \
   "POST /v1/charges ok-1 1 1 1000 usd cus_A tok_visa 200 none false true $CH1" "the first request's values"
is "$(lq '[.requests[] | select(.t_end < .t_start or (.t_start | type) != "number")] | length')" 0 \
   "t_start <= t_end, numbers"
like "$(grep -o '"t_start":[0-9.]*' "$TMP/ledger.json" | head -1)" '"t_start":[0-9]{10}\.[0-9]{6}$' \
   "times are unix seconds with microseconds"
is "$(lq '[.requests[] | select(.idempotency_key == null and .method == "POST")] | length')" 1 \
   "a request without Idempotency-Key: idempotency_key null"
is "$(lq '[.requests[] | select(.method == "GET" and .path == "/v1/charges")] | length > 0')" true \
   "GET requests are in the ledger too"
is "$(lq '[.requests[] | select(.path | startswith("/_"))] | length')" 0 "control requests are not"
is "$(lq '.charges[0] | keys_unsorted | map(select(IN("id","created","amount","currency","customer","source","status","outcome","idempotency_key","metadata","forgotten"))) | length')" \
   11 "a charge has every field"
is "$(lq --arg id "$CH1" '.charges[] | select(.id == $id) | [.amount, .currency, .customer, .source, .status, .outcome, .idempotency_key, .metadata.outbox_id, .metadata.extra, .forgotten] | map(tostring) | join(" ")')" \
   "1000 usd cus_A tok_visa succeeded succeeded ok-1 1 kept false" "the first charge's values"
is "$(lq '[.charges[] | select((.created | floor) != .created)] | length')" 0 "charge created: integer seconds"

# ---- reset ------------------------------------------------------------------------------
set_rules '[{"fault": "500_before"}]' >/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/_control/reset")" 200 "POST /_control/reset"
ledger
is "$(lq '[(.requests | length), (.charges | length)] | map(tostring) | join(" ")')" "0 0" \
   "reset: the ledger is empty"
is "$(curl -s "$URL/_control/faults" | jq -r '.rules | length')" 0 "reset: no rules"
charge rep-1 -d amount=2000 -d currency=usd -d customer=cus_A
is "$CODE" 200 "reset: keys are forgotten (a used key with new parameters executes)"
is "$(get "$URL/v1/charges?customer=cus_list")" 200 "reset: list"
is "$(bq '.data | length')" 0 "reset: charges are forgotten"
ledger
is "$(lq '.requests[0].seq')" 1 "reset: seq starts again at 1"

# ---- latency, concurrency ---------------------------------------------------------------
cfg=$TMP/burst.cfg
: >"$cfg"
for i in $(seq 1 20); do
  [ "$i" -gt 1 ] && echo next >>"$cfg"
  printf 'url = "%s/v1/charges"\nheader = "Authorization: Bearer %s"\nheader = "Idempotency-Key: burst-%s"\ndata = "amount=100&currency=usd&customer=cus_burst"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
    "$URL" "$KEY" "$i" >>"$cfg"
done
stop_sim TERM main
log=$(cat "$TMP/main.log")
like "$log" "debug: POST /v1/charges -> 200 key=ok-1 charge=ch_" "--verbose: one line per request"
unlike "$log" "$KEY" "the API key never appears in the log"

start_sim slow --latency-ms 500 --seed 5
sed -i "s#http://127.0.0.1:[0-9]*#$URL#" "$cfg"
start=$(date +%s.%N)
curl -s --parallel --parallel-immediate --parallel-max 20 -K "$cfg" >"$TMP/burst.out" 2>"$TMP/burst.err"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
is "$(sort -u "$TMP/burst.out" | tr -d '\n')" 200 "latency: 20 parallel requests all succeed"
ok "latency: they wait in parallel (${elapsed} s; serialised would be 10 s)" \
  awk -v t="$elapsed" 'BEGIN { exit !(t >= 0.5 && t < 4) }'
one=$(curl -s -o /dev/null -w '%{time_total}' "${AUTH[@]}" "$URL/v1/charges?limit=1")
ok "latency applies to GET /v1/charges too ($one s)" awk -v t="$one" 'BEGIN { exit !(t >= 0.5) }'
one=$(curl -s -o /dev/null -w '%{time_total}' "$URL/_health")
ok "but not to /_health ($one s)" awk -v t="$one" 'BEGIN { exit !(t < 0.5) }'
is "$(grep -c 'POST /v1/charges' "$TMP/slow.log")" 0 "without --verbose, no per-request lines"
stop_sim INT slow

# The relay may hold 1,000+ charge POSTs in flight, each on a fresh
# connection: 2,000 at once must all be taken and wait out their second
# together (one after another would take 2,000 s).
start_sim many --latency-ms 1000
load=$("${CG_TOOLS:-$CG_ROOT/build/tools}/sim_load" "$URL" 2000 2000 "$SIM_PID")
diag "sim_load: $load"
like "$load" "requests=2000 ok=2000 failed=0" "2,000 fresh connections at once: every one answered 200"
# field NAME LINE: the number after "NAME=" in sim_load's line
field() { awk -v f="$1=" -v l="$2" 'BEGIN { match(l, f "[0-9.]+"); print substr(l, RSTART + length(f), RLENGTH - length(f)) + 0 }'; }
ok "each waited out its second ($(field min_wait_s "$load") s at least)" \
  awk -v t="$(field min_wait_s "$load")" 'BEGIN { exit !(t >= 1) }'
ok "all together ($(field seconds "$load") s)" awk -v t="$(field seconds "$load")" 'BEGIN { exit !(t < 15) }'
stop_sim TERM many

# ---- --fault flags, probability, seed, --key-prefix -------------------------------------
start_sim prob --seed 7 --fault 500_before:0.5 --key-prefix rk_test_
AUTH=(-H "Authorization: Bearer rk_test_123")
cfg=$TMP/prob.cfg
: >"$cfg"
for i in $(seq 1 200); do
  [ "$i" -gt 1 ] && echo next >>"$cfg"
  printf 'url = "%s/v1/charges"\nheader = "Authorization: Bearer rk_test_123"\nheader = "Idempotency-Key: p-%s"\ndata = "amount=100&currency=usd&customer=cus_p&metadata[outbox_id]=%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
    "$URL" "$i" "$i" >>"$cfg"
done
curl -s -K "$cfg" >"$TMP/prob.1"
n500=$(grep -c '^500$' "$TMP/prob.1")
n200=$(grep -c '^200$' "$TMP/prob.1")
is "$((n500 + n200))" 200 "--fault 500_before:0.5: every answer is 200 or 500"
ok "--fault 500_before:0.5: roughly half fail ($n500 of 200)" [ "$n500" -ge 70 -a "$n500" -le 130 ]
ledger
is "$(lq '[.requests[] | select(.fault == "500_before")] | length')" "$n500" "the ledger agrees"
is "$(lq '.charges | length')" "$n200" "only the 200s charged"
lq '[.charges[].id] | join(" ")' >"$TMP/prob.ids.1"
curl -s -X POST "$URL/_control/reset" >/dev/null
curl -s -K "$cfg" >"$TMP/prob.2"
ok "the same seed and requests (after a reset) give the same faults" cmp -s "$TMP/prob.1" "$TMP/prob.2"
ledger
lq '[.charges[].id] | join(" ")' >"$TMP/prob.ids.2"
ok "and the same charge ids" cmp -s "$TMP/prob.ids.1" "$TMP/prob.ids.2"
set_rules '[{"fault": "429", "match": {"customer": "cus_q"}}]' >/dev/null
codes=""
for i in 1 2 3 4 5; do charge "q-$i" -d amount=5 -d currency=usd -d customer=cus_q; codes="$codes$CODE "; done
is "$codes" "429 429 429 429 429 " "rules are tried before the --fault flags"
AUTH=(-H "Authorization: Bearer $KEY")
charge q-x -d amount=5 -d currency=usd -d customer=cus_q
is "$CODE" 401 "--key-prefix: other keys get 401"
stop_sim TERM prob

# a second simulator with the same seed makes the same ids
start_sim prob2 --seed 7 --fault 500_before:0.5
sed -i "s#http://127.0.0.1:[0-9]*#$URL#; s#rk_test_#sk_test_#" "$cfg"
curl -s -K "$cfg" >"$TMP/prob.3"
ok "a fresh simulator with the same seed: the same faults" cmp -s "$TMP/prob.1" "$TMP/prob.3"
ledger
lq '[.charges[].id] | join(" ")' >"$TMP/prob.ids.3"
ok "and the same charge ids" cmp -s "$TMP/prob.ids.1" "$TMP/prob.ids.3"
stop_sim TERM prob2

done_testing
