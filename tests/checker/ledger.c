/* ledger.c: load the gateway's and the SMTP sink's ledgers into temporary
 * tables, refusing any ledger that is not what tests/sim/README.md says. */
#include "ledger.h"

#include "db.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const prepare_sql[] = {
	/* search_path: every name below is qualified; pg_catalog first so no
	 * object in the checked database can shadow a built-in. */
	"SET search_path = pg_catalog, pg_temp",
	/* The id a ledger's text field names, when it is a plain decimal id
	 * (no sign, no leading zero, fits a bigint): "17" -> 17, "017" -> NULL. */
	"CREATE FUNCTION pg_temp.cg_ref(t text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$"
	" SELECT CASE WHEN t ~ '^(0|[1-9][0-9]{0,17})$' THEN t::bigint END $$",
	/* A JSON value's type for the validator: integer is a number without a
	 * fraction; an absent key is 'missing'. */
	"CREATE FUNCTION pg_temp.cg_type(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$"
	" SELECT CASE WHEN v IS NULL THEN 'missing'"
	"  WHEN jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric = trunc((v #>> '{}')::numeric)"
	"  THEN 'integer' ELSE jsonb_typeof(v) END $$",
	/* The gateway's document, parsed once and read from here after. */
	"CREATE TEMP TABLE cg_doc (d jsonb NOT NULL)",
	/* list: 'requests' or 'charges' (n = index + 1), 'smtp' (n = line). */
	"CREATE TEMP TABLE cg_raw (list text NOT NULL, n bigint NOT NULL, j jsonb NOT NULL)",
	"CREATE TEMP TABLE cg_req ("
	" seq bigint NOT NULL, t_start float8, t_end float8, method text NOT NULL,"
	" path text NOT NULL, idem_key text, outbox_id text, outbox_ref bigint,"
	" invoice_id text, invoice_ref bigint, amount text, currency text, customer text,"
	" source text, status integer, fault text NOT NULL, replayed boolean,"
	" executed boolean NOT NULL, charge_id text, operation text)",
	"CREATE TEMP TABLE cg_charge ("
	" id text NOT NULL, created float8, amount numeric NOT NULL, currency text NOT NULL,"
	" customer text, source text, status text NOT NULL, outcome text, idem_key text,"
	" metadata jsonb, outbox_id text, outbox_ref bigint, invoice_id text,"
	" invoice_ref bigint, forgotten boolean NOT NULL)",
	"CREATE TEMP TABLE cg_mail ("
	" line bigint NOT NULL, seq bigint NOT NULL, message_id text, msg_ref bigint,"
	" rcpt text[] NOT NULL, acknowledged boolean NOT NULL)",
	"CREATE INDEX ON pg_temp.cg_req (idem_key, seq)",
	"CREATE INDEX ON pg_temp.cg_charge (id)",
	"CREATE INDEX ON pg_temp.cg_mail (msg_ref)",
	/* A charge POST: the only request that can move money. Lookups (GET,
	 * or Authorize.Net's list calls: same path, other operation) and the
	 * simulator's own /_control and /_ledger are not. */
	"CREATE TEMP VIEW cg_post AS SELECT * FROM pg_temp.cg_req"
	" WHERE (upper(method) = 'POST' AND rtrim(split_part(path, '?', 1), '/') = '/v1/charges')"
	"    OR operation = 'createTransactionRequest'",
	NULL,
};

int ledger_prepare(PGconn *c, char *err, size_t errlen)
{
	for (int i = 0; prepare_sql[i]; i++)
		if (db_run(c, "preparing the ledger tables", prepare_sql[i], 0, NULL, err, errlen) != 0)
			return -1;
	return 0;
}

/* Every field the checks read, with the JSON types it may have ('null'
 * also admits an absent key). Fields the checks never read are not
 * checked, so the peers may add to their ledgers freely. */
