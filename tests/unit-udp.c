// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-udp.c - the UDP source checks and per-source token buckets: per
 * IPv4 address or IPv6 /64, and never reset by other sources.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../src/options.h"
#include "../src/udp.h"
#include "tap.h"

static union net_addr addr(const char *ip, unsigned int port)
{
	union net_addr a;

	net_parse_addr(ip, port, &a);
	return a;
}

/* The broadcasts echod can tell without netmasks, plain and v4-mapped. */
static void test_broadcasts(const struct options *o)
{
	static const char *const drop[] = {
		"127.255.255.255", "::ffff:127.255.255.255",
		"255.255.255.255", "::ffff:255.255.255.255",
		"0.1.2.3",	   "::ffff:0.0.0.0",
		"239.255.255.250",
	};
	static const char *const echo[] = {
		"127.255.255.254",   "127.0.0.255",	"127.255.0.255",
		"::ffff:127.0.0.1",  "126.255.255.255", "10.255.255.255",
		"::127.255.255.255",
	};
	union net_addr a;

	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		a = addr(drop[i], 5000);
		ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE,
		   "%s is not unicast", drop[i]);
	}
	for (size_t i = 0; i < sizeof(echo) / sizeof(echo[0]); i++) {
		a = addr(echo[i], 5000);
		ok(udp_check_source(o, 60000, &a) == UDP_ECHO, "%s is unicast",
		   echo[i]);
	}
}

static void test_sources(const struct options *o)
{
	union net_addr a;

	a = addr("192.0.2.1", 40000);
	ok(udp_check_source(o, 60000, &a) == UDP_ECHO, "ordinary source");
	a = addr("127.0.0.1", 40000);
	ok(udp_check_source(o, 60000, &a) == UDP_ECHO, "loopback allowed");
	for (unsigned int p = 0; p < 40; p++) {
		a = addr("192.0.2.1", p);
		if (p == 0 || p == 7 || p == 9 || p == 13 || p == 17 ||
		    p == 19 || p == 37)
			ok(udp_check_source(o, 60000, &a) == UDP_DROP_PORT,
			   "source port %u refused", p);
	}
	a = addr("192.0.2.1", 60000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_PORT,
	   "our own port refused");
	a = addr("255.255.255.255", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE, "broadcast");
	a = addr("224.0.0.1", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE, "multicast");
	a = addr("0.0.0.0", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE, "unspecified");
	a = addr("ff02::1", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE, "v6 multicast");
	a = addr("::ffff:224.0.0.9", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_DROP_SOURCE,
	   "v4-mapped multicast");
	a = addr("::1", 5000);
	ok(udp_check_source(o, 60000, &a) == UDP_ECHO, "v6 loopback");
	test_broadcasts(o);
}

static void test_rate(struct options *o)
{
	struct udp_worker u;
	union net_addr a = addr("192.0.2.7", 4000), b;
	int passed = 0;
	char ip[32];

	o->udp_rate = 10;
	o->udp_byte_rate = 0;
	udp_init(&u, o, 60000);
	for (int i = 0; i < 30; i++)
		passed += udp_rate_allow(&u, &a, 100, 1000);
	is_int(passed, 10, "a burst gets one second's budget");
	ok(!udp_rate_allow(&u, &a, 100, 1050), "50 ms later: still empty");
	ok(udp_rate_allow(&u, &a, 100, 1150), "a tenth of a second: one more");
	b = addr("192.0.2.8", 4000);
	ok(udp_rate_allow(&u, &b, 100, 1150), "another source has its own");
	/* Many forged sources: the table stays its size; old ones recycle. */
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255,
			 i >> 8 & 255, i & 255);
		b = addr(ip, 4000);
		udp_rate_allow(&u, &b, 100, 2000 + (uint64_t)i);
	}
	b = addr("192.0.2.99", 4000);
	passed = 0;
	for (int i = 0; i < 30; i++)
		passed += udp_rate_allow(&u, &b, 100, 200000);
	is_int(passed, 10,
	       "after 100000 forged sources a new one still gets its budget");
	o->udp_rate = 0;
	o->udp_byte_rate = 1000;
	udp_destroy(&u);
	udp_init(&u, o, 60000);
	ok(udp_rate_allow(&u, &a, 600, 5000), "bytes: 600 of 1000 pass");
	ok(!udp_rate_allow(&u, &a, 600, 5000), "bytes: 600 more do not");
	udp_destroy(&u);
}

