// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-addr.c - net_parse_addr and net_addr_text: bytes 0-1 are the
 * port, the rest the text. A literal is accepted exactly when
 * inet_pton(3) takes it (bare, or an IPv6 one in brackets), its text
 * form parses back to the same address (an IPv4-mapped one to its IPv4
 * address, as echod logs such peers), and the port survives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "../src/net.h"
#include "fuzz.h"

/* Whether libc's own parser takes text, as echod documents -b. */
static int libc_takes(const char *text)
{
	unsigned char buf[16];
	char inner[256];
	size_t len = strlen(text);

	if (inet_pton(AF_INET, text, buf) == 1 ||
	    inet_pton(AF_INET6, text, buf) == 1)
		return 1;
	if (len < 2 || len - 2 >= sizeof(inner) || text[0] != '[' ||
	    text[len - 1] != ']')
		return 0;
	memcpy(inner, text + 1, len - 2);
	inner[len - 2] = '\0';
	return inet_pton(AF_INET6, inner, buf) == 1;
}

/* net_addr_text's "host:port" or "[host]:port", back to a bare host. */
static void host_of(char *text)
{
	char *colon = strrchr(text, ':');

	fuzz_check(colon != NULL);
	*colon = '\0';
	if (text[0] == '[') {
		fuzz_check(colon[-1] == ']');
		colon[-1] = '\0';
		memmove(text, text + 1, strlen(text + 1) + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256], shown[NET_ADDR_TEXT];
	union net_addr a, b;
	unsigned int port;
	int r;

	if (size < 2 || size - 2 >= sizeof(text))
		return 0;
	port = (unsigned int)data[0] << 8 | data[1];
	memcpy(text, data + 2, size - 2);
	text[size - 2] = '\0';
	memset(&a, 0xa5, sizeof(a));
	r = net_parse_addr(text, port, &a);
	fuzz_check(r == 0 || r == -EINVAL);
	fuzz_check((r == 0) == libc_takes(text));
	if (r < 0)
		return 0;
	fuzz_check(a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6);
	fuzz_check(net_addr_port(&a) == port);
	fuzz_check(net_addr_len(&a) == (a.sa.sa_family == AF_INET
						? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6)));
	net_addr_text(&a.sa, shown, sizeof(shown));
	fuzz_check(strlen(shown) < sizeof(shown) - 1);
	host_of(shown);
	fuzz_check(net_parse_addr(shown, port, &b) == 0);
	if (a.sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&a.in6.sin6_addr)) {
		/* Shown as the IPv4 peer it stands for. */
		fuzz_check(b.sa.sa_family == AF_INET);
		fuzz_check(memcmp(&b.in.sin_addr, &a.in6.sin6_addr.s6_addr[12],
				  4) == 0);
		return 0;
	}
	fuzz_check(b.sa.sa_family == a.sa.sa_family);
	if (a.sa.sa_family == AF_INET)
		fuzz_check(a.in.sin_addr.s_addr == b.in.sin_addr.s_addr);
	else
		fuzz_check(memcmp(&a.in6.sin6_addr, &b.in6.sin6_addr, 16) == 0);
	return 0;
}
