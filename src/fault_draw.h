// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault_draw.h - the clock and the random draws of faults: a small generator
 * whose whole state is one seed, so that a seed given on the command line makes
 * a run repeatable, and the delay distributions of latency.
 */
#ifndef ECHOD_FAULT_DRAW_H
#define ECHOD_FAULT_DRAW_H

#include <stdint.h>

#include "fault.h"

/* CLOCK_MONOTONIC in ns: faults are timed finer than the core's clock. */
uint64_t fault_now_ns(void);

/* splitmix64's finalizer: x spread over all 64 bits. */
static inline uint64_t fault_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The next draw of the generator whose state is *rng. */
static inline uint64_t fault_next(uint64_t *rng)
{
	*rng += 0x9e3779b97f4a7c15ULL;
	return fault_mix(*rng);
}

/* A uniform draw in (0, 1): never 0, so that logs and powers are finite. */
static inline double fault_unit(uint64_t *rng)
{
	return ((double)(fault_next(rng) >> 11) + 0.5) / 9007199254740992.0;
}

/* Whether an event of probability p happens. */
static inline int fault_chance(uint64_t *rng, double p)
{
	return p >= 1.0 || (p > 0.0 && fault_unit(rng) < p);
}

/*
 * delay_ns plus jitter_ns drawn from dist (uniform: +/- jitter; normal:
 * jitter is the standard deviation; pareto: a tail of shape 2 whose mean
 * is jitter), never below 0 nor above an hour.
 */
uint64_t fault_draw_delay(uint64_t *rng, uint64_t delay_ns, uint64_t jitter_ns,
			  enum fault_dist dist);

#endif
