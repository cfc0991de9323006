// SPDX-License-Identifier: BSD-2-Clause
/* unit-proxy.c - the PROXY protocol parser: headers, prefixes, refusals. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/proxy.h"
#include "tap.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* 192.0.2.1:56324 -> 198.51.100.2:443, as a v2 TCP4 address block. */
static const uint8_t addr4[12] = {192, 0, 2,	1,    198,  51,
				  100, 2, 0xdc, 0x04, 0x01, 0xbb};

static enum proxy_result parse(const char *s, struct proxy_header *h)
{
	return proxy_parse(s, strlen(s), h);
}

static const char *text(const union net_addr *a)
{
	static char buf[2][NET_ADDR_TEXT];
	static int i;

	i ^= 1;
	return net_addr_text(&a->sa, buf[i], sizeof(buf[i]));
}

/* A v2 header: version/command vc, family fam, then body[0, len). */
static size_t v2(uint8_t *b, uint8_t vc, uint8_t fam, const void *body,
		 size_t len)
{
	memcpy(b, sig, sizeof(sig));
	b[12] = vc;
	b[13] = fam;
	b[14] = (uint8_t)(len >> 8);
	b[15] = (uint8_t)len;
	if (len)
		memcpy(b + 16, body, len);
	return 16 + len;
}

/*
 * Every proper prefix of in[0, n) must be PROXY_MORE: a reader waiting
 * for the rest of a good header must never refuse it. Reports the first
 * that is not.
 */
static void prefixes_more(const void *in, size_t n, const char *what)
{
	struct proxy_header h;
	enum proxy_result r = PROXY_MORE;
	size_t i;

	for (i = 0; i < n && r == PROXY_MORE; i++)
		r = proxy_parse(in, i, &h);
	if (!ok(r == PROXY_MORE, "%s: each of its %zu prefixes: more", what, n))
		printf("#   prefix of %zu bytes: %s\n", i - 1,
		       proxy_result_name(r));
}

static void test_v1(void)
{
	const char *tcp4 = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
	const char *tcp6 = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
	const char *unknown = "PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n";
	struct proxy_header h;

	is_int(parse(tcp4, &h), PROXY_OK, "v1 TCP4: ok");
	ok(h.version == 1 && h.command == PROXY_CMD_PROXY && h.has_addr,
	   "... version 1, PROXY, addresses");
	ok(h.src.sa.sa_family == AF_INET && h.dst.sa.sa_family == AF_INET,
	   "... AF_INET, not v4-mapped");
	is_str(text(&h.src), "192.0.2.1:56324", "... source");
	is_str(text(&h.dst), "198.51.100.2:443", "... destination");
	is_int(h.length, strlen(tcp4), "... length through the LF");
	is_int(parse(tcp6, &h), PROXY_OK, "v1 TCP6: ok");
	ok(h.src.sa.sa_family == AF_INET6 && h.has_addr, "... AF_INET6");
	is_str(text(&h.src), "[2001:db8::1]:1", "... source");
	is_str(text(&h.dst), "[2001:db8::2]:65535", "... destination");
	is_int(parse("PROXY UNKNOWN\r\n", &h), PROXY_OK, "v1 UNKNOWN: ok");
	ok(!h.has_addr && h.command == PROXY_CMD_PROXY && h.length == 15,
	   "... no addresses, PROXY, 15 bytes");
	is_int(parse(unknown, &h), PROXY_OK, "v1 UNKNOWN with fields: ok");
	ok(!h.has_addr && h.length == strlen(unknown),
	   "... the fields ignored, all consumed");
	is_int(parse("PROXY TCP4 0.0.0.0 0.0.0.0 00000 0\r\n", &h), PROXY_OK,
	       "ports 0 and 00000: ok (leading zeros taken, as HAProxy)");
	prefixes_more(tcp4, strlen(tcp4), "v1 TCP4");
	prefixes_more(tcp6, strlen(tcp6), "v1 TCP6");
	prefixes_more(unknown, strlen(unknown), "v1 UNKNOWN");
}

