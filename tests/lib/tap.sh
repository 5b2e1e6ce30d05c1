# tests/lib/tap.sh: TAP output for shell test scripts (sourced).
# Each check prints "ok N - desc" or "not ok N - desc" with diagnostics;
# done_testing prints the plan. tests/run counts the lines.

TAP_N=0
TAP_FAILED=0

_tap_result() { # rc desc
  TAP_N=$((TAP_N + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $TAP_N - $2"
  else
    echo "not ok $TAP_N - $2"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# ok DESC COMMAND...: passes when the command exits 0
ok() { local desc=$1; shift; "$@"; _tap_result $? "$desc"; }

# is GOT WANT DESC
is() {
  if [ "$1" = "$2" ]; then _tap_result 0 "$3"; else
    _tap_result 1 "$3"
    printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
  fi
}

# like TEXT REGEX DESC (extended regex)
like() {
  if grep -qE -- "$2" <<<"$1"; then _tap_result 0 "$3"; else
    _tap_result 1 "$3"
    printf '#   %s\n#   does not match: %s\n' "$(head -c 600 <<<"$1" | tr '\n' '|')" "$2"
  fi
}

# unlike TEXT REGEX DESC
unlike() {
  if grep -qE -- "$2" <<<"$1"; then
    _tap_result 1 "$3"
    printf '#   unexpectedly matches: %s\n#   %s\n' "$2" "$(grep -E -- "$2" <<<"$1" | head -3 | tr '\n' '|')"
  else _tap_result 0 "$3"; fi
}

diag() { printf '# %s\n' "$*"; }

done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
