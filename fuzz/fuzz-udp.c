// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-udp.c - udp_check_source, the verdict on a datagram's source.
 *
 * Input: byte 0 holds switches (IPv6, --udp-allow-nonunicast, deny our
 * own port), bytes 1-2 the source port, 3-4 our port, then 16 address
 * bytes, then any bytes toggle source ports in the deny list. The
 * properties: only ECHO, DROP_PORT or DROP_SOURCE; a refused port always
 * wins; multicast, unspecified and the limited broadcast are never
 * answered unless allowed; an IPv4-mapped IPv6 source gets its IPv4
 * address's verdict.
 */
#include <string.h>

#include "../src/options.h"
#include "../src/udp.h"
#include "fuzz.h"

static int never_answered(const union net_addr *a)
{
	uint32_t ip;

	if (a->sa.sa_family == AF_INET) {
		ip = ntohl(a->in.sin_addr.s_addr);
		return ip == 0 || ip == 0xffffffffu || (ip >> 28) == 0xe;
	}
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr) ||
	       IN6_IS_ADDR_MULTICAST(&a->in6.sin6_addr);
}

static void to_mapped(const union net_addr *v4, union net_addr *v6)
{
	memset(v6, 0, sizeof(*v6));
	v6->in6.sin6_family = AF_INET6;
	v6->in6.sin6_port = v4->in.sin_port;
	v6->in6.sin6_addr.s6_addr[10] = 0xff;
	v6->in6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&v6->in6.sin6_addr.s6_addr[12], &v4->in.sin_addr, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct options o;
	unsigned int port, own;
	union net_addr a, m;
	enum udp_verdict v;
	bool refused;

	if (size < 21)
		return 0;
	memset(&o, 0, sizeof(o));
	o.udp_allow_nonunicast = data[0] & 2;
	o.udp_deny_own = data[0] & 4;
	for (size_t i = 21; i + 1 < size; i += 2) {
		unsigned int p = (unsigned int)data[i] << 8 | data[i + 1];

		o.udp_deny[p >> 3] |= (uint8_t)(1u << (p & 7));
	}
	port = (unsigned int)data[1] << 8 | data[2];
	own = (unsigned int)data[3] << 8 | data[4];
	memset(&a, 0, sizeof(a));
	if (data[0] & 1) {
		a.in6.sin6_family = AF_INET6;
		memcpy(&a.in6.sin6_addr, data + 5, 16);
	} else {
		a.in.sin_family = AF_INET;
		memcpy(&a.in.sin_addr, data + 5, 4);
	}
	net_set_port(&a, port);
	v = udp_check_source(&o, own, &a);
	fuzz_check(v == UDP_ECHO || v == UDP_DROP_PORT || v == UDP_DROP_SOURCE);
	refused =
		options_udp_denied(&o, port) || (o.udp_deny_own && port == own);
	fuzz_check((v == UDP_DROP_PORT) == refused);
	if (!refused && !o.udp_allow_nonunicast && never_answered(&a))
		fuzz_check(v == UDP_DROP_SOURCE);
	if (o.udp_allow_nonunicast)
		fuzz_check(v != UDP_DROP_SOURCE);
	if (a.sa.sa_family == AF_INET) {
		to_mapped(&a, &m);
		fuzz_check(udp_check_source(&o, own, &m) == v);
	}
	return 0;
}
