-- 0010: what the charger refuses to enqueue, tightened (issue 8, bad inputs).
--
-- Besides no payment method, nothing due and a malformed currency, an
-- invoice is now unchargeable (reported once in outbox.unchargeable, never
-- sent) when:
--   * its amount due is above 99,999,999 minor units: no gateway takes more
--     in one charge (Stripe: eight digits), and a typo or an overflowing
--     import should reach a person, not a card;
--   * its currency is three lower-case letters but no ISO 4217 currency a
--     card can be charged in ('xyz', 'xau'): the gateway would refuse it,
--     or worse, read it as something else;
--   * the customer's gateway_customer_id or payment_source is longer than
--     127 bytes: the relay carries each in 128 bytes, and a longer one would
--     be cut, which names another customer or card.
-- A charge row already enqueued is not touched. Idempotency keys: see the
-- constraint at the end.

CREATE OR REPLACE FUNCTION outbox.charge_problem(p_amount_due bigint, p_currency text, p_customer bigint,
                                                 p_gateway_customer text, p_payment_source text)
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN nullif(btrim(p_gateway_customer), '') IS NULL
         AND nullif(btrim(p_payment_source), '') IS NULL THEN
            format('customer %s has neither gateway_customer_id nor payment_source', p_customer)
        WHEN octet_length(p_gateway_customer) > 127 THEN
            format('customer %s: gateway_customer_id is %s bytes, more than the 127 the relay carries',
                   p_customer, octet_length(p_gateway_customer))
        WHEN octet_length(p_payment_source) > 127 THEN
            format('customer %s: payment_source is %s bytes, more than the 127 the relay carries',
                   p_customer, octet_length(p_payment_source))
        WHEN p_amount_due <= 0 THEN
            format('amount due is %s cents; nothing to charge', p_amount_due)
        WHEN p_amount_due > 99999999 THEN
            format('amount due is %s cents, above the 99999999 a single charge may be', p_amount_due)
        WHEN p_currency !~ '^[a-z]{3}$' THEN
            format('currency %L is not a lower-case three-letter ISO 4217 code', p_currency)
        WHEN p_currency <> ALL ('{aed,afn,all,amd,aoa,ars,aud,awg,azn,bam,bbd,bdt,bgn,bhd,bif,bmd,bnd,bob,
            bov,brl,bsd,btn,bwp,byn,bzd,cad,cdf,che,chf,chw,clf,clp,cny,cop,cou,crc,cuc,cup,cve,czk,djf,
            dkk,dop,dzd,egp,ern,etb,eur,fjd,fkp,gbp,gel,ghs,gip,gmd,gnf,gtq,gyd,hkd,hnl,htg,huf,idr,ils,
            inr,iqd,irr,isk,jmd,jod,jpy,kes,kgs,khr,kmf,kpw,krw,kwd,kyd,kzt,lak,lbp,lkr,lrd,lsl,lyd,mad,
            mdl,mga,mkd,mmk,mnt,mop,mru,mur,mvr,mwk,mxn,mxv,myr,mzn,nad,ngn,nio,nok,npr,nzd,omr,pab,pen,
            pgk,php,pkr,pln,pyg,qar,ron,rsd,rub,rwf,sar,sbd,scr,sdg,sek,sgd,shp,sle,sos,srd,ssp,stn,svc,
            syp,szl,thb,tjs,tmt,tnd,top,try,ttd,twd,tzs,uah,ugx,usd,usn,uyi,uyu,uyw,uzs,ved,ves,vnd,vuv,
            wst,xaf,xcd,xcg,xof,xpf,yer,zar,zmw,zwg}'::text[]) THEN
            format('currency %L is not an ISO 4217 currency a card can be charged in', p_currency)
    END
$$;

-- An idempotency key travels in an HTTP header: printable ASCII without
-- blanks, 1 to 255 bytes (Stripe's limit; the relay carries 255 bytes, and
-- char_length alone let 255 multi-byte characters through, which the relay
-- would cut into another key). Enqueued keys ('cg_<invoice>_<hex>') always
-- were. NOT VALID, then VALIDATE: the check of existing rows does not block
-- writers.
ALTER TABLE outbox.messages ADD CONSTRAINT messages_key_header_safe
    CHECK (idempotency_key ~ '^[\x21-\x7e]{1,255}$') NOT VALID;
ALTER TABLE outbox.messages VALIDATE CONSTRAINT messages_key_header_safe;