static const struct {
	const char *in;
	enum proxy_result want;
	const char *why;
} v1_bad[] = {
	{"PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "two spaces"},
	{"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "two spaces between addresses"},
	{"PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "bad address"},
	{"PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "three-part address"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n", PROXY_MALFORMED,
	 "port 65536"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n", PROXY_MALFORMED, "port +1"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 000001 2\r\n", PROXY_MALFORMED,
	 "six-digit port"},
	{"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n", PROXY_MALFORMED,
	 "TCP4 with IPv6 addresses"},
	{"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "TCP6 with IPv4 addresses"},
	{"PROXY TCP4 ::", PROXY_MALFORMED,
	 "TCP4 with IPv6: refused at the ':', before the line ends"},
	{"PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n", PROXY_MALFORMED,
	 "lowercase tcp4"},
	{"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n", PROXY_NONE,
	 "lowercase proxy: no signature, the client's bytes"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 x\r\n", PROXY_MALFORMED,
	 "trailing garbage before CRLF"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n", PROXY_MALFORMED,
	 "trailing space before CRLF"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", PROXY_MALFORMED,
	 "a port missing"},
	{"PROXY TCP4\r\n", PROXY_MALFORMED, "TCP4 and nothing"},
	{"PROXY TCP5 ", PROXY_MALFORMED, "TCP5"},
	{"PROXY UNKNOWNX\r\n", PROXY_MALFORMED, "UNKNOWNX"},
	{"PROXY UNKNOWN\n", PROXY_MALFORMED, "a bare LF"},
	{"PROXY UNKNOWN\rx", PROXY_MALFORMED, "a CR without LF"},
	{"PROXY UNKNOWN a\rb\r\n", PROXY_MALFORMED,
	 "a CR inside UNKNOWN's fields"},
	{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", PROXY_MALFORMED,
	 "TCP4 ended by a bare LF"},
};

static void test_v1_bad(void)
{
	struct proxy_header h;
	char line[PROXY_V1_MAX + 2];

	for (size_t i = 0; i < sizeof(v1_bad) / sizeof(v1_bad[0]); i++)
		is_int(parse(v1_bad[i].in, &h), v1_bad[i].want, "v1 %s: %s",
		       v1_bad[i].why, proxy_result_name(v1_bad[i].want));
	/* "PROXY UNKNOWN " and x's: the longest line, then one more byte. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	is_int(proxy_parse(line, PROXY_V1_MAX - 1, &h), PROXY_MORE,
	       "v1 106 bytes without CRLF: more");
	is_int(proxy_parse(line, PROXY_V1_MAX, &h), PROXY_MALFORMED,
	       "v1 107 bytes without CRLF: malformed");
	memcpy(line + PROXY_V1_MAX - 2, "\r\n", 2);
	is_int(proxy_parse(line, PROXY_V1_MAX, &h), PROXY_OK,
	       "v1 line of 107 bytes, CRLF included: ok");
	is_int(h.length, PROXY_V1_MAX, "... all 107 consumed");
	memset(line + PROXY_V1_MAX - 2, 'x', 2);
	memcpy(line + PROXY_V1_MAX - 1, "\r\n", 2);
	is_int(proxy_parse(line, PROXY_V1_MAX + 1, &h), PROXY_MALFORMED,
	       "v1 line of 108 bytes: malformed");
}

static void test_v2_tcp(void)
{
	static const uint8_t addr6[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1,
					  0x20, 0x01, 0x0d, 0xb8, [31] = 2,
					  0xdc, 0x04, 0x01, 0xbb};
	/* ALPN "h2", a NOOP of 0 bytes, AUTHORITY "example.org". */
	static const uint8_t tlvs[] = {0x01, 0,	  2,   'h', '2', 0x04, 0,   0,
				       0x02, 0,	  11,  'e', 'x', 'a',  'm', 'p',
				       'l',  'e', '.', 'o', 'r', 'g'};
	uint8_t b[PROXY_MAX + 16], body[64];
	struct proxy_header h;
	size_t n;

	n = v2(b, 0x21, 0x11, addr4, 12);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 PROXY TCP4: ok");
	ok(h.version == 2 && h.command == PROXY_CMD_PROXY && h.has_addr &&
		   h.src.sa.sa_family == AF_INET,
	   "... version 2, PROXY, AF_INET addresses");
	is_str(text(&h.src), "192.0.2.1:56324", "... source");
	is_str(text(&h.dst), "198.51.100.2:443", "... destination");
	is_int(h.length, 28, "... length 16 + 12");
	prefixes_more(b, n, "v2 TCP4");
	memcpy(body, addr4, 12);
	memcpy(body + 12, tlvs, sizeof(tlvs));
	n = v2(b, 0x21, 0x11, body, 12 + sizeof(tlvs));
	memcpy(b + n, "hello", 5);
	is_int(proxy_parse(b, n + 5, &h), PROXY_OK,
	       "v2 TCP4 with TLVs, then the client's bytes: ok");
	is_int(h.length, n, "... length is the header's, not the bytes after");
	is_str(text(&h.src), "192.0.2.1:56324", "... source");
	prefixes_more(b, n, "v2 TCP4 with TLVs");
	n = v2(b, 0x21, 0x21, addr6, 36);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 PROXY TCP6: ok");
	ok(h.has_addr && h.src.sa.sa_family == AF_INET6, "... AF_INET6");
	is_str(text(&h.src), "[2001:db8::1]:56324", "... source");
	is_str(text(&h.dst), "[2001:db8::2]:443", "... destination");
	memcpy(body, addr6, 36);
	memcpy(body + 36, tlvs, 5);
	n = v2(b, 0x21, 0x21, body, 36 + 5);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 TCP6 with a TLV: ok");
	is_int(h.length, 16 + 36 + 5, "... length");
	prefixes_more(b, n, "v2 TCP6 with a TLV");
}

static void test_v2_other(void)
{
	static const uint8_t unix_block[216] = {'/', 'a', [108] = '/', 'b'};
	uint8_t b[PROXY_MAX + 16];
	struct proxy_header h;
	size_t n;

	n = v2(b, 0x20, 0x11, addr4, 12);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 LOCAL: ok");
	ok(h.command == PROXY_CMD_LOCAL && !h.has_addr && h.length == n,
	   "... LOCAL, its addresses ignored, all consumed");
	n = v2(b, 0x20, 0x00, NULL, 0);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 LOCAL UNSPEC, 16 bytes");
	prefixes_more(b, n, "v2 LOCAL");
	n = v2(b, 0x21, 0x00, NULL, 0);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 PROXY UNSPEC: ok");
	ok(!h.has_addr && h.command == PROXY_CMD_PROXY, "... no addresses");
	n = v2(b, 0x21, 0x31, unix_block, sizeof(unix_block));
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 UNIX stream: ok");
	ok(!h.has_addr && h.length == 16 + 216, "... no addresses, 232 bytes");
	n = v2(b, 0x21, 0x12, addr4, 12);
	is_int(proxy_parse(b, n, &h), PROXY_OK, "v2 UDP over IPv4: ok");
	ok(!h.has_addr, "... no addresses: echod serves TCP");
}

static void test_v2_bad(void)
{
	static const uint8_t overrun[15] = {
		[12] = 0x04,
		0,
		5,
	};
	uint8_t b[PROXY_MAX + 16];
	struct proxy_header h;
	size_t n;

	n = v2(b, 0x21, 0x11, overrun, sizeof(overrun));
	is_int(proxy_parse(b, n, &h), PROXY_MALFORMED,
	       "v2 a TLV past the length: malformed");
	n = v2(b, 0x21, 0x11, overrun, 14);
	is_int(proxy_parse(b, n, &h), PROXY_MALFORMED,
	       "v2 a TLV head cut by the length: malformed");
	n = v2(b, 0x21, 0x11, addr4, 8);
	is_int(proxy_parse(b, n, &h), PROXY_MALFORMED,
	       "v2 TCP4 block of 12 in a length of 8: malformed");
	is_int(proxy_parse(b, 16, &h), PROXY_MALFORMED,
	       "... refused once the length is in");
	n = v2(b, 0x11, 0x11, addr4, 12);
	is_int(proxy_parse(b, 13, &h), PROXY_MALFORMED,
	       "v2 version 1: malformed at byte 13");
	n = v2(b, 0x22, 0x11, addr4, 12);
	is_int(proxy_parse(b, n, &h), PROXY_MALFORMED,
	       "v2 command 2: malformed");
	n = v2(b, 0x21, 0x13, addr4, 12);
	is_int(proxy_parse(b, 14, &h), PROXY_MALFORMED,
	       "v2 family 0x13: malformed at byte 14");
	v2(b, 0x21, 0x11, NULL, 0);
	b[14] = (PROXY_MAX - 16 + 1) >> 8;
	b[15] = (uint8_t)(PROXY_MAX - 16 + 1);
	is_int(proxy_parse(b, 16, &h), PROXY_OVERSIZED,
	       "v2 16 + length = PROXY_MAX + 1: oversized after 16 bytes");
	/* UNSPEC and one NOOP TLV filling the rest: exactly PROXY_MAX. */
	memset(b + 16, 0, PROXY_MAX - 16);
	b[16] = 0x04;
	b[17] = (PROXY_MAX - 19) >> 8;
	b[18] = (uint8_t)(PROXY_MAX - 19);
	b[13] = 0x00;
	b[14] = (PROXY_MAX - 16) >> 8;
	b[15] = (uint8_t)(PROXY_MAX - 16);
	is_int(proxy_parse(b, PROXY_MAX, &h), PROXY_OK,
	       "v2 of exactly PROXY_MAX bytes: ok");
	is_int(proxy_parse(b, PROXY_MAX - 1, &h), PROXY_MORE,
	       "... one byte short: more");
}

static void test_none(void)
{
	static const struct {
		const char *in, *what;
	} none[] = {
		{"GET / HTTP/1.1\r\n", "an HTTP request"},
		{"hello", "\"hello\""},
		{"PX", "\"PX\""},
		{"PROXY\r\n", "\"PROXY\" without its space"},
		{"\r\n\r\nX", "CRLF CRLF X"},
		{"\r\n\r\n\n", "CRLF CRLF LF"},
	};
	struct proxy_header h;
	uint8_t zero = 0;

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		is_int(parse(none[i].in, &h), PROXY_NONE, "%s: none",
		       none[i].what);
	is_int(proxy_parse(&zero, 1, &h), PROXY_NONE, "a 0 byte: none");
	is_int(proxy_parse(NULL, 0, &h), PROXY_MORE, "no bytes yet: more");
	is_int(parse("PR", &h), PROXY_MORE, "\"PR\": more");
	is_int(parse("\r\n", &h), PROXY_MORE, "CRLF: more (v2's start)");
	is_int(proxy_parse(sig, 12, &h), PROXY_MORE,
	       "v2 signature alone: more");
}

static void test_names(void)
{
	is_str(proxy_result_name(PROXY_OK), "ok", "name of PROXY_OK");
	is_str(proxy_result_name(PROXY_MORE), "more", "name of PROXY_MORE");
	is_str(proxy_result_name(PROXY_NONE), "none", "name of PROXY_NONE");
	is_str(proxy_result_name(PROXY_MALFORMED), "malformed",
	       "name of PROXY_MALFORMED");
	is_str(proxy_result_name(PROXY_OVERSIZED), "oversized",
	       "name of PROXY_OVERSIZED");
}

int main(void)
{
	test_v1();
	test_v1_bad();
	test_v2_tcp();
	test_v2_other();
	test_v2_bad();
	test_none();
	test_names();
	return done_testing();
}
