#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq filters name their $variables in single quotes
# The gateway simulator's Authorize.Net API (tests/sim/README.md,
# "Authorize.Net"), ASan+UBSan build, through curl: createTransactionRequest
# (approved, declined, held, errors, credentials, the duplicate window), the
# three list calls with paging, settled batches and reviews, the faults, the
# ledger. No database.
CG_ROOT=${CG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$CG_ROOT/tests/lib/tap.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SIM_BIN=${GATEWAYSIM:-$(dirname "${CG_BIN:-$CG_ROOT/build/asan/bin}")/sim/gatewaysim}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cg-simanet.XXXXXX")
SIM_PID=
trap '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
if ! command -v jq >/dev/null; then
  echo "ok 1 # SKIP jq is not installed: the JSON checks need it"; done_testing; exit
fi

"$SIM_BIN" --port 0 --ready-file "$TMP/port" --seed 3 2>"$TMP/sim.log" &
SIM_PID=$!
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat "$TMP/port")
API=$URL/xml/v1/request.api
AUTH='"merchantAuthentication":{"name":"cg_login","transactionKey":"cg_transaction_key"}'

# call JSON: POST it; CODE is the HTTP status, the body (BOM removed) in
# $TMP/body, the raw bytes in $TMP/raw.
call() {
  CODE=$(curl -sS -o "$TMP/raw" -w '%{http_code}' -X POST "$API" -d "$1" 2>"$TMP/curl.err")
  RC=$?
  sed '1s/^\xEF\xBB\xBF//' "$TMP/raw" >"$TMP/body"
}
q() { jq -r "$1" "$TMP/body"; }
# charge ROW AMOUNT TOKEN [WINDOW] [CURRENCY] [AUTH]: a createTransactionRequest
charge() {
  local row=$1 amount=$2 token=$3 window=${4:-28800} cur=${5:-USD} auth=${6:-$AUTH}
  call "{\"createTransactionRequest\":{$auth,\"refId\":\"$row\",\"transactionRequest\":{
    \"transactionType\":\"authCaptureTransaction\",\"amount\":\"$amount\",\"currencyCode\":\"$cur\",
    \"profile\":{\"customerProfileId\":\"cus_$row\",\"paymentProfile\":{\"paymentProfileId\":\"$token\"}},
    \"order\":{\"invoiceNumber\":\"$row\",\"description\":\"Invoice 1$row\"},
    \"transactionSettings\":{\"setting\":[{\"settingName\":\"duplicateWindow\",\"settingValue\":\"$window\"}]},
    \"userFields\":{\"userField\":[{\"name\":\"invoice_id\",\"value\":\"1$row\"},{\"name\":\"outbox_id\",\"value\":\"$row\"}]}}}}"
}
list() { # OP EXTRA_MEMBERS
  call "{\"$1\":{$AUTH,\"refId\":\"r\"${2:+,$2}}}"
}
ledger() { curl -sf "$URL/_ledger" >"$TMP/ledger"; }
lq() { jq -r "$1" "$TMP/ledger"; }

# --- approved, with a byte order mark, then the duplicate window ----------
charge 1 12.34 tok_visa
is "$CODE" 200 "approved: HTTP 200"
is "$(head -c 3 "$TMP/raw" | od -An -tx1 | tr -d ' ')" efbbbf "the answer begins with a UTF-8 byte order mark"
is "$(q '.transactionResponse.responseCode + " " + .messages.resultCode + " " + .refId')" "1 Ok 1" \
  "approved: response code 1, resultCode Ok, refId echoed"
T1=$(q .transactionResponse.transId); A1=$(q .transactionResponse.authCode)
like "$T1" '^[0-9]+$' "approved: a numeric transId ($T1)"
like "$A1" '^[A-Z0-9]{6}$' "approved: an approval code"
charge 1 12.34 tok_visa
is "$(q '.transactionResponse.responseCode + "/" + .transactionResponse.errors[0].errorCode')" 3/11 \
  "the same invoiceNumber and amount again within the window: 3, reason 11"
is "$(q .transactionResponse.transId) $(q .transactionResponse.authCode)" "$T1 $A1" \
  "the duplicate answer names the original transaction and its approval code"
charge 1 12.35 tok_visa
is "$(q .transactionResponse.responseCode)" 1 "another amount is no duplicate"
charge 2 5.00 tok_visa 0
charge 2 5.00 tok_visa 0
is "$(q .transactionResponse.responseCode)" 1 "duplicateWindow 0: no duplicate check"

