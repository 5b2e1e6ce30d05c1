/* naive_loop.c: baseline (b) of the benchmark (issue 7): the loop a shop
 * writes before it knows better, one invoice at a time: select the next due
 * open invoice, POST the charge, then record the outcome in one transaction.
 *
 * It is the baseline, not the product: blocking libpq, one reused
 * curl_easy handle (keep-alive, as users write it), no outbox, no lease, no
 * lookup. It is exactly the shape PROTOCOL.md ("The problem") says charges
 * twice after a crash between the POST and the commit; the benchmark only
 * times it. For a fair comparison it does send an Idempotency-Key, fixed per
 * invoice and attempt, and the same form fields as the relay's stripe
 * adapter (relay/gateway_stripe.c).
 *
 * The database is chargeguard's schema after tests/bench/baseline_schema.sql
 * (applied here at start, outside the timed loop): payments and transactions
 * without an outbox row, as a shop without an outbox has them.
 *
 * Exit: 0 when nothing is left to charge, 1 on a database or gateway error
 * (an answer it does not understand stops the run, as a cron job would
 * stop), 2 on bad arguments. Last line on stderr:
 * `naive: charged=N seconds=S` (N: charges the gateway answered, paid or
 * declined; S: from the first select to the last commit). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdarg.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BASELINE_SCHEMA_SQL
#error "build with -DBASELINE_SCHEMA_SQL='\"path/to/tests/bench/baseline_schema.sql\"' (see the Makefile)"
#endif

#define BODY_MAX (1 << 20)	/* a charge answer is a few hundred bytes */
#define PROGRESS_EVERY 500

struct options {
	const char *db, *gateway_url, *key_file;
};

struct body {
	char *buf;
	size_t len;
};

enum outcome { PAID, DECLINED, FAILED };

static void usage(FILE *to)
{
	fprintf(to,
		"usage: naive_loop --db CONNINFO --gateway-url URL --key-file PATH\n"
		"\n"
		"The naive baseline of `make bench`: charges every due open invoice one\n"
		"at a time (select, POST /v1/charges with an Idempotency-Key, record in\n"
		"one transaction). Blocking calls; not crash safe by design.\n"
		"\n"
		"  --db CONNINFO      libpq conninfo or URI of a benchmark database\n"
		"                     (it is altered: tests/bench/baseline_schema.sql)\n"
		"  --gateway-url URL  http(s)://HOST:PORT of a Stripe-style gateway\n"
		"  --key-file PATH    file whose first line is the gateway API key\n"
		"  --help             this text\n"
		"\n"
		"Last line on stderr: naive: charged=N seconds=S\n");
}

__attribute__((format(printf, 1, 2), noreturn))
static void refuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "naive_loop: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	usage(stderr);
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"db", required_argument, NULL, 'd'},
		{"gateway-url", required_argument, NULL, 'g'},
		{"key-file", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->db = optarg; break;
		case 'g': o->gateway_url = optarg; break;
		case 'k': o->key_file = optarg; break;
		case 'h': usage(stdout); exit(0);
		case ':': refuse("%s needs a value", argv[optind - 1]); break;
		default: refuse("unknown option '%s'", argv[optind - 1]); break;
		}
	}
	if (optind < argc)
		refuse("unexpected argument '%s'", argv[optind]);
	if (!o->db)
		refuse("%s is required", "--db");
	if (!o->gateway_url)
		refuse("%s is required", "--gateway-url");
	if (!o->key_file)
		refuse("%s is required", "--key-file");
	if (strncmp(o->gateway_url, "http://", 7) != 0 && strncmp(o->gateway_url, "https://", 8) != 0)
		refuse("--gateway-url '%s' must start with http:// or https://", o->gateway_url);
}

/* The key's first line, without its line end; refuses an empty or
 * unreadable file, or a key with control characters (header smuggling). */
