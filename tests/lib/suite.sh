# tests/lib/suite.sh: run one suite, count its TAP lines (sourced by tests/run).
#
# A suite passes a test per "ok N" line and fails one per "not ok N" line
# ("# SKIP" counts as skipped, and so does a failing "# TODO": a known hole
# stays visible in the total instead of passing quietly). Tests the plan promised but never printed,
# and a non-zero exit with no failing line (a crash, a sanitizer report, a
# valgrind error), count as failures too: nothing is lost silently.

TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0
FAILED_SUITES=()

run_suite() { # NAME COMMAND...
  local name=$1; shift
  local log="$CG_LOGDIR/${name//[^A-Za-z0-9_.-]/_}.log"
  local t0=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local p f s plan
  read -r p f s plan < <(awk '
    /^[ \t]*ok [0-9]+/     { if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) s++; else p++; next }
    /^[ \t]*not ok [0-9]+/ { if ($0 ~ /# *TODO/) s++; else f++; next }
    /^[ \t]*1\.\.[0-9]+/   { sub(/^[ \t]*1\.\./, ""); plan += $1 + 0 }
    END { printf "%d %d %d %d\n", p, f, s, plan }' "$log")
  local seen=$((p + f + s)) note=""
  if [ "$plan" -gt "$seen" ]; then
    f=$((f + plan - seen)); note=" ($((plan - seen)) planned test(s) never ran)"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; note=" (exited with status $rc and no failing test line)"
  fi
  if [ "$seen" -eq 0 ] && [ "$f" -eq 0 ]; then
    f=1; note=" (no test output at all)"
  fi
  printf '%-44s %5d passed %3d failed %3d skipped %5ds%s\n' "$name" "$p" "$f" "$s" \
    $((SECONDS - t0)) "$note"
  if [ "$f" -gt 0 ]; then
    FAILED_SUITES+=("$name")
    grep -E -A4 '^[ \t]*not ok' "$log" | head -40 | sed 's/^/    | /'
    tail -n 15 "$log" | sed 's/^/    ~ /'
    echo "    full log: $log"
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
}