# --- declined, held, refused, credentials ---------------------------------
charge 3 7.00 tok_chargeDeclined
is "$(q '.transactionResponse.responseCode + " " + .messages.message[0].code')" "2 E00027" "declined: 2, E00027"
T3=$(q .transactionResponse.transId)
charge 3 7.00 tok_chargeDeclined
is "$(q '.transactionResponse.errors[0].errorCode + " " + .transactionResponse.transId + " [" + .transactionResponse.authCode + "]"')" \
  "11 $T3 []" "a declined original also blocks its duplicate, named without an approval code"
charge 4 9.00 tok_heldForReview
is "$(q .transactionResponse.responseCode)" 4 "tok_heldForReview: held for review (4)"
charge 5 9.00 tok_visa 28800 EUR
is "$(q '.transactionResponse.responseCode + "/" + .transactionResponse.errors[0].errorCode')" 3/39 \
  "currencyCode EUR on a USD account: 3, reason 39, nothing charged"
charge 6 9.00 tok_invalidCard
is "$(q '.transactionResponse.responseCode + "/" + .transactionResponse.errors[0].errorCode')" 3/6 \
  "tok_invalidCard: 3, reason 6"
charge 7 1.00 tok_visa 28800 USD '"merchantAuthentication":{"name":"cg_login","transactionKey":"wrong"}'
is "$(q '.messages.resultCode + " " + .messages.message[0].code + " " + (.transactionResponse|tostring)')" \
  "Error E00007 null" "wrong transaction key: E00007, no transaction response"
call '{"nonsense": 1'
is "$(q .messages.message[0].code)" E00003 "not JSON: E00003"
call "{\"getBatchStatisticsRequest\":{$AUTH}}"
is "$(q .messages.message[0].code)" E00004 "an unknown call: E00004"

# --- lists: unsettled with paging, settle into a batch, reviews ----------
list getUnsettledTransactionListRequest
is "$(q '[.transactions[].invoiceNumber] | join(",")')" "1,1,2,2,3,4" \
  "unsettled list: every transaction, oldest first (declined and held too)"
list getUnsettledTransactionListRequest '"paging":{"limit":2,"offset":2}'
is "$(q '[.transactions[].invoiceNumber] | join(",")')" "2,2" "paging: limit 2, offset (page) 2"
list getUnsettledTransactionListRequest '"sorting":{"orderBy":"submitTimeUTC","orderDescending":true},"paging":{"limit":4,"offset":1}'
is "$(q '[.transactions[].invoiceNumber] | join(",")')" "4,3,2,2" "sorting.orderDescending: newest first"
list getUnsettledTransactionListRequest '"sorting":{"orderBy":"submitTimeUTC","orderDescending":true},"paging":{"limit":4,"offset":2}'
is "$(q '[.transactions[].invoiceNumber] | join(",")')" "1,1" "newest first, page 2: the oldest"
list getUnsettledTransactionListRequest '"paging":{"limit":2,"offset":9}'
is "$(q '.messages.message[0].code + " " + (.transactions|tostring)')" "I00004 null" "past the end: I00004, no list"
B=$(curl -sf -X POST "$URL/_control/anet/settle" | jq -r .batchId)
like "$B" '^[0-9]+$' "settle: a new batch ($B)"
list getUnsettledTransactionListRequest
is "$(q '[.transactions[].transactionStatus] | join(",")')" FDSPendingReview "only the held one stays unsettled"
list getSettledBatchListRequest
is "$(q '[.batchList[].batchId] | join(",")')" "$B" "the batch list has the batch"
list getSettledBatchListRequest '"firstSettlementDate":"2020-01-01T00:00:00Z","lastSettlementDate":"2020-01-31T00:00:00Z"'
is "$(q .messages.message[0].code)" I00004 "a range before it: no records"
list getSettledBatchListRequest '"firstSettlementDate":"2020-01-01T00:00:00Z","lastSettlementDate":"2020-03-31T00:00:00Z"'
is "$(q .messages.resultCode)" Error "a range over 31 days is refused"
list getTransactionListRequest "\"batchId\":\"$B\",\"paging\":{\"limit\":1000,\"offset\":1}"
is "$(q '[.transactions[] | select(.transId == "'"$T1"'") | .transactionStatus + " " + (.settleAmount|tostring)] | join(",")')" \
  "settledSuccessfully 12.34" "the batch's list: the charge settled, its amount as a decimal"