static const char validate_sql[] =
	"WITH rule (list, field, ok) AS (VALUES"
	" ('requests', 'seq', '{integer}'::text[]),"
	" ('requests', 't_start', '{integer,number,null}'),"
	" ('requests', 't_end', '{integer,number,null}'),"
	" ('requests', 'method', '{string}'),"
	" ('requests', 'path', '{string}'),"
	" ('requests', 'idempotency_key', '{string,null}'),"
	" ('requests', 'outbox_id', '{string,integer,null}'),"
	" ('requests', 'invoice_id', '{string,integer,null}'),"
	" ('requests', 'amount', '{string,integer,number,null}'),"
	" ('requests', 'currency', '{string,null}'),"
	" ('requests', 'customer', '{string,null}'),"
	" ('requests', 'source', '{string,null}'),"
	" ('requests', 'status', '{integer,null}'),"
	" ('requests', 'fault', '{string}'),"
	" ('requests', 'replayed', '{boolean,null}'),"
	" ('requests', 'executed', '{boolean}'),"
	" ('requests', 'charge_id', '{string,null}'),"
	" ('requests', 'operation', '{string,null}'),"
	" ('charges', 'id', '{string}'),"
	" ('charges', 'created', '{integer,number,null}'),"
	" ('charges', 'amount', '{integer}'),"
	" ('charges', 'currency', '{string}'),"
	" ('charges', 'customer', '{string,null}'),"
	" ('charges', 'source', '{string,null}'),"
	" ('charges', 'status', '{string}'),"
	" ('charges', 'outcome', '{string,null}'),"
	" ('charges', 'idempotency_key', '{string,null}'),"
	" ('charges', 'metadata', '{object,null}'),"
	" ('charges', 'forgotten', '{boolean}'),"
	" ('smtp', 'seq', '{integer}'),"
	" ('smtp', 'message_id', '{string,null}'),"
	" ('smtp', 'rcpt', '{array}'),"
	" ('smtp', 'acknowledged', '{boolean}')"
	"), raw AS (SELECT * FROM pg_temp.cg_raw WHERE list = ANY ($1::text[])),"
	" problem (list, n, what) AS ("
	" SELECT r.list, r.n, 'not a JSON object' FROM raw r WHERE jsonb_typeof(r.j) <> 'object'"
	" UNION ALL"
	" SELECT r.list, r.n, format('\"%s\" is %s, expected %s', u.field,"
	"        pg_temp.cg_type(r.j -> u.field), array_to_string(u.ok, ' or '))"
	"   FROM raw r JOIN rule u ON u.list = r.list"
	"  WHERE jsonb_typeof(r.j) = 'object'"
	"    AND NOT (pg_temp.cg_type(r.j -> u.field) = ANY (u.ok)"
	"             OR (r.j -> u.field IS NULL AND 'null' = ANY (u.ok)))"
	" UNION ALL"
	" SELECT r.list, r.n, format('\"status\" is %s, expected succeeded or failed',"
	"        r.j ->> 'status')"
	"   FROM raw r WHERE r.list = 'charges' AND jsonb_typeof(r.j -> 'status') = 'string'"
	"    AND r.j ->> 'status' NOT IN ('succeeded', 'failed')"
	" UNION ALL"
	" SELECT r.list, max(r.n), format('charge id %s appears %s times', r.j ->> 'id', count(*))"
	"   FROM raw r WHERE r.list = 'charges' AND jsonb_typeof(r.j -> 'id') = 'string'"
	"  GROUP BY r.list, r.j ->> 'id' HAVING count(*) > 1"
	" UNION ALL"
	" SELECT r.list, max(r.n), format('seq %s appears %s times', r.j ->> 'seq', count(*))"
	"   FROM raw r WHERE r.list = 'requests' AND pg_temp.cg_type(r.j -> 'seq') = 'integer'"
	"  GROUP BY r.list, r.j ->> 'seq' HAVING count(*) > 1"
	")"
	" SELECT CASE p.list WHEN 'smtp' THEN format('line %s', p.n)"
	"        ELSE format('%s[%s]', p.list, p.n - 1) END || ': ' || p.what,"
	"        count(*) OVER ()"
	"   FROM problem p ORDER BY p.list, p.n, p.what LIMIT 5";

/* err: up to five problems of the ledger, "; "-separated. */
static int validate(PGconn *c, const char *lists, const char *src, char *err, size_t errlen)
{
	const char *params[] = {lists};
	PGresult *r = db_exec(c, "validating the ledger", validate_sql, 1, params, err, errlen);
	if (!r)
		return -1;
	int rows = PQntuples(r);
	if (rows == 0) {
		PQclear(r);
		return 0;
	}
	size_t used = (size_t)snprintf(err, errlen, "%s is not a valid ledger (%s problem(s)): ",
				       src, PQgetvalue(r, 0, 1));
	for (int i = 0; i < rows && used < errlen; i++)
		used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? "; " : "",
					 PQgetvalue(r, i, 0));
	PQclear(r);
	return -1;
}