/* Sources 10.x.y.z by number, or 2001:db8:i::1 (a /64 each) when v6. */
static union net_addr nth(int i, bool v6)
{
	char ip[48];

	if (v6)
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16,
			 i & 0xffff);
	else
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255,
			 i >> 8 & 255, i & 255);
	return addr(ip, 4000);
}

static int passes(struct udp_worker *u, const union net_addr *a, int n,
		  uint64_t now_ms)
{
	int passed = 0;

	for (int i = 0; i < n; i++)
		passed += udp_rate_allow(u, a, 100, now_ms);
	return passed;
}

/* IPv6 sources are grouped by /64, as --max-per-source groups them. */
static void test_group(struct options *o)
{
	struct udp_worker u;
	union net_addr a = addr("2001:db8:1:2::1", 4000);
	union net_addr b = addr("2001:db8:1:2:ffff::9", 4001);
	union net_addr c = addr("2001:db8:1:3::1", 4000);

	o->udp_rate = 10;
	o->udp_byte_rate = 0;
	udp_init(&u, o, 60000);
	is_int(passes(&u, &a, 10, 1000), 10, "2001:db8:1:2::1: its budget");
	is_int(passes(&u, &b, 10, 1000), 0,
	       "2001:db8:1:2:ffff::9, the same /64: nothing left");
	is_int(passes(&u, &c, 10, 1000), 10,
	       "2001:db8:1:3::1, another /64: a budget of its own");
	a = addr("::ffff:192.0.2.1", 4000);
	b = addr("192.0.2.1", 4000);
	is_int(passes(&u, &a, 10, 1000), 10, "::ffff:192.0.2.1: its budget");
	is_int(passes(&u, &b, 10, 1000), 0, "192.0.2.1 is the same source");
	udp_destroy(&u);
}

/*
 * A full table: a source with an entry keeps its bucket whatever others
 * send; a source without one shares the overflow bucket; an entry goes
 * only once idle a second, and the invariants hold throughout.
 */
static void test_pressure(struct options *o, bool v6)
{
	union net_addr victim = nth(0x7fffff, v6), x, y;
	struct udp_worker u;
	int kept = 0;

	o->udp_rate = 10;
	o->udp_byte_rate = 0;
	udp_init(&u, o, 60000);
	is_int(passes(&u, &victim, 20, 1000), 10, "%s victim: its budget",
	       v6 ? "IPv6 /64s:" : "IPv4:");
	for (int i = 0; i < 3 * UDP_SOURCES; i++) {
		x = nth(i, v6);
		udp_rate_allow(&u, &x, 100, 1000 + (uint64_t)i / 64);
	}
	ok(u.nsources == UDP_SOURCES && udp_sources_valid(&u),
	   "%d more sources: the table full (%u), invariants kept",
	   3 * UDP_SOURCES, u.nsources);
	ok(udp_source_has(&u, &victim), "... the victim keeps its entry");
	is_int(passes(&u, &victim, 20, 1500), 5,
	       "... and its bucket: half a second later, 5 (not a reset 10)");
	for (int i = 0; i < UDP_SOURCES; i++) {
		x = nth(i, v6);
		kept += udp_source_has(&u, &x);
	}
	ok(kept >= UDP_SOURCES - 1, "the first sources keep theirs (%d)", kept);
	x = nth(9 * UDP_SOURCES, v6);
	y = nth(9 * UDP_SOURCES + 1, v6);
	/* The 8192 past the table drained the overflow bucket; 3 since. */
	is_int(passes(&u, &x, 20, 1500), 3,
	       "a source without an entry: the shared bucket's 3");
	is_int(passes(&u, &y, 20, 1500), 0, "... another: nothing left");
	ok(!udp_source_has(&u, &x), "... neither gets an entry");
	is_int(passes(&u, &victim, 20, 2000), 5, "victim, at 2 s: 5 more");
	is_int(passes(&u, &x, 20, 2600), 10,
	       "a second on, idle entries go: a new source gets one");
	ok(udp_source_has(&u, &x) && udp_sources_valid(&u),
	   "... an entry of its own; invariants kept (%u entries)", u.nsources);
	ok(udp_source_has(&u, &victim), "the victim, active, still has its");
	udp_destroy(&u);
}

int main(void)
{
	struct options o;
	char err[256];
	char *argv[] = {(char *)"echod", NULL};

	options_parse(&o, 1, argv, err, sizeof(err));
	test_sources(&o);
	test_rate(&o);
	test_group(&o);
	test_pressure(&o, false);
	test_pressure(&o, true);
	return done_testing();
}
