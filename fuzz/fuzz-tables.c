// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-tables.c - the two tables keyed by client addresses: the
 * --max-per-source table (access.c) and a worker's UDP rate table
 * (udp.c), under takes, gives and datagrams from arbitrary addresses.
 *
 * Input: byte 0 sets --udp-rate (1-16) and --udp-byte-rate (bit 7: 1000,
 * else off); then 6-byte operations: op, four address bytes, an argument.
 * op bit 7 makes the address IPv6 (2001:db8:AABB:CCDD::arg, so that
 * sources of one /64 differ in their host part), else IPv4 A.B.C.D; op
 * % 5 picks: take a place (max 1-4), give one back, a datagram of arg*8
 * bytes, arg*32 datagrams from as many new sources (the first two such
 * operations), or time passing.
 *
 * The properties: a take succeeds exactly while the source holds fewer
 * than max (the table is never full), the count matches a model after
 * every take and give, a source is gone after its last give, and the
 * table is at most half full with every entry reached from its hash; a
 * datagram's source has an entry after it while the rate table had room,
 * one with an entry keeps it, and the rate table holds at most
 * UDP_SOURCES entries, each reached from its hash.
 */
#include <errno.h>
#include <string.h>

#include "../src/access.h"
#include "../src/options.h"
#include "../src/udp.h"
#include "fuzz.h"

enum {
	MODEL = 1024
};

struct model {
	uint8_t key[MODEL][16];
	unsigned int count[MODEL];
	int n;
};

static unsigned int *model_count(struct model *m, const uint8_t key[16])
{
	for (int i = 0; i < m->n; i++)
		if (memcmp(m->key[i], key, 16) == 0)
			return &m->count[i];
	if (m->n == MODEL)
		return NULL;
	memcpy(m->key[m->n], key, 16);
	m->count[m->n] = 0;
	return &m->count[m->n++];
}

static union net_addr address(const uint8_t *p)
{
	union net_addr a;

	memset(&a, 0, sizeof(a));
	if (p[0] & 0x80) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr.s6_addr[0] = 0x20;
		a.in6.sin6_addr.s6_addr[1] = 0x01;
		a.in6.sin6_addr.s6_addr[2] = 0x0d;
		a.in6.sin6_addr.s6_addr[3] = 0xb8;
		memcpy(&a.in6.sin6_addr.s6_addr[4], p + 1, 4);
		a.in6.sin6_addr.s6_addr[15] = p[5];
	} else {
		a.in.sin_family = AF_INET;
		memcpy(&a.in.sin_addr, p + 1, 4);
	}
	net_set_port(&a, 4000);
	return a;
}

static void take_give(struct access_sources *t, struct model *m,
		      const uint8_t *p, bool take)
{
	union net_addr a = address(p);
	unsigned int *c, max = 1 + p[5] % 4;
	uint8_t key[16];
	int err;

	access_source_key(&a, key);
	c = model_count(m, key);
	if (c == NULL)
		return;
	if (take) {
		err = access_source_take(t, key, max);
		fuzz_check(err == (*c < max ? 0 : -EUSERS));
		*c += err == 0;
	} else if (*c) {
		access_source_give(t, key);
		(*c)--;
	}
	fuzz_check(access_source_count(t, key) == *c);
	fuzz_check(access_sources_valid(t));
}

static void datagram(struct udp_worker *u, const union net_addr *a, size_t n,
		     uint64_t now_ms)
{
	bool had = udp_source_has(u, a), room = u->nsources < UDP_SOURCES;

	udp_rate_allow(u, a, n, now_ms);
	if (had || room)
		fuzz_check(udp_source_has(u, a));
	fuzz_check(u->nsources <= UDP_SOURCES);
}

/* arg*32 datagrams from new sources 10.A.x.y, B and C picking x's start. */
static void flood(struct udp_worker *u, const uint8_t *p, uint64_t now_ms)
{
	union net_addr a;

	memset(&a, 0, sizeof(a));
	a.in.sin_family = AF_INET;
	for (unsigned int i = 0; i < p[5] * 32u; i++) {
		uint8_t ip[4] = {10, p[1], (uint8_t)(p[2] + (i >> 8)),
				 (uint8_t)i};

		memcpy(&a.in.sin_addr, ip, 4);
		udp_rate_allow(u, &a, 1, now_ms);
	}
	fuzz_check(u->nsources <= UDP_SOURCES && udp_sources_valid(u));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct access_sources t = {.lock = PTHREAD_MUTEX_INITIALIZER};
	static struct model m;
	static struct options o;
	struct udp_worker u;
	uint64_t now_ms = 1000;
	union net_addr a;
	int floods = 0;

	if (size < 1)
		return 0;
	memset(&o, 0, sizeof(o));
	o.udp_rate = 1 + data[0] % 16;
	o.udp_byte_rate = data[0] & 0x80 ? 1000 : 0;
	if (udp_init(&u, &o, 60000) < 0)
		return 0;
	m.n = 0;
	for (size_t i = 1; i + 6 <= size; i += 6) {
		const uint8_t *p = data + i;

		switch (p[0] % 5) {
		case 0:
		case 1:
			take_give(&t, &m, p, p[0] % 5 == 0);
			break;
		case 2:
			a = address(p);
			datagram(&u, &a, (size_t)p[5] * 8, now_ms);
			break;
		case 3:
			/* Two are enough to fill the table, and cost enough. */
			if (floods++ < 2)
				flood(&u, p, now_ms);
			break;
		default:
			now_ms += (uint64_t)p[5] * 16;
		}
	}
	fuzz_check(udp_sources_valid(&u));
	udp_destroy(&u);
	/* Every place given back: the table is empty again. */
	for (int i = 0; i < m.n; i++)
		while (m.count[i]--)
			access_source_give(&t, m.key[i]);
	fuzz_check(t.used == 0 && access_sources_valid(&t));
	access_sources_clear(&t);
	return 0;
}
