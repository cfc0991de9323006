// SPDX-License-Identifier: BSD-2-Clause
/* hist.c - log-linear latency histogram: recording, merging, percentiles. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "hist.h"

static inline uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/*
 * Single-writer update: a plain load and store, each atomic, so readers on
 * other threads see whole values. No locked add is needed since only the
 * owner writes.
 */
static inline void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static int bucket_of(uint64_t v)
{
	int msb, shift;

	if (v < 2 * HIST_SUB)
		return (int)v;
	msb = 63 - __builtin_clzll(v);
	if (msb > HIST_TOP_BIT)
		return HIST_BUCKETS - 1;
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

static uint64_t bucket_low(int i)
{
	int shift = i / HIST_SUB - 1;

	if (shift <= 0)
		return (uint64_t)i;
	return (uint64_t)(i % HIST_SUB + HIST_SUB) << shift;
}

uint64_t hist_bucket_high(int i)
{
	int shift = i / HIST_SUB - 1;

	if (shift <= 0)
		return (uint64_t)i;
	return bucket_low(i) + (1ULL << shift) - 1;
}

uint64_t hist_bucket_value(int i)
{
	return bucket_low(i) + (hist_bucket_high(i) - bucket_low(i)) / 2;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t ns)
{
	int i = bucket_of(ns);

	st(&h->count[i], h->count[i] + 1);
	st(&h->total, h->total + 1);
	st(&h->sum, h->sum + ns);
	if (ns < h->min)
		st(&h->min, ns);
	if (ns > h->max)
		st(&h->max, ns);
}

void hist_record_n(struct hist *h, uint64_t ns, uint64_t n)
{
	h->count[bucket_of(ns)] += n;
	h->total += n;
	h->sum += ns * n;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void hist_add(struct hist *dst, const struct hist *src)
{
	uint64_t v;

	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->count[i] += ld(&src->count[i]);
	dst->total += ld(&src->total);
	dst->sum += ld(&src->sum);
	v = ld(&src->min);
	if (v < dst->min)
		dst->min = v;
	v = ld(&src->max);
	if (v > dst->max)
		dst->max = v;
}

void hist_sub(struct hist *dst, const struct hist *a, const struct hist *b)
{
	int lo = -1, hi = -1;

	hist_init(dst);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		dst->count[i] = a->count[i] - b->count[i];
		if (dst->count[i] && lo < 0)
			lo = i;
		if (dst->count[i])
			hi = i;
	}
	dst->total = a->total - b->total;
	dst->sum = a->sum - b->sum;
	if (lo >= 0) {
		dst->min = bucket_low(lo);
		dst->max = hist_bucket_high(hi);
	}
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, v;

	if (!h->total)
		return 0;
	if (p >= 100)
		return h->max;
	rank = (uint64_t)ceil(p / 100 * (double)h->total);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen < rank)
			continue;
		/* The exact value lies in this bucket and in [min, max]. */
		v = hist_bucket_value(i);
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;
}