static const char gateway_shape_sql[] =
	"SELECT concat_ws('; ',"
	" CASE WHEN jsonb_typeof(d) <> 'object' THEN 'the document is not a JSON object' END,"
	" CASE WHEN jsonb_typeof(d) = 'object'"
	"       AND jsonb_typeof(d -> 'requests') IS DISTINCT FROM 'array'"
	"      THEN '\"requests\" is not an array' END,"
	" CASE WHEN jsonb_typeof(d) = 'object'"
	"       AND jsonb_typeof(d -> 'charges') IS DISTINCT FROM 'array'"
	"      THEN '\"charges\" is not an array' END)"
	" FROM pg_temp.cg_doc";

static const char gateway_raw_sql[] =
	"INSERT INTO pg_temp.cg_raw (list, n, j)"
	" SELECT k.list, e.n, e.j FROM pg_temp.cg_doc x"
	" CROSS JOIN (VALUES ('requests'), ('charges')) k (list)"
	" CROSS JOIN LATERAL jsonb_array_elements(x.d -> k.list) WITH ORDINALITY e (j, n)";

static const char gateway_req_sql[] =
	"INSERT INTO pg_temp.cg_req"
	" SELECT (j ->> 'seq')::numeric, (j ->> 't_start')::float8, (j ->> 't_end')::float8,"
	"        j ->> 'method', j ->> 'path', j ->> 'idempotency_key',"
	"        j ->> 'outbox_id', pg_temp.cg_ref(j ->> 'outbox_id'),"
	"        j ->> 'invoice_id', pg_temp.cg_ref(j ->> 'invoice_id'),"
	"        j ->> 'amount', j ->> 'currency', j ->> 'customer', j ->> 'source',"
	"        (j ->> 'status')::numeric, j ->> 'fault', (j ->> 'replayed')::boolean,"
	"        (j ->> 'executed')::boolean, j ->> 'charge_id', j ->> 'operation'"
	"   FROM pg_temp.cg_raw WHERE list = 'requests'";

static const char gateway_charge_sql[] =
	"INSERT INTO pg_temp.cg_charge"
	" SELECT j ->> 'id', (j ->> 'created')::float8, (j ->> 'amount')::numeric, j ->> 'currency',"
	"        j ->> 'customer', j ->> 'source', j ->> 'status', j ->> 'outcome',"
	"        j ->> 'idempotency_key', j -> 'metadata',"
	"        j -> 'metadata' ->> 'outbox_id', pg_temp.cg_ref(j -> 'metadata' ->> 'outbox_id'),"
	"        j -> 'metadata' ->> 'invoice_id', pg_temp.cg_ref(j -> 'metadata' ->> 'invoice_id'),"
	"        (j ->> 'forgotten')::boolean"
	"   FROM pg_temp.cg_raw WHERE list = 'charges'";

