// SPDX-License-Identifier: BSD-2-Clause
/* pattern.c - the pseudo-random sequence messages are cut from. */
#include <stdint.h>
#include <string.h>

#include "pattern.h"

/*
 * Twice the period, so that any window of up to PAT_PERIOD bytes starting
 * inside the first half is contiguous: senders hand it straight to send(2)
 * and checks are one memcmp, no copy per message. Written once by
 * pat_init() before the threads start, read-only afterwards.
 */
static unsigned char tab[2 * PAT_PERIOD];

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void pat_init(void)
{
	uint64_t x = 0x6563686f62656e63ULL; /* "echobenc" */
	unsigned char b;

	for (size_t i = 0; i < PAT_PERIOD; i++) {
		do {
			x = mix(x + 0x9e3779b97f4a7c15ULL);
			b = (unsigned char)(x >> 56);
		} while ((i && b == tab[i - 1]) ||
			 (i == PAT_PERIOD - 1 && b == tab[0]));
		tab[i] = b;
	}
	memcpy(tab + PAT_PERIOD, tab, PAT_PERIOD);
}

uint32_t pat_start(uint32_t conn, uint64_t seq)
{
	return (uint32_t)(mix(((uint64_t)conn << 40) ^ seq) % PAT_PERIOD);
}

const unsigned char *pat_bytes(uint64_t pos, size_t *len)
{
	size_t off = pos % PAT_PERIOD;

	if (*len > PAT_PERIOD)
		*len = PAT_PERIOD;
	return tab + off;
}

long pat_compare(uint64_t pos, const unsigned char *buf, size_t len)
{
	size_t done = 0, n;
	const unsigned char *want;

	while (done < len) {
		n = len - done;
		want = pat_bytes(pos + done, &n);
		if (memcmp(want, buf + done, n)) {
			for (size_t i = 0;; i++)
				if (want[i] != buf[done + i])
					return (long)(done + i);
		}
		done += n;
	}
	return -1;
}

size_t pat_count_diff(uint64_t pos, const unsigned char *buf, size_t len)
{
	size_t done = 0, n, bad = 0;
	const unsigned char *want;

	while (done < len) {
		n = len - done;
		want = pat_bytes(pos + done, &n);
		for (size_t i = 0; i < n; i++)
			bad += want[i] != buf[done + i];
		done += n;
	}
	return bad;
}
