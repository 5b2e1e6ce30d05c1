# tests/lib/thirdparty.sh: start the third-party test peers that `make deps`
# installs from tests/peers/package.json (sourced after peers.sh). They are
# implementations no one here wrote, so a test against them cannot share our
# simulator's misunderstandings. Both listen on 127.0.0.1 only.
#
#   peers_installed              true when tests/peers/node_modules is there
#   stripe_mock_start            stripe-stateful-mock; sets STRIPE_URL, STRIPE_PID
#   maildev_start                maildev; sets MAILDEV_SMTP_URL, MAILDEV_API (its REST API, .../api), MAILDEV_PID
#
# Their processes are stopped by peers_stop_all.

PEERS_NODE=${PEERS_NODE:-$CG_ROOT/tests/peers/node_modules}

peers_installed() {
  command -v node >/dev/null && [ -e "$PEERS_NODE/stripe-stateful-mock/dist/index.js" ] &&
    [ -e "$PEERS_NODE/.bin/maildev" ]
}

# The mock's own launcher listens on every interface; its library entry
# point gives the same app, which we bind to the loopback on a free port.
# STRIPE_MOCK_LOG_LEVEL=debug makes it log every executed request
# ("charges.create ...") and every idempotent replay, which tests count.
stripe_mock_start() {
  local ready
  ready=$(mktemp "$PEERS_TMP/stripe.port.XXXXXX") || return 1
  LOG_LEVEL=${STRIPE_MOCK_LOG_LEVEL:-warn} node -e '
    const [entry, ready] = process.argv.slice(1);
    require(require.resolve("loglevel", {paths: [entry]})).setLevel(process.env.LOG_LEVEL);
    const app = require(entry).createExpressApp();
    const server = app.listen(0, "127.0.0.1", () =>
      require("fs").writeFileSync(ready, String(server.address().port) + "\n"));
  ' "$PEERS_NODE/stripe-stateful-mock/dist/index.js" "$ready" >"$PEERS_TMP/stripe-mock.log" 2>&1 &
  STRIPE_PID=$!
  PEER_PIDS+=("$STRIPE_PID")
  _wait_file "$ready" 20 ||
    { echo "# stripe-stateful-mock did not start: $(tail -3 "$PEERS_TMP/stripe-mock.log")"; return 1; }
  STRIPE_URL="http://127.0.0.1:$(head -1 "$ready")"
}

# _free_port: a loopback TCP port nobody listens on now (maildev takes no
# port 0; a race with another process is caught by maildev_start's retry)
_free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

maildev_start() {
  local try smtp web
  for try in 1 2 3; do
    smtp=$(_free_port) web=$(_free_port)
    [ "$smtp" = "$web" ] && continue
    "$PEERS_NODE/.bin/maildev" --smtp "$smtp" --ip 127.0.0.1 --web "$web" --web-ip 127.0.0.1 \
      "$@" >"$PEERS_TMP/maildev.log" 2>&1 &
    MAILDEV_PID=$!
    MAILDEV_API="http://127.0.0.1:$web/api"
    MAILDEV_SMTP_URL="smtp://127.0.0.1:$smtp"
    local deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ] && kill -0 "$MAILDEV_PID" 2>/dev/null; do
      if curl -sf "$MAILDEV_API/email" >/dev/null 2>&1 &&
         (exec 3<>"/dev/tcp/127.0.0.1/$smtp") 2>/dev/null; then
        PEER_PIDS+=("$MAILDEV_PID")
        return 0
      fi
      sleep 0.1
    done
    kill "$MAILDEV_PID" 2>/dev/null
    wait "$MAILDEV_PID" 2>/dev/null
  done
  echo "# maildev did not start: $(tail -3 "$PEERS_TMP/maildev.log")"
  return 1
}
