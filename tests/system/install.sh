#!/usr/bin/env bash
# make install: the tree it writes (DESTDIR, PREFIX=/usr), the systemd units
# (systemd-analyze verify), the man pages (rendered without a warning), and
# that every option of each daemon's --help is documented, with its file
# key, variable, default and restart mark, in its man page and its example
# config. Installs from the built tree and compiles nothing.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/options.sh"
cd "$CG_ROOT" || exit 1

# --- the install itself -------------------------------------------------------
# (make -q would count the phony deps step as work to do)
is "$(make -n build/bin/charger build/bin/relay 2>&1 | grep -E '^(cc|gcc) ')" "" \
  "the daemons are built and up to date (make install will compile nothing)"
DEST=$TEST_TMP/dest
out=$(make install DESTDIR="$DEST" PREFIX=/usr 2>&1)
is "$?" 0 "make install DESTDIR=... PREFIX=/usr succeeds (not as root it needs no root either: modes only, no chown)"
unlike "$out" "(^|[ /])(cc|gcc) " "it compiled nothing"

expect=(
  "755 usr/bin/charger" "755 usr/bin/relay" "755 usr/bin/chargeguard-migrate" "755 usr/bin/chargeguard-archive"
  "755 usr/share/chargeguard/migrate"
  "644 usr/lib/systemd/system/chargeguard-charger.service"
  "644 usr/lib/systemd/system/chargeguard-relay.service"
  "644 usr/lib/systemd/system/chargeguard-charger-once.service"
  "644 usr/lib/systemd/system/chargeguard-charger-once.timer"
  "644 usr/lib/systemd/system/chargeguard-archive.service"
  "644 usr/lib/systemd/system/chargeguard-archive.timer"
  "644 usr/share/man/man8/chargeguard-archive.8"
  "644 usr/share/man/man8/charger.8" "644 usr/share/man/man8/relay.8"
  "644 usr/share/man/man5/chargeguard.conf.5"
  "644 usr/share/doc/chargeguard/examples/charger.conf"
  "644 usr/share/doc/chargeguard/examples/relay.conf"
  "644 usr/share/doc/chargeguard/README.md" "644 usr/share/doc/chargeguard/operations.md"
  "644 etc/chargeguard/charger.conf" "644 etc/chargeguard/relay.conf"
)
for e in "${expect[@]}"; do
  mode=${e%% *} f=${e#* }
  is "$(stat -c %a "$DEST/$f" 2>&1)" "$mode" "installed $f, mode $mode"
done
for f in db/migrations/*.sql; do
  cmp -s "$f" "$DEST/usr/share/chargeguard/migrations/$(basename "$f")" || { echo "# missing or different: $f"; false; }
done
ok "every migration is installed next to migrate" [ $? -eq 0 ]
unlike "$(cd "$DEST" && find . -type f | grep -v -E '^\./(usr/(bin|lib/systemd/system|share/(chargeguard|man|doc/chargeguard))|etc/chargeguard)/')" . \
  "nothing is installed anywhere else"
is "$("$DEST/usr/bin/relay" --version)" "relay (chargeguard) $(cat VERSION)" "the installed relay runs"
is "$("$DEST/usr/bin/charger" --version)" "charger (chargeguard) $(cat VERSION)" "the installed charger runs"
like "$("$DEST/usr/share/chargeguard/migrate" --status "dbname=$CG_TEMPLATE" 2>&1)" \
  "applied +$(basename "$(ls db/migrations/*.sql | tail -1)" .sql)" \
  "the installed migrate finds its migrations (--status against the test database)"
like "$(grep '^installed_migrations=' "$DEST/usr/bin/chargeguard-migrate")" \
  '^installed_migrations="/usr/share/chargeguard/migrations"$' \
  "chargeguard-migrate on PATH reads the migrations where they are installed (DATADIR, not DESTDIR)"

echo "db = dbname=mine" >>"$DEST/etc/chargeguard/relay.conf"
make -s install DESTDIR="$DEST" PREFIX=/usr >/dev/null 2>&1
like "$(tail -1 "$DEST/etc/chargeguard/relay.conf")" "^db = dbname=mine$" \
  "a second install keeps the administrator's /etc/chargeguard/relay.conf"

# --- the units ----------------------------------------------------------------
UNITDIR=$DEST/usr/lib/systemd/system
unlike "$(cat "$UNITDIR"/chargeguard-*)" "@[A-Z_]+@" "no placeholder is left in the installed units"
for d in charger relay charger-once; do
  u=$UNITDIR/chargeguard-$d.service
  if [ $d = charger-once ]; then
    wants=("Type=oneshot" "ExecStart=/usr/bin/charger --once --config /etc/chargeguard/charger.conf")
  else
    wants=("Type=notify" "WatchdogSec=" "ExecStart=/usr/bin/$d --config /etc/chargeguard/$d.conf"
           'ExecReload=/bin/kill -HUP $MAINPID' "Restart=on-failure")
  fi
  for want in "${wants[@]}" "NoNewPrivileges=yes" \
              "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes" \
              "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "ProtectKernelTunables=yes" \
              "ProtectKernelModules=yes" "ProtectControlGroups=yes" "LockPersonality=yes" \
              "MemoryDenyWriteExecute=yes" "RestrictNamespaces=yes" "SystemCallFilter=@system-service" \
              "CapabilityBoundingSet=" "DynamicUser=yes"; do
    grep -qxF -- "$want" "$u" || grep -qF -- "$want" "$u" || { echo "# $d: no '$want'"; false; }
  done
  ok "chargeguard-$d.service: its type, command, reload and restart, and the hardening" [ $? -eq 0 ]
done
u=$UNITDIR/chargeguard-archive.service
for want in "Type=oneshot" 'ExecStart=/usr/bin/chargeguard-archive --older-than "30 days"' \
            "DynamicUser=yes" "NoNewPrivileges=yes" "ProtectSystem=strict" "CapabilityBoundingSet="; do
  grep -qxF -- "$want" "$u" || { echo "# archive: no '$want'"; false; }
done
ok "chargeguard-archive.service: a oneshot run of chargeguard-archive, in the daemons' sandbox" [ $? -eq 0 ]
is "$(grep '^User=' "$u" | tail -1)" "User=chargeguard-archive" \
  "chargeguard-archive.service runs as a user of its own (its last User= line wins over the sandbox's)"
ok "chargeguard-archive.timer starts it daily, catching up a missed day" \
  grep -qx "OnCalendar=daily" "$UNITDIR/chargeguard-archive.timer"
like "$("$DEST/usr/bin/chargeguard-archive" --help)" "^Usage: chargeguard-archive \\[CONNINFO\\]" \
  "the installed chargeguard-archive runs (--help)"
T=$UNITDIR/chargeguard-charger-once.timer
timer_ok() { grep -qx "Unit=chargeguard-charger-once.service" "$1" && grep -qx 'OnCalendar=\*:0/5' "$1" &&
             grep -qx "Persistent=true" "$1" && grep -qx "WantedBy=timers.target" "$1"; }
ok "chargeguard-charger-once.timer starts the once service every 5 minutes, catching up missed ticks" \
  timer_ok "$T"
like "$(cat "$UNITDIR/chargeguard-relay.service")" \
  "LoadCredential=gateway-key:/etc/chargeguard/gateway-key" "the relay's key is a systemd credential"
like "$(grep '^ExecStart=' "$UNITDIR/chargeguard-relay.service")" "--gateway-key-file=%d/gateway-key" \
  "and the relay reads it from \$CREDENTIALS_DIRECTORY"

# systemd-analyze verify checks that each Exec*= binary exists at its
# absolute path, on the host. --root=DEST would need a whole systemd tree in
# DEST (sysinit.target, /bin/kill, ...), and /usr/bin/relay must not be
# created on the host; so the units are verified from a second, relocated
# install (PREFIX and SYSCONFDIR inside the test's directory, no DESTDIR)
# whose paths really exist, against the host's own units; MANPATH lets the
# Documentation=man: check find the installed pages. The DESTDIR units must
# be the same files up to those paths.
REL=$TEST_TMP/relocated
make -s install PREFIX="$REL/usr" SYSCONFDIR="$REL/etc" >/dev/null 2>&1
ok "a relocated install (PREFIX=$REL/usr) succeeds" [ -x "$REL/usr/bin/relay" ]
like "$(cd / && PATH=$REL/usr/bin:$PATH chargeguard-migrate --status "dbname=$CG_TEMPLATE" 2>&1)" \
  "applied +$(basename "$(ls db/migrations/*.sql | tail -1)" .sql)" \
  "chargeguard-migrate, found on PATH and run from /, finds the installed migrations"
for u in chargeguard-charger.service chargeguard-relay.service chargeguard-charger-once.service \
         chargeguard-charger-once.timer chargeguard-archive.service chargeguard-archive.timer; do
  is "$(sed -e "s|$REL/usr|/usr|g" -e "s|$REL/etc|/etc|g" "$REL/usr/lib/systemd/system/$u" | diff - "$UNITDIR/$u")" "" \
    "$u: the relocated unit differs from the DESTDIR one only in its paths"
done
if command -v systemd-analyze >/dev/null; then
  verify=$(MANPATH=$REL/usr/share/man systemd-analyze verify "$REL"/usr/lib/systemd/system/chargeguard-*.service \
             "$REL"/usr/lib/systemd/system/chargeguard-*.timer 2>&1)
  is "$?$verify" "0" "systemd-analyze verify: the four services and the two timers, no warning"
  [ -n "$verify" ] && echo "$verify" | sed 's/^/#   /'
else
  diag "systemd-analyze not found: units not verified"
fi

# --- the man pages ------------------------------------------------------------
for page in "$DEST"/usr/share/man/man8/*.8 "$DEST"/usr/share/man/man5/*.5; do
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  is "$?$warn" "0" "$(basename "$page"): groff -man -ww renders it without a warning"
  ok "$(basename "$page"): man -l renders it" bash -c 'MANWIDTH=80 man -l "$1" 2>&1 | grep -q "SEE ALSO"' _ "$page"
done

# --- every option documented ----------------------------------------------------
for d in charger relay; do
  page=$DEST/usr/share/man/man8/$d.8 conf=$DEST/usr/share/doc/chargeguard/examples/$d.conf
  missing=()
  while IFS='|' read -r flag key env def restart; do
    entry=$(man_entry "$page" "$flag")
    [ -n "$entry" ] || { missing+=("man: no entry for $flag"); continue; }
    [ -z "$key" ] || [[ "$entry" == *"File key $key "* ]] || missing+=("man $flag: file key $key")
    [ -z "$env" ] || [[ "$entry" == *"$env"* ]] || missing+=("man $flag: $env")
    [ -z "$def" ] || [[ "$entry" == *"default $def"[\ .\;]* ]] || missing+=("man $flag: default $def")
    [ -z "$restart" ] || [[ "$entry" == *" restart "* ]] || missing+=("man $flag: restart mark")
    if [ -n "$key" ]; then
      para=$(conf_paragraph "$conf" "$key")
      grep -qx "#$key =${def:+ $def}" <<<"$para" || missing+=("$d.conf: no line '#$key =${def:+ $def}'")
      [ -z "$restart" ] || [[ "$para" == *"[restart]"* ]] || missing+=("$d.conf $key: [restart] mark")
      [ -n "$restart" ] || [[ "$para" != *"[restart]"* ]] || missing+=("$d.conf $key: stray [restart] mark")
    else
      grep -q -- "$flag" "$conf" || missing+=("$d.conf: command-line-only $flag not named")
    fi
  done < <(help_options "build/bin/$d")
  is "${missing[*]}" "" "$d: every option of --help is in $d.8 (key, variable, default, restart) and in $d.conf"
  stale=$(comm -23 <(man_flags "$page") <(help_options "build/bin/$d" | cut -d'|' -f1 | sort -u))
  is "$stale" "" "$d.8 describes no option that --help does not list"
  envs=$(help_options "build/bin/$d" | cut -d'|' -f3 | grep . | sort -u)
  is "$(comm -23 <(echo "$envs") <(grep -oE '[A-Z_]+' "$page" | sort -u))" "" "$d.8 names every variable"
  like "$(cat "$DEST/usr/share/man/man5/chargeguard.conf.5")" "\\[$d\\]" "chargeguard.conf.5 names the [$d] section"
done

# --- the example configs are valid, every key set to its default ----------------------
for d in charger relay; do
  sed 's/^#\([a-z_]* =\)/\1/' "conf/$d.conf" >"$TEST_TMP/$d.conf"
done
out=$(build/bin/charger --config "$TEST_TMP/charger.conf" --once --db "host=$TEST_TMP/none" --db-wait 0.2 2>&1)
unlike "$out" "config file" "charger.conf with every key at its default is accepted"
out=$(RELAY_GATEWAY_KEY=sk_test_x timeout -s TERM 2 build/bin/relay --config "$TEST_TMP/relay.conf" \
        --db "host=$TEST_TMP/none" --gateway-url http://127.0.0.1:9 2>&1)
like "$out" "started: gateway stripe" "relay.conf with every key at its default is accepted"

done_testing
