/* unit-access.c - CIDR rules (deny wins, allow restricts) and the bounded
 * per-source table. */
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

static void test_sources(void)
{
	static struct access_sources t;
	union net_addr a = addr("2001:db8:1:2:aaaa::1"), b;
	uint8_t k[16], k2[16];
	char ip[64];
	int full = 0;

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
	/* Far more sources than entries: the table never grows. */
	for (int i = 0; i < 3 * ACCESS_SOURCES; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 12,
			 i & 0xfff);
		a = addr(ip);
		access_source_key(&a, k);
		full += access_source_take(&t, k, 1) == -ENOSPC;
	}
	ok(full >= 2 * ACCESS_SOURCES - 2,
	   "3x more sources than entries: the rest refused (%d), not stored",
	   full);
}

int main(void)
{
	test_rules();
	test_sources();
	return done_testing();
}
