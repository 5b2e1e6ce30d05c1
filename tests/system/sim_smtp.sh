#!/usr/bin/env bash
# The SMTP sink (tests/sim/README.md, "smtpsink"), the relay's test peer:
# curl's SMTP client (libcurl, as the relay uses it) and raw SMTP over bash's
# /dev/tcp drive its ASan+UBSan build. Checked: the ledger line of each
# message (Message-ID, Subject, To, rcpt, mail_from, acknowledged), several
# messages on one connection, pipelining, dot-unstuffing, the size and line
# bounds, the drop-after-DATA faults and their seeded reproducibility,
# concurrency, timeouts, bad usage, and a clean stop on SIGTERM/SIGINT.
# No database needed.
source "$(dirname "$0")/../lib/tap.sh"

CG_ROOT=${CG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SINK=${CG_SINK:-$CG_ROOT/build/asan/sim/smtpsink}
# Sanitizer reports fail the run; LeakSanitizer's exit code is 23.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ ! -x "$SINK" ]; then
  echo "not ok 1 - $SINK is built (run: make build/asan/sim/smtpsink)"; echo "1..1"; exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/cg-sim-smtp.XXXXXX")
SINK_PID=
_cleanup() {
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  rm -rf "$T"
}
trap _cleanup EXIT

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $deadline ]; do "$@" && return 0; sleep 0.05; done
  return 1
}

# start_sink NAME ARGS...: run the sink on a free port; sets SINK_PID, PORT,
# LEDGER ($T/NAME.jsonl) and SINK_LOG ($T/NAME.log)
start_sink() {
  local name=$1; shift
  LEDGER=$T/$name.jsonl SINK_LOG=$T/$name.log
  rm -f "$T/$name.ready"
  "$SINK" --port 0 --ready-file "$T/$name.ready" --ledger "$LEDGER" "$@" 2>"$SINK_LOG" &
  SINK_PID=$!
  if ! wait_for 20 test -s "$T/$name.ready"; then
    diag "sink $name did not start:"; sed 's/^/#   /' "$SINK_LOG"; return 1
  fi
  PORT=$(cat "$T/$name.ready")
}

# stop_sink [SIGNAL]: stop it; its exit status in SINK_RC
stop_sink() {
  kill -"${1:-TERM}" "$SINK_PID"
  wait "$SINK_PID"
  SINK_RC=$?
  SINK_PID=
}

