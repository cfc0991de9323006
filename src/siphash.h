// SPDX-License-Identifier: BSD-2-Clause
/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012): a keyed hash for tables whose keys a client
 * chooses (its address), so that without the key nobody can pick keys
 * that share a slot. The key is drawn once per table from getrandom(2).
 */
#ifndef ECHOD_SIPHASH_H
#define ECHOD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1; /* the key's bytes 0-7 and 8-15, little-endian */
};

/* The key of 16 bytes, as the paper reads them. */
void siphash_key_from(struct siphash_key *k, const uint8_t bytes[16]);

/* A random key from getrandom(2). Returns 0 or -errno. */
int siphash_key_random(struct siphash_key *k);

/* SipHash-2-4 of len bytes at data under k. */
uint64_t siphash24(const struct siphash_key *k, const void *data, size_t len);

#endif
