// SPDX-License-Identifier: BSD-2-Clause
/* unit-access.c - CIDR rules (deny wins, allow restricts) and the
 * per-source table: never full while entries are at most what it holds,
 * found after a take, gone after the last give. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../src/access.h"
#include "tap.h"

static union net_addr addr(const char *ip)
{
	union net_addr a;

	net_parse_addr(ip, 1234, &a);
	return a;
}

static bool allowed(const struct access_rules *r, const char *ip)
{
	union net_addr a = addr(ip);

	return access_allowed(r, &a);
}

static void test_rules(void)
{
	struct access_rules r;

	memset(&r, 0, sizeof(r));
	ok(allowed(&r, "192.0.2.1"), "no rules: served");
	is_int(access_add(&r, "192.0.2.0/33", false), -EINVAL, "/33: invalid");
	is_int(access_add(&r, "2001:db8::/129", false), -EINVAL,
	       "/129: invalid");
	is_int(access_add(&r, "example.org", true), -EINVAL, "a name: invalid");
	is_int(access_add(&r, "10.1.0.0/15", true), 0, "deny 10.1.0.0/15");
	ok(!allowed(&r, "10.0.255.255"),
	   "deny /15 covers 10.0.x (bits past the prefix ignored)");
	ok(!allowed(&r, "10.1.2.3"), "... and 10.1.x");
	ok(allowed(&r, "10.2.0.0"),
	   "... not 10.2.x; only denies: the rest served");
	ok(!allowed(&r, "::ffff:10.1.2.3"),
	   "an IPv4-mapped peer matches the IPv4 rule");
	is_int(access_add(&r, "10.0.0.0/8", false), 0, "allow 10.0.0.0/8");
	ok(!allowed(&r, "10.1.2.3"), "deny wins over allow");
	ok(allowed(&r, "10.200.0.1"), "allowed network served");
	ok(!allowed(&r, "192.0.2.1"), "with an allow, the rest refused");
	ok(!allowed(&r, "::1"), "... IPv6 too");
	is_int(access_add(&r, "2001:db8::/32", false), 0,
	       "allow 2001:db8::/32");
	ok(allowed(&r, "2001:db8:ffff::1"), "IPv6 network served");
	ok(!allowed(&r, "2001:db9::1"), "... its neighbour refused");
	is_int(access_add(&r, "::1", false), 0, "allow ::1 (a host)");
	ok(allowed(&r, "::1") && !allowed(&r, "::2"), "a host rule is /128");
	is_int(access_add(&r, "0.0.0.0/0", false), 0, "allow 0.0.0.0/0");
	ok(allowed(&r, "198.51.100.7") && !allowed(&r, "2001:db9::1"),
	   "0.0.0.0/0 is every IPv4 peer, no IPv6 one");
	for (int i = r.n; i < ACCESS_MAX_RULES; i++)
		access_add(&r, "192.0.2.1", true);
	is_int(access_add(&r, "192.0.2.2", true), -ENOSPC, "rule %d: too many",
	       ACCESS_MAX_RULES + 1);
}

static void key_of(int i, uint8_t k[16])
{
	char ip[64];
	union net_addr a;

	snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 12, i & 0xfff);
	a = addr(ip);
	access_source_key(&a, k);
}

/*
 * As many sources as there could be connections: every one is taken,
 * the table grows to stay at most half full, and shrinks back once they
 * are given back.
 */
static void test_many(struct access_sources *t)
{
	int refused = 0, counted = 0, n = 20000;
	uint8_t k[16];

	for (int i = 0; i < n; i++) {
		key_of(i, k);
		refused += access_source_take(t, k, 1) != 0;
	}
	is_int(refused, 0, "%d sources, one place each: none refused", n);
	ok(access_sources_valid(t), "... the table keeps its invariants");
	ok(t->used == (unsigned int)n && 2 * t->used <= t->slots,
	   "... %u entries in %u slots", t->used, t->slots);
	for (int i = 0; i < n; i++) {
		key_of(i, k);
		counted += access_source_count(t, k) == 1;
	}
	is_int(counted, n, "... each found with its one place");
	for (int i = 0; i < n; i += 2) {
		key_of(i, k);
		access_source_give(t, k);
	}
	ok(access_sources_valid(t), "half given back: invariants kept");
	counted = 0;
	for (int i = 0; i < n; i++) {
		key_of(i, k);
		counted += access_source_count(t, k) == (unsigned int)(i & 1);
	}
	is_int(counted, n, "... the given ones gone, the rest still there");
	for (int i = 1; i < n; i += 2) {
		key_of(i, k);
		access_source_give(t, k);
	}
	ok(t->used == 0 && t->slots == ACCESS_MIN_SLOTS,
	   "all given back: empty, and back to %u slots (%u)", ACCESS_MIN_SLOTS,
	   t->slots);
}

/*
 * Random takes and gives against a model: counts match, never refused
 * while under the limit, and the probe invariant holds throughout.
 */
static void test_churn(struct access_sources *t)
{
	unsigned int model[512] = {0}, seed = 12345;
	int wrong = 0, invalid = 0;
	uint8_t k[16];

	for (int step = 0; step < 200000; step++) {
		int i;

		seed = seed * 1103515245u + 12345u;
		i = (int)(seed >> 8) % 512;
		key_of(i * 4099, k);
		if ((seed >> 20) & 1) {
			int err = access_source_take(t, k, 3);

			wrong += err != (model[i] < 3 ? 0 : -EUSERS);
			model[i] += err == 0;
		} else if (model[i]) {
			access_source_give(t, k);
			model[i]--;
		}
		wrong += access_source_count(t, k) != model[i];
		if (step % 4096 == 0)
			invalid += !access_sources_valid(t);
	}
	is_int(wrong, 0, "200000 random takes and gives: the model's counts");
	is_int(invalid, 0, "... and the invariants at every check");
}

static void test_sources(void)
{
	static struct access_sources t;
	union net_addr a = addr("2001:db8:1:2:aaaa::1"), b;
	uint8_t k[16], k2[16];

	pthread_mutex_init(&t.lock, NULL);
	b = addr("2001:db8:1:2:bbbb::9");
	access_source_key(&a, k);
	access_source_key(&b, k2);
	ok(memcmp(k, k2, 16) == 0, "one /64, one source");
	b = addr("2001:db8:1:3::1");
	access_source_key(&b, k2);
	ok(memcmp(k, k2, 16) != 0, "another /64, another source");
	a = addr("192.0.2.1");
	b = addr("::ffff:192.0.2.1");
	access_source_key(&a, k);
	access_source_key(&b, k2);
	ok(memcmp(k, k2, 16) == 0, "IPv4 and IPv4-mapped: one source");
	b = addr("192.0.2.2");
	access_source_key(&b, k2);
	ok(memcmp(k, k2, 16) != 0, "IPv4 sources are whole addresses");
	is_int(access_source_take(&t, k, 2), 0, "1st place");
	is_int(access_source_take(&t, k, 2), 0, "2nd place");
	is_int(access_source_take(&t, k, 2), -EUSERS, "3rd: over the limit");
	is_int(access_source_take(&t, k2, 2), 0, "another source meanwhile");
	access_source_give(&t, k);
	is_int(access_source_take(&t, k, 2), 0, "a place given back is taken");
	access_source_give(&t, k);
	access_source_give(&t, k);
	access_source_give(&t, k2);
	is_int((int)t.used, 0, "every place given back: no entry left");
	test_many(&t);
	test_churn(&t);
	access_sources_clear(&t);
}

int main(void)
{
	test_rules();
	test_sources();
	return done_testing();
}
