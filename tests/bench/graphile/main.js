// main.js CONNINFO GATEWAY_URL KEYFILE CONCURRENCY POLL_MS SCHEMA_SQL (run
// by run.sh, which checks the arguments): graphile-worker's side of the
// benchmark. Applies SCHEMA_SQL (tests/bench/baseline_schema.sql), installs
// graphile's schema and starts the worker (untimed), then times
// from the one-statement enqueue to the commit of the last record, waits
// until no job is left, stops the worker and prints
// `graphile: charged=N seconds=S`.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { Pool } = require("pg");
const { run, runMigrations, Logger } = require("graphile-worker");
const { makeChargeTask } = require("./task");

const STALL_MS = 60000; // no job finished for this long: give up (exit 1)
const [conninfo, gateway, keyFile, concurrencyArg, pollArg, schemaSql] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const key = fs.readFileSync(keyFile, "utf8").split(/\r?\n/)[0];
const say = (msg) => process.stderr.write(`graphile: ${msg}\n`);

// pg's connectionString is a URI; a libpq keyword conninfo (as the other
// benchmark programs take) becomes postgresql://user:pw@/db?host=DIR&port=N
function connectionString(info) {
  if (/^postgres(ql)?:\/\//.test(info)) return info;
  const kv = {};
  const re = /\s*([a-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s']*)/gy;
  let m, end = 0;
  while ((m = re.exec(info)) !== null) {
    kv[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[2];
    end = re.lastIndex;
  }
  const unknown = Object.keys(kv).filter((k) => !["dbname", "host", "port", "user", "password"].includes(k));
  if (info.slice(end).trim() !== "" || unknown.length) {
    say(`CONNINFO '${info}': only dbname, host, port, user, password (or a postgresql:// URI) are understood`);
    process.exit(2);
  }
  const auth = kv.user ? encodeURIComponent(kv.user) + (kv.password ? ":" + encodeURIComponent(kv.password) : "") + "@" : "";
  const q = new URLSearchParams();
  if (kv.host) q.set("host", kv.host);
  if (kv.port) q.set("port", kv.port);
  return `postgresql://${auth}/${encodeURIComponent(kv.dbname || "")}?${q}`;
}

// graphile logs every job at info level; keep its warnings and errors
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") say(`${level}: ${message}`);
});

async function main() {
  const cs = connectionString(conninfo);
  const runId = crypto.randomBytes(6).toString("hex"); // keys unique per run at a shared simulator
  const counts = { paid: 0, declined: 0, failed: 0 };
  let lastRecord = 0;
  const pool = new Pool({ connectionString: cs, max: 2 });
  await pool.query(fs.readFileSync(schemaSql, "utf8")); // several statements, no parameters
  await runMigrations({ connectionString: cs, logger });
  // maxPoolSize = concurrency: graphile warns when the pool is smaller,
  // and each running job holds a connection while it records
  const runner = await run({
    connectionString: cs, concurrency, maxPoolSize: concurrency, pollInterval: Number(pollArg),
    logger, noHandleSignals: false,
    taskList: {
      charge: makeChargeTask(gateway, key, (outcome) => {
        counts[outcome]++;
        lastRecord = performance.now();
      }),
    },
  });

  // One statement: the invoices go in_flight and their jobs are added in
  // the same transaction. add_jobs is graphile's bulk form of add_job: for
  // 5,000 jobs here about 2 s, against 11 to 39 s for add_job per row; and
  // its one NOTIFY carries the count, which wakes that many idle workers.
  const t0 = performance.now();
  const { rows: [{ n }] } = await pool.query(
    `WITH due AS (
       UPDATE billing.invoices i SET status = 'in_flight'
        WHERE i.id IN (SELECT id FROM billing.invoices
                        WHERE status = 'open' AND due_at <= now() AND amount_due_cents > 0
                          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                          FOR UPDATE SKIP LOCKED)
       RETURNING i.id, i.failed_attempts)
     SELECT count(*) AS n FROM graphile_worker.add_jobs(ARRAY(
       SELECT ROW('charge', json_build_object('invoice_id', id,
                    'key', 'graphile_' || $1::text || '_' || id || '_' || failed_attempts),
                  NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM due))`, [runId]);
  say(`enqueued ${n} jobs in ${((performance.now() - t0) / 1000).toFixed(3)} s; concurrency ${concurrency}`);

  const PROGRESS_MS = 2000;
  let done = -1, lastChange = performance.now(), lastSaid = 0, left = Number(n), failedJobs = 0;
  while (left > 0) {
    await new Promise((r) => setTimeout(r, 200));
    const { rows: [j] } = await pool.query(
      `SELECT count(*) FILTER (WHERE attempts < max_attempts)::int AS left,
              count(*) FILTER (WHERE last_error IS NOT NULL)::int AS errors
         FROM graphile_worker.jobs WHERE task_identifier = 'charge'`);
    left = j.left;
    failedJobs = j.errors;
    const now = counts.paid + counts.declined + counts.failed;
    if (now !== done) {
      done = now;
      lastChange = performance.now();
      if (lastChange - lastSaid >= PROGRESS_MS || left === 0) {
        lastSaid = lastChange;
        say(`${done}/${n} recorded (${(done / ((lastChange - t0) / 1000)).toFixed(0)}/s)`);
      }
    } else if (performance.now() - lastChange > STALL_MS) {
      say(`no job finished for ${STALL_MS / 1000} s; ${left} left, ${failedJobs} with errors: giving up`);
      break;
    }
  }
  await runner.stop();
  await pool.end();
  const charged = counts.paid + counts.declined + counts.failed;
  const seconds = charged ? (lastRecord - t0) / 1000 : 0;
  say(`paid=${counts.paid} declined=${counts.declined} failed=${counts.failed} jobs_with_errors=${failedJobs}` +
      ` (${seconds > 0 ? (charged / seconds).toFixed(1) : 0} charges/s)`);
  say(`charged=${charged} seconds=${seconds.toFixed(3)}`);
  return left === 0 && charged === Number(n) ? 0 : 1; // every job done, each recorded once
}

main().then((rc) => process.exit(rc), (e) => {
  say(`error: ${e.stack || e}`);
  process.exit(1);
});