static void read_key(const char *path, char *key, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		refuse("--key-file '%s' cannot be opened", path);
	if (!fgets(key, (int)len, f))
		key[0] = '\0';
	fclose(f);
	key[strcspn(key, "\r\n")] = '\0';
	if (!key[0])
		refuse("--key-file '%s' holds no key on its first line", path);
	for (const char *s = key; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			refuse("--key-file '%s': the key holds a control character", path);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs one statement with bound parameters; 0 when it did what was wanted. */
static int exec(PGconn *db, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
	if (rc)
		fprintf(stderr, "naive: database: %s", PQerrorMessage(db));
	PQclear(r);
	return rc;
}

static int apply_schema(PGconn *db)
{
	FILE *f = fopen(BASELINE_SCHEMA_SQL, "r");
	if (!f) {
		fprintf(stderr, "naive: cannot read %s\n", BASELINE_SCHEMA_SQL);
		return -1;
	}
	char *sql = calloc(1, 65536);
	size_t n = sql ? fread(sql, 1, 65535, f) : 0;
	fclose(f);
	/* several statements: the simple query protocol, no parameters in it */
	PGresult *r = sql && n ? PQexec(db, sql) : NULL;
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	if (rc)
		fprintf(stderr, "naive: %s: %s", BASELINE_SCHEMA_SQL, PQerrorMessage(db));
	PQclear(r);
	free(sql);
	return rc;
}

/* The next due open invoice with its customer, or NULL (none, or an error:
 * *failed tells). Columns: id, amount due, currency, customer, source,
 * failed attempts. */
static PGresult *next_invoice(PGconn *db, bool *failed)
{
	PGresult *r = PQexec(db,
		"SELECT i.id, i.amount_due_cents, i.currency,"
		"       coalesce(btrim(c.gateway_customer_id), ''), coalesce(btrim(c.payment_source), ''),"
		"       i.failed_attempts"
		"  FROM billing.invoices i JOIN billing.customers c ON c.id = i.customer_id"
		" WHERE i.status = 'open' AND i.due_at <= now() AND i.amount_due_cents > 0"
		"   AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= now())"
		" ORDER BY i.due_at, i.id LIMIT 1");
	*failed = PQresultStatus(r) != PGRES_TUPLES_OK;
	if (*failed)
		fprintf(stderr, "naive: database: %s", PQerrorMessage(db));
	if (*failed || PQntuples(r) == 0) {
		PQclear(r);
		return NULL;
	}
	return r;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > BODY_MAX)
		return 0; /* aborts the transfer: not an answer we understand */
	char *grown = realloc(b->buf, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, data, n);
	b->buf = grown;
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* KEY is already escaped; -1 when the value does not fit */
static int form_add(CURL *curl, char *form, size_t len, const char *key, const char *value)
{
	char *v = curl_easy_escape(curl, value, 0);
	size_t used = strlen(form);
	int n = v ? snprintf(form + used, len - used, "%s%s=%s", used ? "&" : "", key, v) : -1;
	curl_free(v);
	return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* POSTs the charge; returns the HTTP status (0: no answer) and the body. */
static long post_charge(CURL *curl, const char *url, const char *key, const char *run,
			PGresult *inv, struct body *body)
{
	const char *id = PQgetvalue(inv, 0, 0), *customer = PQgetvalue(inv, 0, 3),
		   *source = PQgetvalue(inv, 0, 4);
	char form[2048] = "", description[48], auth[600], idem[300];
	snprintf(description, sizeof(description), "Invoice %s", id);
	if (form_add(curl, form, sizeof(form), "amount", PQgetvalue(inv, 0, 1)) ||
	    form_add(curl, form, sizeof(form), "currency", PQgetvalue(inv, 0, 2)) ||
	    (customer[0] && form_add(curl, form, sizeof(form), "customer", customer)) ||
	    (source[0] && form_add(curl, form, sizeof(form), "source", source)) ||
	    form_add(curl, form, sizeof(form), "description", description) ||
	    form_add(curl, form, sizeof(form), "metadata%5Binvoice_id%5D", id)) {
		fprintf(stderr, "naive: invoice %s: the charge does not fit in %zu bytes\n", id, sizeof(form));
		return 0;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	/* one key per invoice and attempt; the run id keeps two benchmark
	 * databases with the same invoice ids apart at one simulator */
	snprintf(idem, sizeof(idem), "Idempotency-Key: naive_%s_%s_%s", run, id, PQgetvalue(inv, 0, 5));

	struct curl_slist *h = NULL;
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, idem);
	h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	h = curl_slist_append(h, "Expect:");
	body->len = 0;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else
		fprintf(stderr, "naive: invoice %s: POST failed: %s\n", id, curl_easy_strerror(rc));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	return status;
}

/* 200 succeeded, 402 card_error, 400 invalid_request_error; anything else
 * is not understood (-1). *charge gets the gateway's charge id, if any. */
static int classify(long status, const struct body *b, char *charge, size_t len)
{
	charge[0] = '\0';
	cJSON *root = b->buf ? cJSON_Parse(b->buf) : NULL;
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "type"));
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status == 200 ? root : err,
										   status == 200 ? "id" : "charge"));
	const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "status"));
	int outcome = -1;
	if (status == 200 && id && st && strcmp(st, "succeeded") == 0)
		outcome = PAID;
	else if (status == 402 && type && strcmp(type, "card_error") == 0)
		outcome = DECLINED;
	else if (status == 400 && type && strcmp(type, "invalid_request_error") == 0)
		outcome = FAILED;
	if (id)
		snprintf(charge, len, "%s", id);
	cJSON_Delete(root);
	return outcome;
}

