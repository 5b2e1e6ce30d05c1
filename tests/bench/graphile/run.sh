#!/usr/bin/env bash
# tests/bench/graphile/run.sh CONNINFO GATEWAY_URL KEYFILE CONCURRENCY
#
# Baseline (c) of the benchmark (issue 7): the same job as chargeguard done
# by graphile-worker (pinned in tests/peers/package.json), as its users
# write it: one SQL statement enqueues one job per due invoice and marks
# the invoices in_flight; a task POSTs the charge with its idempotency key
# and records the outcome in one transaction (task.js; main.js runs it).
# Runs until every job is done; last line `graphile: charged=N seconds=S`
# (N: charges the gateway answered, paid or declined; S: from the enqueue
# to the last record's commit).
#
# CONNINFO: a libpq conninfo of keywords (dbname, host, port, user,
# password) or a postgresql:// URI; a socket directory as host is fine.
# The database is altered first (tests/bench/baseline_schema.sql): use a
# throwaway benchmark database. GRAPHILE_POLL_MS is the worker's
# pollInterval; graphile's default, 2000, is kept: jobs arrive by
# LISTEN/NOTIFY, and each idle worker polls on its own (100 workers at
# 100 ms were 1,000 queries/s competing with the enqueue). Bad arguments: a
# message and exit 2.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
usage="usage: $0 CONNINFO GATEWAY_URL KEYFILE CONCURRENCY"
refuse() { echo "graphile: $1" >&2; echo "$usage" >&2; exit 2; }

[ $# -eq 4 ] || refuse "expected 4 arguments, got $#"
conninfo=$1 url=$2 keyfile=$3 concurrency=$4
[ -n "$conninfo" ] || refuse "CONNINFO is empty"
[[ $url =~ ^https?://[^[:space:]]+$ ]] || refuse "GATEWAY_URL '$url' must start with http:// or https://"
[ -r "$keyfile" ] && [ -n "$(head -1 "$keyfile")" ] || refuse "KEYFILE '$keyfile' is not a readable file with a key on its first line"
[[ $concurrency =~ ^[1-9][0-9]{0,3}$ ]] && [ "$concurrency" -le 1000 ] ||
  refuse "CONCURRENCY '$concurrency' must be a whole number from 1 to 1000"
poll=${GRAPHILE_POLL_MS:-2000}
[[ $poll =~ ^[1-9][0-9]{0,5}$ ]] || refuse "GRAPHILE_POLL_MS '$poll' must be a whole number of milliseconds"
modules=$root/tests/peers/node_modules
[ -d "$modules/graphile-worker" ] || { echo "graphile: $modules/graphile-worker is missing: run make deps" >&2; exit 1; }

NODE_PATH=$modules exec node "$here/main.js" "$conninfo" "$url" "$keyfile" "$concurrency" "$poll" \
  "$root/tests/bench/baseline_schema.sql"
