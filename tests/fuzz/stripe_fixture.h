/* stripe_fixture.h: what both stripe harnesses share: the row the answers
 * are read for (77, invoice 12, 1999 usd, customer cus_1) and the input
 * "STATUS\nBODY" as the answer to one HTTP request that did connect. */
#ifndef CG_FUZZ_STRIPE_FIXTURE_H
#define CG_FUZZ_STRIPE_FIXTURE_H

#include "oracle.h"

#include "gateway.h"

static inline struct charge stripe_row(void)
{
	struct charge ch = {.id = 77, .invoice_id = 12, .amount_cents = 1999};
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.idempotency_key, sizeof(ch.idempotency_key), "cg_12_abc");
	snprintf(ch.customer, sizeof(ch.customer), "cus_1");
	return ch;
}

/* false when the input is not "STATUS\nBODY" */
static inline bool stripe_answer(const uint8_t *data, size_t size, struct gateway_answer *ans)
{
	const char *body;
	size_t len;
	long status;
	if (!fuzz_split_status(data, size, &status, &body, &len))
		return false;
	*ans = (struct gateway_answer){.curl_result = CURLE_OK, .connected = true,
				       .http_status = status, .body = len ? body : NULL,
				       .body_len = len, .lookup_at = ""};
	return true;
}

#endif
