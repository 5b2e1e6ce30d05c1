# tests/lib/system.sh: helpers for system tests (sourced by tests/system/*.sh).
# tests/run exports PGHOST/PGUSER (the throwaway cluster, as superuser),
# CG_TEMPLATE (a migrated template database) and CG_BIN (binaries to test).

CG_ROOT=${CG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CG_BIN=${CG_BIN:-$CG_ROOT/build/asan/bin}
CG_TEMPLATE=${CG_TEMPLATE:-cg_template}
CHARGER=$CG_BIN/charger
# Sanitizer reports fail the run; LeakSanitizer's exit code is 23.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=24}

source "$CG_ROOT/tests/lib/tap.sh"

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cg-system.XXXXXX")
TEST_DBS=()
_system_cleanup() {
  local pids
  pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  for db in "${TEST_DBS[@]}"; do dropdb --if-exists --force "$db" 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap _system_cleanup EXIT

# new_db NAME: a fresh database from the migrated template
new_db() {
  dropdb --if-exists --force "$1" 2>/dev/null
  createdb -T "$CG_TEMPLATE" "$1" || return 1
  TEST_DBS+=("$1")
}

# sql DB QUERY [psql args...]: run as the superuser, unaligned output
sql() { local db=$1 q=$2; shift 2; psql -X -At -q -v ON_ERROR_STOP=1 -d "$db" "$@" -c "$q"; }

# conninfo for a daemon's login role (least privilege, as in production)
charger_db() { echo "dbname=$1 user=charger_app host=$PGHOST"; }

# seed DB INVOICES [CUSTOMERS]: customers with gateway ids, due invoices
seed() {
  local db=$1 n=$2 customers=${3:-100}
  sql "$db" "
    INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
    SELECT g, 'customer' || g || '@example.com', 'cus_' || g, 'tok_visa'
      FROM generate_series(1, $customers) g;
    INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
    SELECT g, 1 + g % $customers, 1000 + g, 1000 + g, 'usd', now() - interval '1 day'
      FROM generate_series(1, $n) g;"
}

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# Checks that hold after any charger run: every enqueued invoice has exactly
# one live charge and it is the only charge row (I6), each charge has one
# notification row, each row has its creation event (I8).
check_enqueue_invariants() { # DB EXPECTED_CHARGES
  local db=$1 want=$2
  is "$(sql "$db" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'")" "$want" \
    "$want charge rows"
  is "$(sql "$db" "SELECT count(*) FROM (SELECT invoice_id FROM outbox.messages WHERE kind = 'charge'
        GROUP BY invoice_id HAVING count(*) > 1) d")" 0 "no invoice has two charge rows"
  is "$(sql "$db" "SELECT count(*) FROM billing.invoices i WHERE (i.status = 'in_flight') <>
        EXISTS (SELECT 1 FROM outbox.messages m WHERE m.invoice_id = i.id AND m.kind = 'charge')")" 0 \
    "in_flight exactly when a charge row exists (I6)"
  is "$(sql "$db" "SELECT count(*) FROM outbox.messages c WHERE c.kind = 'charge' AND
        (SELECT count(*) FROM outbox.messages e WHERE e.parent_id = c.id) <> 1")" 0 \
    "every charge has exactly one notification row"
  is "$(sql "$db" "SELECT count(*) FROM outbox.messages m WHERE NOT EXISTS
        (SELECT 1 FROM outbox.events e WHERE e.message_id = m.id AND e.from_state IS NULL
           AND e.to_state = m.state)")" 0 "every row has its creation event (I8)"
}
