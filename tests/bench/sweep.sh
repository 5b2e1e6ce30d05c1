# tests/bench/sweep.sh: opt-in sweeps of make bench (sourced by bench.sh).
#
# BENCH_SWEEP=1: charges/s of a drain of BENCH_SWEEP_INVOICES (20000) due
# invoices, one run per point, each on a fresh database, measured like the
# main run (bench_throughput), against
#   the in-flight limit   BENCH_SWEEP_INFLIGHT (64 256 1000), at BENCH_LATENCY_MS
#   the gateway latency   BENCH_SWEEP_LATENCY (10 50 200) ms, at BENCH_INFLIGHT
#   the number of relays  BENCH_SWEEP_RELAYS (1 2 4)
# BENCH_SCALE=1M|10M (or a number): the same drain on a database already
# holding that many settled charges (with their invoices, events, payments
# and transactions), against one on an empty outbox.
# Data as .dat (gnuplot's whitespace columns) and charts as PNG (gnuplot)
# into BENCH_CHART_DIR (docs/perf); the figures go into the table.

SWEEP_N=${BENCH_SWEEP_INVOICES:-20000}
CHART_DIR=${BENCH_CHART_DIR:-$CG_ROOT/docs/perf}

# sweep_point LABEL LATENCY INFLIGHT [PREFILL]: one drain; sets SWEEP_RATE
# (charges/s). Never in a subshell: the peers it starts are this shell's.
sweep_point() {
  local label=$1 latency=$2 inflight=$3 prefill=${4:-0} db=bench_sweep
  bench_db_new $db || die "$label: database"
  [ "$prefill" -gt 0 ] && { bench_prefill $db "$prefill" || die "$label: pre-fill"; }
  bench_seed $db "$SWEEP_N" >/dev/null || die "$label: seeding"
  drain $db "$SWEEP_N" "$label" "$latency" "$inflight"
  local n secs
  read -r n secs SWEEP_RATE <<<"$(bench_throughput $db)"
  progress "$label: $n charges in $secs s = $SWEEP_RATE/s"
}

# sweep_axis NAME XLABEL VALUES FUNCTION [GNUPLOT SETTINGS]: runs FUNCTION VALUE (which sets
# SWEEP_RATE) for each value, writes CHART_DIR/NAME.dat ("x charges_per_s") and NAME.png
sweep_axis() {
  local name=$1 xlabel=$2 values=$3 fn=$4 v dat=$CHART_DIR/$1.dat
  mkdir -p "$CHART_DIR"
  {
    echo "# make bench sweep: charges/s against $xlabel ($SWEEP_N invoices per point;" \
         "$(date -u +%F), commit $(git rev-parse --short HEAD 2>/dev/null))"
    echo "# $name charges_per_s"
  } >"$dat"
  for v in $values; do
    "$fn" "$v"
    echo "$v $SWEEP_RATE" >>"$dat"
    SWEEP_SUMMARY+=$(printf '  %-44s %s\n' "$xlabel = $v" "$SWEEP_RATE charges/s")$'\n'
  done
  sweep_chart "$name" "$xlabel" "$dat" "${5:-}"
}

sweep_chart() { # NAME XLABEL DAT [SETTINGS]
  command -v gnuplot >/dev/null || { progress "no gnuplot (make deps installs gnuplot-nox): $3 only"; return 0; }
  gnuplot <<GP || progress "gnuplot failed on $3"
set terminal pngcairo size 800,500 noenhanced
set output '$CHART_DIR/$1.png'
set title 'chargeguard: charges/s against $2 ($SWEEP_N invoices per point)'
set xlabel '$2'
set ylabel 'charges/s'
set grid
set yrange [0:*]
$4
plot '$3' using 1:2 with linespoints lw 2 pt 7 notitle
GP
}

_sweep_inflight() { sweep_point "sweep_inflight_$1" "$LATENCY" "$1"; }
_sweep_latency() { sweep_point "sweep_latency_$1" "$1" "$INFLIGHT"; }
_sweep_relays() {
  local saved=$RELAYS
  RELAYS=$1
  sweep_point "sweep_relays_$1" "$LATENCY" "$INFLIGHT"
  RELAYS=$saved
}

