#!/usr/bin/env bash
# One list of Stripe wire cases, run against both our gateway simulator and
# stripe-stateful-mock (a Stripe mock no one here wrote): where the two
# answer differently, one of them is wrong about Stripe, and the relay may
# share the mistake. Each case is asserted identically for both; the few
# known, documented deviations of the mock (docs/peers.md) are named where
# they are expected.
#
# The simulator's faults come from rules matched by metadata[outbox_id]; the
# mock's from its special source tokens (a chain "tok_429|tok_visa" answers
# 429 once, then charges).
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
source "$CG_ROOT/tests/lib/thirdparty.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

ok "the npm test peers are installed (make deps does it)" peers_installed || { done_testing; exit 1; }
ok "gateway simulator started" sim_start
stripe_mock_start
ok "stripe-stateful-mock started" [ $? -eq 0 ]

KEY=sk_test_conformance
TMP=$PEERS_TMP/conformance
mkdir -p "$TMP"

# post URL KEY [FORM...]: POST /v1/charges; sets CODE, BODY (file), HEADERS (file)
post() {
  local url=$1 key=$2; shift 2
  CODE=$(curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
           ${key:+-H "Idempotency-Key: $key"} "$url/v1/charges" "$@")
}
get() { CODE=$(curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$1"); }
bq() { local filter=$1; shift; jq -r "$@" "$filter" "$TMP/body"; } # FILTER [JQ OPTIONS]
replayed() { grep -i '^idempotent-replayed:' "$TMP/headers" | tr -d '\r' | awk '{print $2}'; }
form() { # OUTBOX SOURCE [AMOUNT]
  echo "-d amount=${3:-1500} -d currency=usd -d source=$2 -d description=conformance -d metadata[invoice_id]=$1 -d metadata[outbox_id]=$1"
}
sim_rule() { curl -sf -X POST "$SIM_URL/_control/faults" -d "$1" >/dev/null; }

# run_cases NAME URL: every case against one gateway. $N numbers the rows so
# that runs do not share keys; tokens differ per target only where the fault
# has no token at the simulator.
run_cases() {
  local t=$1 url=$2 id
  # -- success ------------------------------------------------------------------
  # shellcheck disable=SC2046
  post "$url" "${t}_k1" $(form 101 tok_visa)
  is "$CODE" 200 "$t: a charge: 200"
  is "$(bq '[.object, .status, (.paid|tostring), (.amount|tostring), .currency, .metadata.outbox_id] | join(" ")')" \
     "charge succeeded true 1500 usd 101" "$t: a charge object, succeeded, paid, amount, currency, metadata"
  like "$(bq .id)" "^ch_" "$t: its id starts with ch_"
  id=$(bq .id)
  is "$(replayed)" "" "$t: a first request is no replay"
  # -- idempotent replay --------------------------------------------------------------
  # shellcheck disable=SC2046
  post "$url" "${t}_k1" $(form 101 tok_visa)
  is "$CODE/$(bq .id)/$(replayed)" "200/$id/true" "$t: same key, same body: the stored answer, Idempotent-Replayed: true"
  # shellcheck disable=SC2046
  post "$url" "${t}_k1" $(form 101 tok_visa 1600)
  is "$CODE/$(bq .error.type)" "400/idempotency_error" "$t: same key, another body: 400 idempotency_error"
  # -- retrieve and list -----------------------------------------------------------------
  get "$url/v1/charges/$id"
  is "$CODE/$(bq .id)/$(bq .status)" "200/$id/succeeded" "$t: GET /v1/charges/ID"
  get "$url/v1/charges/ch_no_such_charge_here"
  is "$CODE/$(bq .error.type)" "404/invalid_request_error" "$t: GET an unknown charge: 404 invalid_request_error"
  get "$url/v1/charges?limit=100"
  is "$CODE/$(bq .object)/$(bq '.has_more|type')" "200/list/boolean" "$t: list: object list, has_more"
  is "$(bq '[.data[] | select(.id == $id) | .metadata.outbox_id] | join(",")' --arg id "$id")" 101 \
     "$t: list: the charge is there with its metadata"
  # -- decline --------------------------------------------------------------------------
  # shellcheck disable=SC2046
  post "$url" "${t}_k2" $(form 102 tok_chargeDeclined)
  is "$CODE/$(bq .error.type)/$(bq .error.code)" "402/card_error/card_declined" "$t: tok_chargeDeclined: 402 card_error card_declined"
  like "$(bq .error.charge)" "^ch_" "$t: the decline names its charge"
  local declined
  declined=$(bq .error.charge)
  get "$url/v1/charges?limit=100"
  is "$(bq '[.data[] | select(.id == $id) | .status] | join(",")' --arg id "$declined")" failed \
     "$t: the declined charge is listed, status failed"
  # shellcheck disable=SC2046
  post "$url" "${t}_k2" $(form 102 tok_chargeDeclined)
  is "$CODE/$(bq .error.charge)/$(replayed)" "402/$declined/true" "$t: a decline is stored for its key and replayed"
  # -- 429: not executed, not stored: the same key executes afterwards --------------------
  local src=tok_visa
  if [ "$t" = sim ]; then sim_rule '[{"fault": "429", "match": {"outbox_id": "103"}, "times": 1}]'
  else src='tok_429|tok_visa'; fi
  # shellcheck disable=SC2046
  post "$url" "${t}_k3" $(form 103 "$src")
  is "$CODE/$(bq .error.type)" "429/rate_limit_error" "$t: 429 rate_limit_error"
  # shellcheck disable=SC2046
  post "$url" "${t}_k3" $(form 103 "$src")
  is "$CODE/$(bq .status)/$(replayed)" "200/succeeded/" "$t: after a 429 the same key executes (nothing was stored)"
  # -- 500 before charging: stored for the key; nothing charged ---------------------------
  src=tok_visa
  if [ "$t" = sim ]; then sim_rule '[{"fault": "500_before", "match": {"outbox_id": "104"}, "times": 1}]'
  else src=tok_500; fi
  # shellcheck disable=SC2046
  post "$url" "${t}_k4" $(form 104 "$src")
  is "$CODE/$(bq .error.type)" "500/api_error" "$t: 500 api_error"
  # shellcheck disable=SC2046
  post "$url" "${t}_k4" $(form 104 "$src")
  is "$CODE/$(replayed)" "500/true" "$t: the 500 is stored for its key and replayed"
  get "$url/v1/charges?limit=100"
  is "$(bq '[.data[] | select(.metadata.outbox_id == "104")] | length')" 0 "$t: nothing was charged for it"
  # -- credentials ----------------------------------------------------------------------------
  CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer sk_live_nope" "$url/v1/charges" \
           -d amount=1500 -d currency=usd -d source=tok_visa)
  is "$CODE/$(bq .error.type)" "401/invalid_request_error" "$t: a key that is not sk_test_: 401 invalid_request_error"
  # -- validation: a request that never started executing stores nothing (Stripe's
  #    documentation); the mock stores it (docs/peers.md)
  # shellcheck disable=SC2046
  post "$url" "${t}_k5" $(form 105 tok_visa 0)
  is "$CODE/$(bq .error.type)" "400/invalid_request_error" "$t: amount 0: 400 invalid_request_error"
  # shellcheck disable=SC2046
  post "$url" "${t}_k5" $(form 105 tok_visa 0)
  local want=""
  [ "$t" = mock ] && want=true # the mock's deviation
  is "$CODE/$(replayed)" "400/$want" "$t: the same invalid request again: $([ -n "$want" ] && echo "replayed (a deviation of the mock)" || echo "not a replay (nothing stored)")"
}

run_cases sim "$SIM_URL"
run_cases mock "$STRIPE_URL"
done_testing
