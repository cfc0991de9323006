// SPDX-License-Identifier: BSD-2-Clause
/* hist.h - log-linear latency histogram (HdrHistogram's idea, our code). */
#ifndef ECHOBENCH_HIST_H
#define ECHOBENCH_HIST_H

#include <stdint.h>

/*
 * Values are nanoseconds. Below 2^HIST_SUB_BITS+1 ns every value has its
 * own bucket; above, each power of two is cut into 2^HIST_SUB_BITS equal
 * buckets, so a bucket is at most 1/128 of its value wide and its midpoint
 * is within 0.4 % of any value in it. Values of 2^36 ns (68.7 s) and more
 * share the last bucket; max is kept exactly.
 */
enum {
	HIST_SUB_BITS = 7,
	HIST_SUB = 1 << HIST_SUB_BITS,
	HIST_TOP_BIT = 35,
	HIST_BUCKETS = (HIST_TOP_BIT - HIST_SUB_BITS + 2) * HIST_SUB,
};

/*
 * One writer (the thread owning it) updates it with relaxed atomic stores,
 * so that the main thread may read a live histogram for the progress line
 * with relaxed loads: a snapshot may be a few counts behind, never torn.
 */
struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t total;
	uint64_t sum; /* ns, for the mean */
	uint64_t min;
	uint64_t max;
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
/* Records n values of ns at once; for a histogram no other thread reads. */
void hist_record_n(struct hist *h, uint64_t ns, uint64_t n);
/* dst += src; src may be live (read with relaxed loads). */
void hist_add(struct hist *dst, const struct hist *src);
/* dst = a - b, both snapshots; min and max are a bucket's bounds. */
void hist_sub(struct hist *dst, const struct hist *a, const struct hist *b);
/* Value at percentile p (0-100) by nearest rank; 0 if empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* The value a bucket stands for (its midpoint) and its upper bound. */
uint64_t hist_bucket_value(int i);
uint64_t hist_bucket_high(int i);

#endif