is "$(q '[.transactions[] | select(.invoiceNumber == "3") | .transactionStatus] | join(",")')" declined \
  "a declined transaction is in the batch as declined"
curl -sf -X POST "$URL/_control/anet/review" -d '{"decision": "approve"}' >/dev/null
list getUnsettledTransactionListRequest
is "$(q '[.transactions[].transactionStatus] | join(",")')" capturedPendingSettlement "review approved: captured"

# --- faults ---------------------------------------------------------------
rules() { curl -sf -X POST "$URL/_control/faults" -d "$1" >/dev/null; }
rules '[{"fault": "500_after", "match": {"outbox_id": "10"}}, {"fault": "429", "match": {"outbox_id": "11"}},
        {"fault": "duplicate_after", "match": {"outbox_id": "12"}}, {"fault": "reset_before", "match": {"outbox_id": "13"}},
        {"fault": "409", "match": {"outbox_id": "14"}}]'
charge 10 1.00 tok_visa; is "$CODE" 500 "500_after: HTTP 500"
charge 11 1.00 tok_visa; is "$CODE $(head -c 17 "$TMP/body")" "429 Too Many Requests" "429: an intermediary's plain 429"
charge 14 1.00 tok_visa; is "$CODE" 409 "409: an intermediary's plain 409"
charge 12 1.00 tok_visa
is "$(q '.transactionResponse.responseCode + "/" + .transactionResponse.errors[0].errorCode')" 3/11 "duplicate_after: 3/11"
like "$(q .transactionResponse.authCode)" '^[A-Z0-9]{6}$' "duplicate_after: with the approval code of the charge it made"
charge 13 1.00 tok_visa; ok "reset_before: no answer (curl exit $RC)" [ "$RC" -ne 0 ]
curl -sf -X POST "$URL/_control/lookup_faults" -d '{"status": 503}' >/dev/null
list getUnsettledTransactionListRequest; is "$CODE" 503 "lookup faults: the list calls answer 503"
charge 15 1.00 tok_visa; is "$(q .transactionResponse.responseCode)" 1 "lookup faults leave charges alone"
curl -sf -X POST "$URL/_control/lookup_faults" -d '{"status": 0}' >/dev/null

# --- the ledger -----------------------------------------------------------
ledger
is "$(lq '[.requests[] | select(.operation == "createTransactionRequest" and .outbox_id == "1")] | length')" 3 \
  "ledger: every createTransactionRequest, named, with invoiceNumber as outbox_id"
is "$(lq '[.requests[] | select(.outbox_id == "1")][0] | [.invoice_id, (.amount|tostring), .currency, (.idempotency_key|tostring), (.executed|tostring)] | join(" ")')" \
  "11 1234 usd null true" "ledger: invoice from userFields, amount in cents, no key, executed"
is "$(lq '[.requests[] | select(.outbox_id == "1")][1] | [(.executed|tostring), .charge_id] | join(" ")')" "false $T1" \
  "ledger: the duplicate did not execute; it names the original"
is "$(lq '[.requests[] | select(.outbox_id == "11" or .outbox_id == "13" or .outbox_id == "14" or .outbox_id == "7") | .executed] | any')" false \
  "ledger: 429, 409, reset_before and a refused login never executed"
is "$(lq '[.charges[] | select(.metadata.outbox_id == "4") | .status + " " + .outcome] | join(",")')" \
  "succeeded capturedPendingSettlement" "ledger: the reviewed charge now counts as succeeded"
is "$(lq '[.charges[] | select(.metadata.outbox_id == "3") | .status] | join(",")')" failed "ledger: declined is failed (no money moved)"
is "$(lq '[.charges[] | select(.metadata.outbox_id == "10" or .metadata.outbox_id == "12") | .status] | join(",")')" \
  "succeeded,succeeded" "ledger: 500_after and duplicate_after charged"
is "$(lq '[.requests[] | select(.operation == "getUnsettledTransactionListRequest")] | map(.executed) | any')" false \
  "ledger: list calls are reads"
curl -sf -X POST "$URL/_control/reset" >/dev/null
list getSettledBatchListRequest
is "$(q .messages.message[0].code)" I00004 "reset forgets the batches"

kill -TERM "$SIM_PID"; wait "$SIM_PID"; rc=$?; SIM_PID=
is "$rc" 0 "SIGTERM: exit 0, no sanitizer report"
done_testing
