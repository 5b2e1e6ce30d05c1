// task.js: graphile-worker's `charge` task of the benchmark baseline, as a
// user writes it: read the invoice, POST the charge (Stripe-style form, the
// idempotency key fixed at enqueue, so a retried job cannot charge twice),
// then record the outcome in one transaction with the same billing rows as
// chargeguard's record step and naive_loop. An answer it does not
// understand throws: graphile retries the job later with the same key.
"use strict";

// The gateway's verdict: "paid", "declined", "failed", or null (unknown).
function classify(status, body) {
  const error = body && body.error;
  if (status === 200 && body && body.id && body.status === "succeeded") return ["paid", body.id];
  if (status === 402 && error && error.type === "card_error") return ["declined", error.charge || null];
  if (status === 400 && error && error.type === "invalid_request_error") return ["failed", null];
  return [null, null];
}

async function post(gateway, key, inv, idempotencyKey) {
  const form = new URLSearchParams({ amount: inv.amount, currency: inv.currency });
  if (inv.customer) form.set("customer", inv.customer);
  if (inv.source) form.set("source", inv.source);
  form.set("description", `Invoice ${inv.id}`);
  form.set("metadata[invoice_id]", inv.id);
  const res = await fetch(`${gateway}/v1/charges`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Idempotency-Key": idempotencyKey },
    body: form,
    signal: AbortSignal.timeout(30000),
  });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON: unknown */ }
  return classify(res.status, body);
}

// Zero rows updated: the invoice was already recorded (a job retried after
// its commit), so nothing is written twice.
async function record(client, inv, outcome, chargeId) {
  await client.query("BEGIN");
  try {
    const updated = outcome === "paid"
      ? await client.query(
          `UPDATE billing.invoices SET amount_due_cents = amount_due_cents - $2,
                  status = CASE WHEN amount_due_cents - $2 <= 0 THEN 'paid' ELSE 'open' END
            WHERE id = $1 AND status = 'in_flight'`, [inv.id, inv.amount])
      : await client.query(
          `UPDATE billing.invoices SET status = 'open', failed_attempts = failed_attempts + 1,
                  next_attempt_at = now() + interval '1 day'
            WHERE id = $1 AND status = 'in_flight'`, [inv.id]);
    if (updated.rowCount === 1) {
      if (outcome === "paid")
        await client.query(
          `INSERT INTO billing.payments (invoice_id, amount_cents, currency, gateway_charge_id)
           VALUES ($1, $2, $3, $4)`, [inv.id, inv.amount, inv.currency, chargeId]);
      const kind = { paid: "charge", declined: "decline", failed: "failure" }[outcome];
      await client.query(
        `INSERT INTO billing.transactions (invoice_id, kind, amount_cents, gateway_charge_id)
         VALUES ($1, $2, $3, $4)`, [inv.id, kind, inv.amount, chargeId]);
    }
    await client.query("COMMIT");
    return updated.rowCount === 1;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => {});
    throw e;
  }
}

// makeChargeTask(gateway, key, onRecorded): the task; onRecorded(outcome)
// is called after each commit that recorded an outcome.
function makeChargeTask(gateway, key, onRecorded) {
  return async function charge(payload, helpers) {
    const { rows } = await helpers.query(
      `SELECT i.id::text AS id, i.amount_due_cents::text AS amount, i.currency,
              coalesce(btrim(c.gateway_customer_id), '') AS customer,
              coalesce(btrim(c.payment_source), '') AS source
         FROM billing.invoices i JOIN billing.customers c ON c.id = i.customer_id
        WHERE i.id = $1 AND i.status = 'in_flight'`, [payload.invoice_id]);
    if (rows.length === 0) return; // recorded by an earlier run of this job
    const inv = rows[0];
    const [outcome, chargeId] = await post(gateway, key, inv, payload.key);
    if (!outcome) throw new Error(`invoice ${inv.id}: gateway answer not understood; retrying with the same key`);
    const recorded = await helpers.withPgClient((client) => record(client, inv, outcome, chargeId));
    if (recorded) onRecorded(outcome);
  };
}

module.exports = { makeChargeTask, classify };