# ledger queries, through Perl's core JSON::PP (every line must parse)
lines() { [ -s "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }
# field FILE SEQ KEY: the value of KEY on the line of that seq (arrays
# joined with ',', JSON null as "null", booleans as true/false)
field() {
  SEQ=$2 KEY=$3 perl -MJSON::PP -ne '
    my $o = decode_json($_); next unless $o->{seq} == $ENV{SEQ};
    my $v = $o->{$ENV{KEY}};
    print !defined $v ? "null" : ref $v eq "ARRAY" ? join(",", @$v)
        : ref $v eq "JSON::PP::Boolean" ? ($v ? "true" : "false") : $v' "$1"
}
# column FILE KEY: that field of every line, in seq order, one per line
column() {
  KEY=$2 perl -MJSON::PP -ne '
    my $o = decode_json($_); my $v = $o->{$ENV{KEY}};
    push @r, [$o->{seq}, ref $v eq "JSON::PP::Boolean" ? ($v ? "true" : "false")
                       : defined $v ? $v : "null"];
    END { print "$_->[1]\n" for sort { $a->[0] <=> $b->[0] } @r }' "$1"
}
valid_json() { perl -MJSON::PP -ne 'decode_json($_)' "$1"; }

# mail FILE ARGS...: send FILE with curl (one connection); prints curl's status
mail() {
  local f=$1; shift
  curl -sS --max-time 20 "smtp://127.0.0.1:$PORT" --mail-from sender@example.com \
    --mail-rcpt customer@example.org "$@" --upload-file "$f" 2>>"$T/curl.err"
  echo $?
}

# Raw SMTP over /dev/tcp, one connection at a time in fd $S.
smtp_open() { exec {S}<>"/dev/tcp/127.0.0.1/$PORT" && smtp_reply; }
smtp_close() { exec {S}>&-; }
# smtp_reply: read one (possibly multi-line) reply; prints its lines joined
# with '|', CRs removed
smtp_reply() {
  local line all=
  while IFS= read -r -t 10 -u "$S" line; do
    line=${line%$'\r'}
    all+=${all:+|}$line
    [[ $line =~ ^[0-9]{3}- ]] || break
  done
  echo "$all"
}
# smtp CMD: send one command line, print the reply
smtp() { printf '%s\r\n' "$1" >&"$S"; smtp_reply; }
# send TEXT: raw bytes, no reply read (DATA bodies, pipelined commands)
send() { printf '%s' "$1" >&"$S"; }

# A receipt as the relay would write it: CRLF line ends, a folded Subject
# under a lower-case name, body lines that start with '.' (curl stuffs them,
# the sink must unstuff them).
printf '%s\r\n' \
  'From: Billing <billing@example.com>' \
  'To: "Customer, One" <customer@example.org>' \
  'subject: Your receipt for' \
  ' invoice 1001' \
  'MESSAGE-ID: <outbox-41@chargeguard.test>' \
  'Date: Thu, 01 Jan 2026 00:00:00 +0000' \
  '' \
  'Thank you.' \
  '.' \
  '.leading dot' \
  '..two dots' \
  'Total: 10.01 USD' >"$T/receipt.eml"

# --- usage ------------------------------------------------------------------
out=$("$SINK" --help 2>&1); rc=$?
is "$rc" 0 "--help exits 0"
missing=
for opt in --port --ledger --ready-file --drop-after-data --drop-after-data-first --seed \
           --maildir --max-message-size --max-line-length --max-recipients --max-connections \
           --idle-timeout --log-level --config; do
  grep -q -- "^  $opt " <<<"$out" || missing+=" $opt"
done
is "$missing" "" "--help documents every option"

bad() { # WANT_REGEX DESC ARGS...
  local want=$1 desc=$2; shift 2
  out=$("$SINK" "$@" 2>&1); rc=$?
  is "$rc" 2 "$desc: exit 2"
  like "$out" "$want" "$desc: says why"
}
bad '^smtpsink: --port is required' "no --port"
bad "^smtpsink: --port: '70000' is not a port; expected an integer from 0 to 65535" \
  "--port 70000" --port 70000
bad "^smtpsink: --drop-after-data: '1.5' is not a probability; expected a number from 0 to 1" \
  "--drop-after-data 1.5" --port 0 --drop-after-data 1.5
bad "^smtpsink: --drop-after-data: 'half'" "--drop-after-data half" --port 0 --drop-after-data half
bad "^smtpsink: --drop-after-data-first: -1 is out of range; expected an integer from 0 to" \
  "--drop-after-data-first -1" --port 0 --drop-after-data-first -1
bad "^smtpsink: --seed: 'x' is not an integer" "--seed x" --port 0 --seed x
bad "^smtpsink: unknown option '--bogus' \(see --help\)" "unknown option" --port 0 --bogus
bad "^smtpsink: --ledger needs a value" "--ledger without a value" --port 0 --ledger
printf 'port = 0\nmax_line_lenght = 2000\n' >"$T/bad.conf"
bad "^smtpsink: config file .*bad.conf line 2: unknown key 'max_line_lenght'" "unknown --config key" \
  --config "$T/bad.conf"

# --- one message with curl ---------------------------------------------------
start_sink main --maildir "$T/mail"
ok "the sink starts on a free port and writes it to --ready-file" [ "$PORT" -gt 0 ]
is "$(od -An -c "$T/main.ready" | tr -d ' ')" "$PORT\\n" "the ready file holds the port and a newline"

is "$(mail "$T/receipt.eml" --mail-rcpt second@example.org)" 0 "curl sends a message: exit 0"
is "$(lines "$LEDGER")" 1 "one ledger line, there as soon as curl returns"
is "$(field "$LEDGER" 1 message_id)" "<outbox-41@chargeguard.test>" "ledger: Message-ID (header name in capitals)"
is "$(field "$LEDGER" 1 subject)" "Your receipt for invoice 1001" "ledger: Subject (lower-case name, folded line unfolded)"
is "$(field "$LEDGER" 1 to)" '"Customer, One" <customer@example.org>' "ledger: To header"
is "$(field "$LEDGER" 1 rcpt)" "customer@example.org,second@example.org" "ledger: rcpt lists every RCPT TO"
is "$(field "$LEDGER" 1 mail_from)" "sender@example.com" "ledger: mail_from"
is "$(field "$LEDGER" 1 acknowledged)" true "ledger: acknowledged true"
is "$(field "$LEDGER" 1 size)" "$(wc -c <"$T/receipt.eml" | tr -d ' ')" "ledger: size is the message's (unstuffed) size"
like "$(field "$LEDGER" 1 t)" '^1[0-9]{9}\.[0-9]+$' "ledger: t in unix seconds"
ok "dot-unstuffing: the stored message equals the one sent, leading dots and all" \
  cmp -s "$T/receipt.eml" "$T/mail/1.eml"

# libcurl keeps the connection: two URLs in one curl run share it
is "$(mail "$T/receipt.eml" -T "$T/receipt.eml" "smtp://127.0.0.1:$PORT")" 0 \
  "curl sends two messages in one run"
is "$(lines "$LEDGER")" 3 "both are in the ledger"
c2=$(field "$LEDGER" 2 conn); c3=$(field "$LEDGER" 3 conn)
is "$c2" "$c3" "curl sent both on one connection"
ok "... not the first message's" [ "$c2" != "$(field "$LEDGER" 1 conn)" ]

# --- raw SMTP: several messages on one connection, pipelining --------------
smtp_open >/dev/null
ehlo=$(smtp "EHLO test.example")
like "$ehlo" '^250-' "EHLO: multi-line 250"
like "$ehlo" '\|250-SIZE 1048576\|' "EHLO advertises SIZE 1048576"
like "$ehlo" '\|250-PIPELINING\|' "EHLO advertises PIPELINING"
like "$ehlo" '\|250.8BITMIME' "EHLO advertises 8BITMIME"
like "$ehlo" '\|250 [A-Z]+$' "EHLO: the last line is '250 '"
is "$(smtp 'DATA')" "503 Send MAIL first" "DATA before MAIL: 503"
is "$(smtp 'RCPT TO:<x@y>')" "503 Send MAIL first" "RCPT before MAIL: 503"
is "$(smtp 'MAIL FROM:<a@x> SIZE=2000000')" "552 Message size exceeds fixed maximum message size" \
  "MAIL with SIZE over the bound: 552"
is "$(smtp 'MAIL FROM:<a@x> FROB=1')" "555 MAIL FROM parameter not recognized or not implemented" \
  "MAIL with an unknown parameter: 555"
is "$(smtp 'MAIL FROM:a@x')" "501 Syntax error: the address must be in angle brackets" "MAIL without brackets: 501"
like "$(smtp 'FROB')" '^500 ' "unknown command: 500"
is "$(smtp 'NOOP')" "250 OK" "NOOP: 250"
is "$(smtp 'mail from:<first@x> BODY=8BITMIME')" "250 OK" "lower-case MAIL FROM with BODY=8BITMIME: 250"
is "$(smtp 'MAIL FROM:<again@x>')" "503 Nested MAIL command (send RSET first)" "a second MAIL: 503"
is "$(smtp 'RCPT TO:<one@y>')" "250 OK" "RCPT: 250"
is "$(smtp 'DATA')" "354 End data with <CR><LF>.<CR><LF>" "DATA: 354"
send $'Message-Id: <raw-1@test>\r\nTo: one@y,\r\n\ttwo@y\r\n\r\n..stuffed\r\n...\r\nend\r\n.\r\n'
like "$(smtp_reply)" '^250 ' "first raw message: 250"
# pipelined: MAIL, RCPT, RCPT, DATA in one write, then the replies in order
send $'MAIL FROM:<>\r\nRCPT TO:<p1@y>\r\nRCPT TO:<p2@y>\r\nDATA\r\n'
piped="$(smtp_reply)|$(smtp_reply)|$(smtp_reply)|$(smtp_reply)"
is "$piped" "250 OK|250 OK|250 OK|354 End data with <CR><LF>.<CR><LF>" "pipelined commands: replies in order"
send $'Subject: no id\r\n\r\nbody\r\n.\r\n'
like "$(smtp_reply)" '^250 ' "second raw message: 250"
is "$(smtp 'MAIL FROM:<aborted@x>')" "250 OK" "a third transaction starts"
smtp 'RCPT TO:<z@y>' >/dev/null
is "$(smtp 'RSET')" "250 OK" "RSET: 250"
is "$(smtp 'DATA')" "503 Send MAIL first" "RSET ended the transaction"
is "$(smtp 'QUIT')" "221 localhost Bye" "QUIT: 221"
smtp_close
is "$(lines "$LEDGER")" 5 "the raw connection added two ledger lines (not the RSET one)"
is "$(field "$LEDGER" 4 conn)" "$(field "$LEDGER" 5 conn)" "both on one connection"
is "$(field "$LEDGER" 4 message_id)" "<raw-1@test>" "raw 1: Message-Id (mixed case)"
is "$(field "$LEDGER" 4 to)" $'one@y,\ttwo@y' "raw 1: To unfolded (the CRLF removed, the tab kept)"
is "$(field "$LEDGER" 4 subject)" null "raw 1: no Subject header: null"
is "$(field "$LEDGER" 4 mail_from)" "first@x" "raw 1: mail_from"
is "$(tail -n 3 "$T/mail/4.eml" | tr -d '\r' | tr '\n' '|')" ".stuffed|..|end|" \
  "raw 1: dot-unstuffing ('..stuffed' -> '.stuffed', '...' -> '..')"
is "$(field "$LEDGER" 5 mail_from)" "" "raw 2: the null reverse-path <> is recorded as ''"
is "$(field "$LEDGER" 5 rcpt)" "p1@y,p2@y" "raw 2: both recipients"
is "$(field "$LEDGER" 5 message_id)" null "raw 2: no Message-ID: null"
is "$(field "$LEDGER" 5 subject)" "no id" "raw 2: Subject"

smtp_open >/dev/null
is "$(smtp 'MAIL FROM:<a@x>')" "503 Send EHLO or HELO first" "MAIL before EHLO: 503"
is "$(smtp 'HELO test.example')" "250 localhost" "HELO: 250"
smtp_close

# --- bounds: message size and line length ----------------------------------
# 12000 lines of 100 bytes with CRLF: 1.2 MB
yes "$(head -c 98 /dev/zero | tr '\0' 'x')" | head -n 12000 | sed 's/$/\r/' >"$T/big.body"
{ printf 'Subject: big\r\n\r\n'; cat "$T/big.body"; } >"$T/big.eml"
: >"$T/curl.err"
rc=$(mail "$T/big.eml")
ok "curl's 1.2 MB message is refused (curl exit $rc)" [ "$rc" != 0 ]
like "$(cat "$T/curl.err")" "55[0-9]|SIZE|size" "curl was told the size is too big"
smtp_open >/dev/null
smtp 'EHLO t' >/dev/null; smtp 'MAIL FROM:<a@x>' >/dev/null; smtp 'RCPT TO:<b@y>' >/dev/null
smtp 'DATA' >/dev/null
send $'Subject: big raw\r\n\r\n'; cat "$T/big.body" >&"$S"; send $'.\r\n'
is "$(smtp_reply)" "552 Message size exceeds fixed maximum message size" \
  "a 1.2 MB message without SIZE: 552 after the final '.'"
is "$(smtp 'DATA')" "503 Send MAIL first" "the refused transaction is over"
smtp 'MAIL FROM:<a@x>' >/dev/null; smtp 'RCPT TO:<b@y>' >/dev/null; smtp 'DATA' >/dev/null
send "Subject: long line"$'\r\n\r\n'"$(head -c 1200 /dev/zero | tr '\0' 'y')"$'\r\n.\r\n'
is "$(smtp_reply)" "500 Line too long (limit 1000 bytes with CRLF)" "a 1200-byte line: 500 after the final '.'"
smtp 'MAIL FROM:<a@x>' >/dev/null; smtp 'RCPT TO:<b@y>' >/dev/null; smtp 'DATA' >/dev/null
send "Subject: after refusals"$'\r\n\r\n'"$(head -c 998 /dev/zero | tr '\0' 'z')"$'\r\n.\r\n'
like "$(smtp_reply)" '^250 ' "a 998-byte line (1000 with CRLF) is fine, on the same connection"
like "$(smtp "$(head -c 3000 /dev/zero | tr '\0' 'N')")" '^500 Line too long' "a 3000-byte command: 500"
is "$(smtp 'NOOP')" "250 OK" "the connection stays in step after it"
smtp 'QUIT' >/dev/null; smtp_close
is "$(lines "$LEDGER")" 6 "refused messages are not in the ledger"
is "$(field "$LEDGER" 6 subject)" "after refusals" "the accepted one is"
ok "every ledger line is valid JSON" valid_json "$LEDGER"

# --- concurrency -------------------------------------------------------------
before=$(lines "$LEDGER")
pids=()
for i in $(seq 1 20); do
  sed "s/outbox-41@/outbox-c$i@/" "$T/receipt.eml" >"$T/c$i.eml"
  mail "$T/c$i.eml" >"$T/c$i.rc" &
  pids+=($!)
done
wait "${pids[@]}"
wait_ok=$(cat "$T"/c*.rc | grep -c '^0$')
is "$wait_ok" 20 "20 concurrent curl clients all succeed"
is "$(lines "$LEDGER")" $((before + 20)) "all 20 are in the ledger"
is "$(column "$LEDGER" seq | sort -n | uniq | wc -l | tr -d ' ')" "$(lines "$LEDGER")" "seq numbers are unique"
is "$(column "$LEDGER" message_id | grep -c '^<outbox-c[0-9]*@chargeguard.test>$')" 20 "each concurrent message's Message-ID is recorded"

# --- a clean stop with a connection open mid-DATA ----------------------------
smtp_open >/dev/null
smtp 'EHLO t' >/dev/null; smtp 'MAIL FROM:<a@x>' >/dev/null; smtp 'RCPT TO:<b@y>' >/dev/null
smtp 'DATA' >/dev/null; send $'Subject: never finished\r\n\r\nhalf'
n=$(lines "$LEDGER")
t0=$SECONDS
stop_sink TERM
is "$SINK_RC" 0 "SIGTERM with a connection open mid-DATA: exit 0 (no sanitizer report)"
ok "stops promptly" [ $((SECONDS - t0)) -le 5 ]
smtp_close
is "$(lines "$LEDGER")" "$n" "the unfinished message is not in the ledger"
like "$(cat "$SINK_LOG")" "SIGTERM: stopping" "SIGTERM: logged"
like "$(cat "$SINK_LOG")" "closed 1 open connection" "the open connection was closed"

# --- drop after DATA: the first N -------------------------------------------
start_sink first --drop-after-data-first 1
rc=$(mail "$T/receipt.eml")
ok "drop-after-data-first 1: curl's first send fails (curl exit $rc)" [ "$rc" != 0 ]
diag "curl's exit status when the sink drops after DATA: $rc"
is "$(lines "$LEDGER")" 1 "the dropped message is in the ledger as soon as curl sees the close"
is "$(field "$LEDGER" 1 acknowledged)" false "... with acknowledged false"
is "$(mail "$T/receipt.eml")" 0 "the re-send succeeds"
is "$(field "$LEDGER" 2 acknowledged)" true "... with acknowledged true"
is "$(field "$LEDGER" 2 message_id)" "$(field "$LEDGER" 1 message_id)" "both copies share the Message-ID"
like "$(cat "$SINK_LOG")" "seq=1: .*dropping the connection instead of answering 250" "the drop is logged"
stop_sink INT
is "$SINK_RC" 0 "SIGINT: exit 0"

# --- drop after DATA with a probability, reproducible from --seed ------------
run_40() { # NAME: 40 sends to a --drop-after-data 0.5 --seed 7 sink
  start_sink "$1" --drop-after-data 0.5 --seed 7 || return
  fails=0
  for i in $(seq 1 40); do
    sed "s/outbox-41@/outbox-p$i@/" "$T/receipt.eml" >"$T/p.eml"
    [ "$(mail "$T/p.eml")" = 0 ] || fails=$((fails + 1))
  done
  stop_sink
}
run_40 prob1
dropped=$(column "$LEDGER" acknowledged | grep -c false)
is "$(lines "$LEDGER")" 40 "drop-after-data 0.5: 40 messages in the ledger"
ok "about half dropped ($dropped of 40; 10..30 is over 3 standard deviations)" \
  test "$dropped" -ge 10 -a "$dropped" -le 30
is "$fails" "$dropped" "curl failed exactly for the messages recorded unacknowledged"
pattern1=$(column "$LEDGER" acknowledged | tr '\n' ' ')
run_40 prob2
is "$(column "$LEDGER" acknowledged | tr '\n' ' ')" "$pattern1" "the same --seed drops the same messages"

# --- limits: idle timeout, connection count ----------------------------------
start_sink limits --idle-timeout 1 --max-connections 2
smtp_open >/dev/null; S1=$S
smtp_open >/dev/null; S2=$S
exec {S}<>"/dev/tcp/127.0.0.1/$PORT"
like "$(smtp_reply)" '^421 .*too many connections' "a third connection over --max-connections 2: 421"
smtp_close
S=$S1; like "$(smtp_reply)" "^421 .*Idle timeout" "an idle connection gets 421 after --idle-timeout"
smtp_close; S=$S2; smtp_close
stop_sink
is "$SINK_RC" 0 "limits sink: exit 0"

done_testing