int ledger_load_gateway(PGconn *c, const struct text *doc, const char *src, char *err,
			size_t errlen)
{
	const char *params[] = {doc->data};
	if (db_run(c, src, "INSERT INTO pg_temp.cg_doc (d) VALUES ($1::jsonb)", 1, params, err,
		   errlen) != 0)
		return -1;
	PGresult *r = db_exec(c, src, gateway_shape_sql, 0, NULL, err, errlen);
	if (!r)
		return -1;
	if (PQgetvalue(r, 0, 0)[0] != '\0') {
		snprintf(err, errlen, "%s is not a gateway ledger: %s", src, PQgetvalue(r, 0, 0));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if (db_run(c, src, gateway_raw_sql, 0, NULL, err, errlen) != 0 ||
	    validate(c, "{requests,charges}", src, err, errlen) != 0 ||
	    db_run(c, src, gateway_req_sql, 0, NULL, err, errlen) != 0 ||
	    db_run(c, src, gateway_charge_sql, 0, NULL, err, errlen) != 0)
		return -1;
	return 0;
}

/* Appends to a growing buffer; -1 when out of memory. */
static int append(struct text *t, size_t *cap, const char *p, size_t n)
{
	if (t->len + n + 1 > *cap) {
		size_t want = *cap ? *cap : 4096;
		while (want < t->len + n + 1)
			want *= 2;
		char *d = realloc(t->data, want);
		if (!d)
			return -1;
		t->data = d;
		*cap = want;
	}
	memcpy(t->data + t->len, p, n);
	t->len += n;
	t->data[t->len] = '\0';
	return 0;
}

/* JSONL -> one JSON array [{"line": N, "m": <line N>}, ...], each line
 * checked to be a JSON object first so a bad one is named by its number. */
static int jsonl_to_array(const struct text *in, const char *src, struct text *out, char *err,
			  size_t errlen)
{
	size_t cap = 0;
	struct text t = {0};
	long line = 0;
	int rc = append(&t, &cap, "[", 1);
	const char *p = in->data, *end = in->data + in->len;
	while (rc == 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		line++;
		size_t n = (size_t)(stop - p);
		if (strspn(p, " \t\r") >= n) { /* blank line */
			p = stop + 1;
			continue;
		}
		const char *parse_end = NULL;
		cJSON *j = cJSON_ParseWithLengthOpts(p, n, &parse_end, 0);
		bool ok = j && cJSON_IsObject(j) && parse_end &&
			  strspn(parse_end, " \t\r") >= (size_t)(stop - parse_end);
		cJSON_Delete(j);
		if (!ok) {
			snprintf(err, errlen, "%s line %ld is not a JSON object: %.80s%s", src, line, p,
				 n > 80 ? "..." : "");
			/* the excerpt may run into the next line; cut it there */
			char *cut = strchr(err, '\n');
			if (cut)
				*cut = '\0';
			free(t.data);
			return -1;
		}
		char head[48];
		int hn = snprintf(head, sizeof(head), "%s{\"line\":%ld,\"m\":", t.len > 1 ? "," : "",
				  line);
		rc = append(&t, &cap, head, (size_t)hn);
		if (rc == 0)
			rc = append(&t, &cap, p, n);
		if (rc == 0)
			rc = append(&t, &cap, "}", 1);
		p = stop + 1;
	}
	if (rc == 0)
		rc = append(&t, &cap, "]", 1);
	if (rc != 0) {
		snprintf(err, errlen, "%s: out of memory", src);
		free(t.data);
		return -1;
	}
	*out = t;
	return 0;
}

static const char smtp_raw_sql[] =
	"INSERT INTO pg_temp.cg_raw (list, n, j)"
	" SELECT 'smtp', (e ->> 'line')::bigint, e -> 'm' FROM jsonb_array_elements($1::jsonb) e";

/* Message-ID <outbox-ID@DOMAIN> (PROTOCOL.md, Notifications); msg_ref is ID.
 * Addresses compare without angle brackets, blanks and case. */
static const char smtp_mail_sql[] =
	"INSERT INTO pg_temp.cg_mail"
	" SELECT n, (j ->> 'seq')::numeric, btrim(j ->> 'message_id'),"
	"        pg_temp.cg_ref((regexp_match(btrim(j ->> 'message_id'),"
	"                       '^<outbox-([0-9]+)@[^<>@[:space:]]+>$'))[1]),"
	"        ARRAY(SELECT lower(btrim(a, '<> ')) FROM jsonb_array_elements_text(j -> 'rcpt') a),"
	"        (j ->> 'acknowledged')::boolean"
	"   FROM pg_temp.cg_raw WHERE list = 'smtp'";

int ledger_load_smtp(PGconn *c, const struct text *jsonl, const char *src, char *err,
		     size_t errlen)
{
	struct text arr;
	if (jsonl_to_array(jsonl, src, &arr, err, errlen) != 0)
		return -1;
	const char *params[] = {arr.data};
	int rc = db_run(c, src, smtp_raw_sql, 1, params, err, errlen);
	free(arr.data);
	if (rc != 0 || validate(c, "{smtp}", src, err, errlen) != 0 ||
	    db_run(c, src, smtp_mail_sql, 0, NULL, err, errlen) != 0)
		return -1;
	return 0;
}

int ledger_summary(PGconn *c, bool gateway, bool smtp, FILE *out, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT format('gateway ledger: %s request(s), %s of them charge POSTs; %s charge(s):"
		" %s succeeded (%s forgotten), %s failed',"
		"  (SELECT count(*) FROM pg_temp.cg_req), (SELECT count(*) FROM pg_temp.cg_post),"
		"  count(*), count(*) FILTER (WHERE status = 'succeeded'),"
		"  count(*) FILTER (WHERE status = 'succeeded' AND forgotten),"
		"  count(*) FILTER (WHERE status = 'failed')),"
		" (SELECT format('smtp ledger: %s message(s), %s acknowledged', count(*),"
		"  count(*) FILTER (WHERE acknowledged)) FROM pg_temp.cg_mail)"
		" FROM pg_temp.cg_charge";
	PGresult *r = db_exec(c, "summarising the ledgers", sql, 0, NULL, err, errlen);
	if (!r)
		return -1;
	if (gateway)
		fprintf(out, "# %s\n", PQgetvalue(r, 0, 0));
	if (smtp)
		fprintf(out, "# %s\n", PQgetvalue(r, 0, 1));
	PQclear(r);
	return 0;
}
