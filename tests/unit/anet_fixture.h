/* anet_fixture.h: the charge row and gateway both authorizenet unit tests
 * use (test_authorizenet_classify.c, test_authorizenet_lookup.c). */
#ifndef TEST_ANET_FIXTURE_H
#define TEST_ANET_FIXTURE_H

#include "gateway.h"

#include <stdio.h>
#include <string.h>

static const struct gateway_adapter *anet;
static struct charge ch;
static const struct gateway_config gw = {.url = "http://127.0.0.1:9", .key = "login1:key123"};

/* Row 77 of invoice 12, 12.34 usd, customer profile 900100 / payment
 * profile 800200. */
static int setup(void **state)
{
	(void)state;
	anet = gateway_find("authorizenet");
	memset(&ch, 0, sizeof(ch));
	ch.id = 77;
	ch.invoice_id = 12;
	ch.amount_cents = 1234;
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.customer, sizeof(ch.customer), "900100");
	snprintf(ch.source, sizeof(ch.source), "800200");
	return 0;
}

#endif
