-- baseline_schema.sql: the billing tables as a shop without an outbox has
-- them, for the benchmark's baselines (naive_loop, graphile). Applied by
-- each baseline at start, to its own throwaway database; idempotent.
-- Never apply it to a database chargeguard runs on: it removes guards.

-- Payments and transactions are recorded without an outbox row.
ALTER TABLE billing.payments ALTER COLUMN outbox_id DROP NOT NULL;
ALTER TABLE billing.transactions ALTER COLUMN outbox_id DROP NOT NULL;
-- I6 ties an in_flight invoice to a live outbox charge row; graphile's
-- enqueue marks invoices in_flight with a job instead. The status
-- transitions themselves stay guarded (invoices_guard).
ALTER TABLE billing.invoices DISABLE TRIGGER invoices_i6_update;
