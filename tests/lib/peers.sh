# tests/lib/peers.sh: start the gateway simulator, the SMTP sink and the
# relay for system tests and the demo (sourced after system.sh or on its
# own). Every process started here is stopped by peers_stop_all.
#
#   sim_start [ARGS...]     sets SIM_URL, SIM_PID
#   sim_restart [ARGS...]   a fresh simulator process (new seed, empty ledger)
#   smtp_start [ARGS...]    sets SMTP_URL, SMTP_LEDGER, SMTP_PID
#   smtp_restart [ARGS...]  a fresh sink and ledger
#   relay_start NAME DB [ARGS...]   relay in the background, log in $TEST_TMP/NAME.log
#                                   (key: $RELAY_TEST_KEY, default a Stripe test key)
#   relay_stop NAME [SIGNAL]        sends SIGNAL (TERM), waits, sets RELAY_RC

CG_ROOT=${CG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# The fakes run as release builds (their own tests run them under ASan);
# the daemons under test come from CG_BIN.
SIM_BIN=${SIM_BIN:-$CG_ROOT/build/sim}
RELAY=${RELAY:-${CG_BIN:-$CG_ROOT/build/asan/bin}/relay}
CHECKER=${CHECKER:-$CG_ROOT/build/tools/checker}
PEERS_TMP=${TEST_TMP:-$(mktemp -d /tmp/cg-peers.XXXXXX)}
declare -A RELAY_PIDS=()
PEER_PIDS=()

_wait_file() { # FILE SECONDS
  local deadline=$((SECONDS + $2))
  while [ ! -s "$1" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  [ -s "$1" ]
}

sim_start() {
  # a name never used before: a stale file of an earlier peer (same name by
  # chance, as $RANDOM gave) would hand out that peer's dead port
  local ready
  ready=$(mktemp "$PEERS_TMP/sim.port.XXXXXX") || return 1
  "$SIM_BIN/gatewaysim" --port 0 --ready-file "$ready" "$@" >"$PEERS_TMP/sim.log" 2>&1 &
  SIM_PID=$!
  PEER_PIDS+=("$SIM_PID")
  _wait_file "$ready" 10 || { echo "# gatewaysim did not start: $(tail -3 "$PEERS_TMP/sim.log")"; return 1; }
  SIM_URL="http://127.0.0.1:$(head -1 "$ready")"
}

smtp_start() {
  local ready
  ready=$(mktemp "$PEERS_TMP/smtp.port.XXXXXX") || return 1
  SMTP_LEDGER=$(mktemp "$PEERS_TMP/smtp.ledger.XXXXXX") || return 1
  "$SIM_BIN/smtpsink" --port 0 --ready-file "$ready" --ledger "$SMTP_LEDGER" "$@" \
    >"$PEERS_TMP/smtp.log" 2>&1 &
  SMTP_PID=$!
  PEER_PIDS+=("$SMTP_PID")
  _wait_file "$ready" 10 || { echo "# smtpsink did not start: $(tail -3 "$PEERS_TMP/smtp.log")"; return 1; }
  SMTP_URL="smtp://127.0.0.1:$(head -1 "$ready")"
}

# Short windows for tests; each test may override any of them. The order
# lease > timeout + margin, settle > lease + timeout + margin, first invoice
# retry > settle is what the relay checks at start.
RELAY_TEST_ARGS=(--lease 6 --http-timeout 3 --settle 12 --invoice-retry-schedule 3600
                 --reconcile-schedule 3600 --poll-interval 0.2 --email-retry 0.2
                 --mail-from billing@chargeguard.test)

relay_start() { # NAME DB [ARGS...]
  local name=$1 db=$2; shift 2
  RELAY_GATEWAY_KEY=${RELAY_TEST_KEY:-sk_test_chargeguard} "$RELAY" --db "dbname=$db user=relay_app host=$PGHOST" \
    --gateway-url "$SIM_URL" ${SMTP_URL:+--smtp-url "$SMTP_URL"} "${RELAY_TEST_ARGS[@]}" "$@" \
    >"$PEERS_TMP/$name.log" 2>&1 &
  RELAY_PIDS[$name]=$!
}

relay_stop() { # NAME [SIGNAL]
  local pid=${RELAY_PIDS[$1]}
  kill -"${2:-TERM}" "$pid" 2>/dev/null
  wait "$pid"
  RELAY_RC=$?
  unset "RELAY_PIDS[$1]"
}

relay_log() { cat "$PEERS_TMP/$1.log"; }

peers_stop_all() {
  local pid
  for pid in "${RELAY_PIDS[@]}" "${PEER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${RELAY_PIDS[@]}" "${PEER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  RELAY_PIDS=()
  PEER_PIDS=()
}

# settled DB: no charge pending or submitting, no email waiting to be sent
settled() {
  [ "$(sql "$1" "SELECT count(*) FROM outbox.messages m
                  WHERE m.state IN ('pending', 'submitting')
                     OR (m.kind = 'email' AND m.state = 'waiting'
                         AND EXISTS (SELECT 1 FROM outbox.messages c
                                      WHERE c.id = m.parent_id AND c.state IN ('succeeded', 'declined', 'failed')))")" = 0 ]
}

# check_invariants DB [CHECKER ARGS...]: the checker's TAP lines become ours
# (prefixed with "$CHECK_LABEL: " when it is set). The gateway ledger is the
# simulator's; CHECK_GATEWAY_LEDGER= (empty) runs without one (a peer that
# keeps no ledger), for checks that do not need it.
check_invariants() {
  local db=$1; shift
  local out rc line ledger=${CHECK_GATEWAY_LEDGER-$SIM_URL/_ledger}
  out=$("$CHECKER" --db "dbname=$db" ${ledger:+--gateway-ledger "$ledger"} \
          ${SMTP_LEDGER:+--smtp-ledger "$SMTP_LEDGER"} "$@" 2>&1)
  rc=$?
  while IFS= read -r line; do
    case "$line" in
      "ok "*) _tap_result 0 "${CHECK_LABEL:+$CHECK_LABEL: }checker: ${line#ok * - }" ;;
      "not ok "*) _tap_result 1 "${CHECK_LABEL:+$CHECK_LABEL: }checker: ${line#not ok * - }" ;;
      "#"*) echo "$line" ;;
    esac
  done <<<"$out"
  [ $rc -eq 0 ] || [ $rc -eq 1 ] || { _tap_result 1 "${CHECK_LABEL:+$CHECK_LABEL: }checker ran (exit $rc)"; echo "$out" | tail -5 | sed 's/^/# /'; }
}

