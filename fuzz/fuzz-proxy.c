// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-proxy.c - the PROXY protocol parser on whatever a connection might
 * start with. A header taken lies within the input and PROXY_MAX, is of
 * version 1 or 2 and has the shape its version gives it; a verdict, once
 * given, stands however many bytes follow, so every prefix says "more" or
 * the same; and no byte past the end is read, each prefix being parsed
 * at the very end of a heap buffer, where AddressSanitizer watches.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../src/proxy.h"
#include "fuzz.h"

static void check_header(const uint8_t *in, size_t n,
			 const struct proxy_header *h)
{
	fuzz_check(h->length <= n && h->length <= PROXY_MAX);
	fuzz_check(h->version == 1 || h->version == 2);
	if (h->has_addr) {
		fuzz_check(h->command == PROXY_CMD_PROXY);
		fuzz_check(h->src.sa.sa_family == AF_INET ||
			   h->src.sa.sa_family == AF_INET6);
		fuzz_check(h->src.sa.sa_family == h->dst.sa.sa_family);
	}
	if (h->version == 1) {
		fuzz_check(h->command == PROXY_CMD_PROXY);
		fuzz_check(h->length <= PROXY_V1_MAX);
		fuzz_check(memcmp(in, "PROXY ", 6) == 0);
		fuzz_check(memcmp(in + h->length - 2, "\r\n", 2) == 0);
		/* Its LF is the first: the line ends where it says. */
		fuzz_check(memchr(in, '\n', h->length - 1) == NULL);
	} else {
		fuzz_check(h->length == 16 + ((size_t)in[14] << 8 | in[15]));
		fuzz_check(in[12] >> 4 == 2);
		fuzz_check(h->command == ((in[12] & 0x0f) ? PROXY_CMD_PROXY
							  : PROXY_CMD_LOCAL));
	}
}

/*
 * Parses each prefix of in[0, n) up to PROXY_MAX bytes, copied to the end
 * of buf (PROXY_MAX bytes), against r and *h, the whole input's verdict.
 */
static void check_prefixes(uint8_t *buf, const uint8_t *in, size_t n,
			   enum proxy_result r, const struct proxy_header *h)
{
	size_t max = n < PROXY_MAX ? n : PROXY_MAX;
	struct proxy_header ph;
	enum proxy_result pr;

	for (size_t m = 0; m <= max; m++) {
		if (m)
			memcpy(buf + PROXY_MAX - m, in, m);
		pr = proxy_parse(buf + PROXY_MAX - m, m, &ph);
		if (r == PROXY_OK && m >= h->length) {
			fuzz_check(pr == PROXY_OK);
			fuzz_check(memcmp(&ph, h, sizeof(ph)) == 0);
		} else {
			fuzz_check(pr == PROXY_MORE || pr == r);
		}
		/* Waiting is bounded: more is never said at PROXY_MAX. */
		fuzz_check(pr != PROXY_MORE || m < PROXY_MAX);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Kept for the process: an allocation per input would be noise. */
	static uint8_t *buf;
	struct proxy_header h;
	enum proxy_result r;

	if (!buf)
		buf = malloc(PROXY_MAX);
	fuzz_check(buf != NULL);
	r = proxy_parse(data, size, &h);
	fuzz_check(r >= PROXY_OK && r <= PROXY_OVERSIZED);
	fuzz_check(strcmp(proxy_result_name(r), "?") != 0);
	if (r == PROXY_OK)
		check_header(data, size, &h);
	check_prefixes(buf, data, size, r, &h);
	return 0;
}
