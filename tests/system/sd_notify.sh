#!/usr/bin/env bash
# The systemd notify protocol (libcommon/sdnotify.c), with tests/tools/
# notify_listen in systemd's place on NOTIFY_SOCKET: the relay says READY=1
# only once its database is usable (not while it cannot connect), both
# daemons ping WATCHDOG=1 at half WATCHDOG_USEC, wrap SIGHUP in RELOADING=1 /
# READY=1 and say STOPPING=1 on SIGTERM. Without NOTIFY_SOCKET nothing of
# this happens (every other system test runs that way).
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT
ok "gateway simulator started" sim_start

# listen NAME: a fresh notify socket $TEST_TMP/NAME.sock, messages in NAME.msgs
listen() {
  "$CG_ROOT/build/tools/notify_listen" "$TEST_TMP/$1.sock" "$TEST_TMP/$1.msgs" &
  PEER_PIDS+=($!)
  wait_for 5 test -e "$TEST_TMP/$1.msgs"
}
msgs() { cut -d' ' -f2- "$TEST_TMP/$1.msgs"; }
count() { msgs "$1" | grep -c -- "$2"; }
has() { grep -q -- "$2" "$TEST_TMP/$1.msgs"; }

# --- relay: READY=1 only once the database is there ---------------------------
DB=sd_notify_relay
ok "notify socket for the relay" listen relay
dropdb --if-exists --force $DB 2>/dev/null
NOTIFY_SOCKET=$TEST_TMP/relay.sock WATCHDOG_USEC=400000 relay_start relay $DB
connect_failed() { relay_log relay | grep -q "cannot connect"; }
ok "the relay starts without its database (it retries)" wait_for 10 connect_failed
sleep 1
ok "watchdog pings arrive while it waits" [ "$(count relay '^WATCHDOG=1$')" -ge 3 ]
unlike "$(msgs relay)" "READY=1" "no READY=1 while the database is unreachable"
new_db $DB
ready() { has relay "READY=1"; }
ok "READY=1 once the database is there" wait_for 20 ready
like "$(msgs relay | grep READY=1)" "STATUS=running: connected to the database" "with a STATUS line"
like "$(relay_log relay)" "cannot connect" "(the log shows the failed attempts before it)"
is "$(count relay 'READY=1')" 1 "READY=1 is sent once"
w0=$(count relay '^WATCHDOG=1$'); sleep 1; w1=$(count relay '^WATCHDOG=1$')
ok "WATCHDOG=1 every WATCHDOG_USEC/2 (0.2 s): $((w1 - w0)) in 1 s" [ $((w1 - w0)) -ge 3 ] && [ $((w1 - w0)) -le 7 ]
like "$(relay_log relay)" "systemd watchdog: pinging every 0.2 s" "the log names the ping interval"

kill -HUP "${RELAY_PIDS[relay]}"
reloaded() { [ "$(count relay 'READY=1')" = 2 ]; }
ok "SIGHUP: READY=1 again" wait_for 5 reloaded
is "$(msgs relay | grep -E '^(RELOADING|READY)=1' | cut -d' ' -f1 | tail -2 | tr '\n' ' ')" "RELOADING=1 READY=1 " \
  "SIGHUP: RELOADING=1, then READY=1"
like "$(msgs relay | grep RELOADING=1)" "MONOTONIC_USEC=[0-9]+" "RELOADING=1 carries MONOTONIC_USEC"

seed $DB 5 5
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
charged() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" = 5 ]; }
ok "it charges as usual under NOTIFY_SOCKET" wait_for 20 charged
relay_stop relay TERM
is "$RELAY_RC" 0 "SIGTERM: exit 0"
like "$(msgs relay | tail -3)" "STOPPING=1" "SIGTERM: STOPPING=1"
unlike "$(relay_log relay)" "systemd notify: cannot send" "every message was sent"

# --- charger: READY=1 as its loop starts; the same pings, reload, stop ---------
ok "notify socket for the charger" listen charger
NOTIFY_SOCKET=$TEST_TMP/charger.sock WATCHDOG_USEC=400000 \
  "$CHARGER" --interval 0.3 --db "$(charger_db $DB)" >"$TEST_TMP/charger.log" 2>&1 &
pid=$!
cready() { has charger "READY=1"; }
ok "charger: READY=1" wait_for 10 cready
sleep 1
ok "charger: WATCHDOG=1 pings" [ "$(count charger '^WATCHDOG=1$')" -ge 3 ]
kill -HUP $pid
creloaded() { [ "$(count charger 'READY=1')" = 2 ]; }
ok "charger: SIGHUP gives RELOADING=1 then READY=1" wait_for 5 creloaded
is "$(msgs charger | grep -cE '^RELOADING=1')" 1 "charger: one RELOADING=1"
kill -TERM $pid; wait $pid
is "$?" 0 "charger: SIGTERM, exit 0"
like "$(msgs charger | tail -2)" "STOPPING=1" "charger: STOPPING=1"

# --- a watchdog meant for another process is not ours -------------------------
ok "notify socket for a charger with another's WATCHDOG_PID" listen other
NOTIFY_SOCKET=$TEST_TMP/other.sock WATCHDOG_USEC=400000 WATCHDOG_PID=1 \
  "$CHARGER" --interval 0.3 --db "$(charger_db $DB)" >"$TEST_TMP/other.log" 2>&1 &
pid=$!
oready() { has other "READY=1"; }
ok "it still says READY=1" wait_for 10 oready
sleep 0.8
kill -TERM $pid; wait $pid
is "$(count other '^WATCHDOG=1$')" 0 "but sends no WATCHDOG=1 (WATCHDOG_PID is not its pid)"

done_testing