# ledger_sql DB QUERY: run QUERY with the simulator's ledger loaded as
# temporary tables lreq(r jsonb) and lch(c jsonb), one row per request /
# charge (robust JSON parsing, by PostgreSQL).
ledger_sql() {
  local db=$1 q=$2 file="$PEERS_TMP/ledger.$$.json"
  curl -sf "$SIM_URL/_ledger" >"$file" || return 1
  psql -X -At -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
\\set ledger \`cat $file\`
CREATE TEMP TABLE lreq AS SELECT r FROM jsonb_array_elements((:'ledger')::jsonb -> 'requests') r;
CREATE TEMP TABLE lch AS SELECT c FROM jsonb_array_elements((:'ledger')::jsonb -> 'charges') c;
$q
SQL
}

# _peer_end PID: stop a peer started here and forget it (no stale pid is
# killed later by peers_stop_all).
_peer_end() {
  local pid=$1 i
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  for i in "${!PEER_PIDS[@]}"; do
    [ "${PEER_PIDS[$i]}" = "$pid" ] && unset "PEER_PIDS[$i]"
  done
  PEER_PIDS=("${PEER_PIDS[@]}")
}

# smtp_restart: a fresh sink and ledger (a test that reuses row ids across
# databases must not see another database's mail in the ledger).
smtp_restart() {
  [ -n "${SMTP_PID:-}" ] && _peer_end "$SMTP_PID"
  smtp_start "$@"
}

# sim_restart [ARGS...]: a fresh simulator process, e.g. with another
# --seed (POST /_control/reset empties the state but keeps the random
# stream going); SIM_URL changes, so start relays after it.
sim_restart() {
  [ -n "${SIM_PID:-}" ] && _peer_end "$SIM_PID"
  sim_start "$@"
}
