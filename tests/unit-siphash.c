// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-siphash.c - SipHash-2-4 against the reference vectors (key
 * 00 01 .. 0f, message 00 01 .. of each length; the paper's appendix
 * gives the 15-byte one), and a random key that is not the zero key.
 */
#include <stdio.h>
#include <string.h>

#include "../src/siphash.h"
#include "tap.h"

static const struct {
	size_t len;
	uint8_t out[8]; /* little-endian, as the reference prints them */
} vectors[] = {
	{0, {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}},
	{1, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74}},
	{7, {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab}},
	{8, {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}},
	{9, {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e}},
	{15, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}},
	{16, {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}},
	{63, {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95}},
};

int main(void)
{
	struct siphash_key k, r1, r2;
	uint8_t key[16], msg[64];
	uint64_t want, got;

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	siphash_key_from(&k, key);
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		want = 0;
		for (int b = 0; b < 8; b++)
			want |= (uint64_t)vectors[v].out[b] << (8 * b);
		got = siphash24(&k, msg, vectors[v].len);
		ok(got == want,
		   "SipHash-2-4 of %zu bytes: %016llx (want %016llx)",
		   vectors[v].len, (unsigned long long)got,
		   (unsigned long long)want);
	}
	is_int(siphash_key_random(&r1), 0, "getrandom gives a key");
	is_int(siphash_key_random(&r2), 0, "... and another");
	ok(r1.k0 != r2.k0 || r1.k1 != r2.k1, "two random keys differ");
	ok(siphash24(&r1, msg, 16) != siphash24(&r2, msg, 16),
	   "... and hash one address differently");
	return done_testing();
}
