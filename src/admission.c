// SPDX-License-Identifier: BSD-2-Clause
/*
 * admission.c - who may be served: the access rules and the per-source
 * places, checked when a connection is accepted (or, behind a load
 * balancer, once its PROXY header names the client), and the refusals,
 * counted by reason and logged at most once a second.
 */
#include <errno.h>
#include <stdio.h>

#include "access.h"
#include "close_reason.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "counter.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "worker.h"

void admission_refused(struct core *k, const union net_addr *peer, int lfd,
		       enum refuse_reason why)
{
	char text[NET_ADDR_TEXT], fields[256] = "";

	counter_add(&k->w->stats.refused_by[why], 1);
	if (k->now_ms < k->log_next_ms) {
		k->log_missed++;
		return;
	}
	net_addr_text(&peer->sa, text, sizeof(text));
	if (log_json_on())
		snprintf(
			fields, sizeof(fields),
			"\"event\":\"refuse\",\"peer\":\"%s\",\"listen_fd\":%d,\"reason\":\"%s\",\"unlogged\":%llu",
			text, lfd, refuse_reason_label(why),
			(unsigned long long)k->log_missed);
	log_write_fields(LOG_INFO, fields,
			 "refused %s on fd %d: %s (%llu more refused unlogged)",
			 text, lfd, refuse_reason_words(why),
			 (unsigned long long)k->log_missed);
	k->log_missed = 0;
	k->log_next_ms = k->now_ms + 1000;
}

bool admission_check(struct core *k, const union net_addr *peer, int lfd,
		     uint32_t *flags)
{
	const struct options *o = k->o;
	enum access_verdict v;
	uint8_t key[16];
	int err;

	v = o->access.n ? access_check(&o->access, peer) : ACCESS_OK;
	if (v != ACCESS_OK) {
		admission_refused(k, peer, lfd,
				  v == ACCESS_DENIED ? REFUSE_DENY
						     : REFUSE_NOT_ALLOWED);
		return false;
	}
	if (o->max_per_source == 0)
		return true;
	access_source_key(peer, key);
	err = access_source_take(&k->w->shared->sources, key,
				 o->max_per_source);
	if (err < 0) {
		admission_refused(k, peer, lfd,
				  err == -EUSERS ? REFUSE_PER_SOURCE
						 : REFUSE_SOURCE_TABLE);
		return false;
	}
	*flags |= CONN_SOURCE;
	return true;
}

void admission_give_source(struct core *k, const union net_addr *peer)
{
	uint8_t key[16];

	access_source_key(peer, key);
	access_source_give(&k->w->shared->sources, key);
}
