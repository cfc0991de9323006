// SPDX-License-Identifier: BSD-2-Clause
/*
 * counter.h - counters one thread writes and any thread may read while
 * it runs (the metrics thread, main's table): C11 atomics with relaxed
 * order. A worker is the only writer of its own counters, so an add is
 * a relaxed load and store (a plain move on x86), not a locked
 * read-modify-write; a reader sees each counter whole, never torn.
 */
#ifndef ECHOD_COUNTER_H
#define ECHOD_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

/* For the counter's one writer only. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);

	atomic_store_explicit(c, v + n, memory_order_relaxed);
}

static inline uint64_t counter_get(const _Atomic uint64_t *c)
{
	/* atomic_load takes no const pointer before C17; reading is safe. */
	return atomic_load_explicit((_Atomic uint64_t *)c,
				    memory_order_relaxed);
}

#endif