/* The record, one transaction, as the relay's record step writes the same
 * billing rows (payment, amount due, transaction; a decline or failure
 * pushes the next attempt out a day, like the relay's first retry). */
static int record(PGconn *db, PGresult *inv, enum outcome o, const char *charge)
{
	const char *id = PQgetvalue(inv, 0, 0), *amount = PQgetvalue(inv, 0, 1),
		   *currency = PQgetvalue(inv, 0, 2);
	const char *ref = charge[0] ? charge : NULL;
	const char *kind = o == PAID ? "charge" : o == DECLINED ? "decline" : "failure";
	const char *pay[] = {id, amount, currency, ref};
	const char *tx[] = {id, kind, amount, ref};
	const char *inv_params[] = {id, amount};

	if (exec(db, "BEGIN", 0, NULL))
		return -1;
	int rc = o == PAID
		? exec(db, "INSERT INTO billing.payments (invoice_id, amount_cents, currency, gateway_charge_id)"
			   " VALUES ($1, $2, $3, $4)", 4, pay) ||
		  exec(db, "UPDATE billing.invoices SET amount_due_cents = amount_due_cents - $2,"
			   " status = CASE WHEN amount_due_cents - $2 <= 0 THEN 'paid' ELSE 'open' END"
			   " WHERE id = $1", 2, inv_params)
		: exec(db, "UPDATE billing.invoices SET failed_attempts = failed_attempts + 1,"
			   " next_attempt_at = now() + interval '1 day' WHERE id = $1", 1, inv_params);
	rc = rc || exec(db, "INSERT INTO billing.transactions (invoice_id, kind, amount_cents, gateway_charge_id)"
			    " VALUES ($1, $2, $3, $4)", 4, tx);
	if (rc) {
		exec(db, "ROLLBACK", 0, NULL);
		return -1;
	}
	return exec(db, "COMMIT", 0, NULL);
}

int main(int argc, char **argv)
{
	struct options o = {0};
	char key[512], url[1024], run[32], charge[256];
	parse_options(argc, argv, &o);
	read_key(o.key_file, key, sizeof(key));
	snprintf(url, sizeof(url), "%s/v1/charges", o.gateway_url);
	snprintf(run, sizeof(run), "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());

	PGconn *db = PQconnectdb(o.db);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "naive: cannot connect: %s", PQerrorMessage(db));
		PQfinish(db);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *curl = curl_easy_init();
	struct body body = {0};
	long paid = 0, declined = 0, failed = 0;
	int rc = apply_schema(db) || !curl ? 1 : 0;
	if (curl) {
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	}
	fprintf(stderr, "naive: charging due invoices one at a time at %s\n", o.gateway_url);

	double t0 = now_s(), last = t0;
	while (rc == 0) {
		bool db_failed;
		PGresult *inv = next_invoice(db, &db_failed);
		if (!inv) {
			rc = db_failed;
			break;
		}
		long status = post_charge(curl, url, key, run, inv, &body);
		int outcome = classify(status, &body, charge, sizeof(charge));
		if (outcome < 0) {
			fprintf(stderr, "naive: invoice %s: gateway answered %ld, not understood: stopping\n",
				PQgetvalue(inv, 0, 0), status);
			rc = 1;
		} else if (record(db, inv, (enum outcome)outcome, charge)) {
			rc = 1;
		} else {
			paid += outcome == PAID;
			declined += outcome == DECLINED;
			failed += outcome == FAILED;
		}
		PQclear(inv);
		long done = paid + declined + failed;
		if (done % PROGRESS_EVERY == 0 && done) {
			double t = now_s();
			fprintf(stderr, "naive: %ld charged (%.0f/s over the last %d)\n", done,
				PROGRESS_EVERY / (t - last), PROGRESS_EVERY);
			last = t;
		}
	}
	double seconds = now_s() - t0;

	memset(key, 0, sizeof(key));
	free(body.buf);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	PQfinish(db);
	fprintf(stderr, "naive: paid=%ld declined=%ld failed=%ld (%.1f charges/s)%s\n", paid,
		declined, failed, seconds > 0 ? (paid + declined + failed) / seconds : 0.0,
		rc ? ", stopped by an error" : "");
	fprintf(stderr, "naive: charged=%ld seconds=%.3f\n", paid + declined + failed, seconds);
	return rc;
}
