// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-framing.c - conn_consume, the framing and the -n limit, against a
 * model of what the peer's stream must give back.
 *
 * Input: byte 0 picks the framing (bit 0) and how the stream is cut into
 * reads (the other bits seed the read sizes); bytes 1-2 are -n (0 = no
 * limit); the rest is the stream. Whatever the cut, the bytes echoed
 * must be the stream up to and including the n'th message's end (all of
 * it without a limit, or while fewer messages came), and the message
 * count must match.
 */
#include <string.h>

#include "../src/conn.h"
#include "../src/options.h"
#include "fuzz.h"

/* What must come back: a prefix length of the stream, and its messages. */
static size_t model(const struct options *o, const uint8_t *s, size_t n,
		    const size_t *cuts, size_t ncuts, uint64_t *messages)
{
	size_t end = 0;

	*messages = 0;
	if (o->framing == FRAMING_RAW) {
		for (size_t i = 0; i < ncuts; i++) {
			if (o->messages && *messages == o->messages)
				break;
			end += cuts[i];
			(*messages)++;
		}
		return end;
	}
	for (size_t i = 0; i < n; i++) {
		if (o->messages && *messages == o->messages)
			return i;
		if (s[i] == '\n')
			(*messages)++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t cuts[65536];
	struct options o;
	struct conn c;
	const uint8_t *s;
	size_t n, ncuts = 0, pos = 0, echoed = 0, want;
	uint64_t want_msgs;
	unsigned int seed;

	if (size < 3)
		return 0;
	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	o.framing = data[0] & 1 ? FRAMING_LINE : FRAMING_RAW;
	o.messages = (uint64_t)data[1] << 8 | data[2];
	seed = data[0] >> 1;
	s = data + 3;
	n = size - 3;
	/* Reads of 1 to 128 bytes, never empty: a read of 0 is EOF. */
	while (pos < n) {
		seed = seed * 1103515245u + 12345u;
		cuts[ncuts] = 1 + (seed >> 16) % 128;
		if (cuts[ncuts] > n - pos)
			cuts[ncuts] = n - pos;
		pos += cuts[ncuts++];
	}
	pos = 0;
	for (size_t i = 0; i < ncuts; i++) {
		size_t e = conn_consume(&o, &c, (const char *)s + pos, cuts[i]);

		fuzz_check(e <= cuts[i]);
		/* Echoed bytes are a prefix of the stream: once a read is
		 * cut short, nothing after it is echoed. */
		fuzz_check(echoed == pos || e == 0);
		echoed += e;
		pos += cuts[i];
		fuzz_check(!(c.flags & CONN_LIMIT) ||
			   (o.messages && c.messages >= o.messages));
	}
	want = model(&o, s, n, cuts, ncuts, &want_msgs);
	fuzz_check(echoed == want);
	fuzz_check(c.bytes_in == n);
	fuzz_check(c.messages == want_msgs ||
		   (o.messages && c.messages >= o.messages &&
		    want_msgs == o.messages));
	return 0;
}
