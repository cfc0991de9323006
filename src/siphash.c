// SPDX-License-Identifier: BSD-2-Clause
/* siphash.c - SipHash-2-4, written from the paper's description. */
#include <sys/random.h>
#include <errno.h>

#include "siphash.h"

static uint64_t rotl(uint64_t x, unsigned int b)
{
	return x << b | x >> (64 - b);
}

/* Up to 8 bytes at p as a little-endian word. */
static uint64_t le_word(const uint8_t *p, size_t n)
{
	uint64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/* One message word: c = 2 rounds between the two xors. */
static void compress(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

void siphash_key_from(struct siphash_key *k, const uint8_t bytes[16])
{
	k->k0 = le_word(bytes, 8);
	k->k1 = le_word(bytes + 8, 8);
}

int siphash_key_random(struct siphash_key *k)
{
	uint8_t bytes[16];
	ssize_t n;

	/* Blocks only before the kernel's pool is first seeded, at boot. */
	do
		n = getrandom(bytes, sizeof(bytes), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(bytes))
		return -EIO;
	siphash_key_from(k, bytes);
	return 0;
}

uint64_t siphash24(const struct siphash_key *k, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t whole = len - len % 8;
	uint64_t v[4] = {
		k->k0 ^ 0x736f6d6570736575ull,
		k->k1 ^ 0x646f72616e646f6dull,
		k->k0 ^ 0x6c7967656e657261ull,
		k->k1 ^ 0x7465646279746573ull,
	};

	for (size_t i = 0; i < whole; i += 8)
		compress(v, le_word(p + i, 8));
	/* The last word: what is left, and the length's low byte on top. */
	compress(v, le_word(p + whole, len % 8) | (uint64_t)(len & 0xff) << 56);
	/* Finalization: d = 4 rounds. */
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
