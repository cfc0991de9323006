/* unit-udp.c - the UDP source checks and per-source token buckets. */
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

int main(void)
{
	struct options o;
	char err[256];
	char *argv[] = {(char *)"echod", NULL};

	options_parse(&o, 1, argv, err, sizeof(err));
	test_sources(&o);
	test_rate(&o);
	return done_testing();
}