# bench_prefill DB N: N settled (succeeded) charges, as if from earlier
# billing runs: their customer, paid invoices, charge rows, the three events
# of each (created, claimed, succeeded), payments and transactions. As the
# superuser with triggers off (session_replication_role = replica), in one
# set-based statement per table; ids from BENCH_PREFILL_BASE up, clear of
# bench_seed's and left out of every count.
bench_prefill() {
  local db=$1 n=$2
  progress "pre-filling $n settled charges into $db"
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
SET session_replication_role = replica;
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
VALUES ($BENCH_PREFILL_BASE, 'old@example.com', 'cus_bench_old', 'tok_visa');
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, status)
SELECT $BENCH_PREFILL_BASE + g, $BENCH_PREFILL_BASE, 1000 + g % 9000, 0, 'usd', now() - interval '30 days', 'paid'
  FROM generate_series(1, $n) g;
INSERT INTO outbox.messages (id, kind, invoice_id, idempotency_key, state, attempts, gateway_ref,
                             amount_cents, currency, created_at, updated_at)
SELECT $BENCH_PREFILL_BASE + g, 'charge', $BENCH_PREFILL_BASE + g, 'cg_old_' || g, 'succeeded', 1, 'ch_old_' || g,
       1000 + g % 9000, 'usd', now() - interval '30 days', now() - interval '30 days'
  FROM generate_series(1, $n) g;
INSERT INTO outbox.events (message_id, at, from_state, to_state, actor)
SELECT $BENCH_PREFILL_BASE + g, now() - interval '30 days', f, t, 'bench prefill'
  FROM generate_series(1, $n) g,
       (VALUES (NULL, 'pending'), ('pending', 'submitting'), ('submitting', 'succeeded')) s(f, t);
INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
SELECT $BENCH_PREFILL_BASE + g, $BENCH_PREFILL_BASE + g, 1000 + g % 9000, 'usd', 'ch_old_' || g
  FROM generate_series(1, $n) g;
INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents, gateway_charge_id)
SELECT $BENCH_PREFILL_BASE + g, $BENCH_PREFILL_BASE + g, 'charge', 1000 + g % 9000, 'ch_old_' || g
  FROM generate_series(1, $n) g;
RESET session_replication_role;
VACUUM ANALYZE;
-- the pre-fill's pages written out now, not by a checkpoint in the middle
-- of the measured drain
CHECKPOINT;
SQL
}

sweep_scale_rows() { # 1M, 10M or a number
  case "$1" in
    *M) echo $(( ${1%M} * 1000000 )) ;;
    *) [[ "$1" =~ ^[0-9]+$ ]] && echo "$1" ;;
  esac
}

sweep_all() {
  SWEEP_SUMMARY=""
  if [ "${BENCH_SWEEP:-0}" = 1 ]; then
    sweep_axis inflight "in-flight limit" "${BENCH_SWEEP_INFLIGHT:-64 256 1000}" _sweep_inflight \
      "set logscale x 2"
    sweep_axis latency "gateway latency (ms)" "${BENCH_SWEEP_LATENCY:-10 50 200}" _sweep_latency
    sweep_axis relays "relays" "${BENCH_SWEEP_RELAYS:-1 2 4}" _sweep_relays
  fi
  if [ -n "${BENCH_SCALE:-}" ]; then
    local rows empty full
    rows=$(sweep_scale_rows "$BENCH_SCALE") || die "BENCH_SCALE must be 1M, 10M or a number"
    sweep_point sweep_scale_empty "$LATENCY" "$INFLIGHT"
    empty=$SWEEP_RATE
    sweep_point sweep_scale_full "$LATENCY" "$INFLIGHT" "$rows"
    full=$SWEEP_RATE
    SWEEP_SUMMARY+=$(printf '  %-44s %s\n' "empty outbox" "$empty charges/s")$'\n'
    SWEEP_SUMMARY+=$(printf '  %-44s %s\n' "$BENCH_SCALE settled rows" \
                      "$full charges/s ($(calc %.2f "$full / $empty") of empty)")$'\n'
  fi
}
