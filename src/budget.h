// SPDX-License-Identifier: BSD-2-Clause
/*
 * budget.h - the --memory budget: one process-wide count of the bytes
 * echod holds for connections' data (pooled send buffers on both
 * backends, io_uring's provided buffers in circulation), shared by every
 * worker, so that this memory follows the bytes in flight and not the
 * number of workers.
 *
 * Who counts what: outq.c charges a pooled buffer by the pages written
 * in it (its touched extent, which is what is resident) and gives the
 * charge back when the buffer is unmapped; uring_bufs.c charges each
 * provided buffer while it is in circulation (the kernel may fill any
 * of them) and gives it back when the buffer is parked (madvised away).
 *
 * Relaxed atomics throughout: the count orders no other memory, it is a
 * number each worker reads to decide whether to read more.
 */
#ifndef ECHOD_BUDGET_H
#define ECHOD_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum {
	/* While less than this is left, new reads are this small. */
	BUDGET_TIGHT_MARGIN_MAX = 4 * 1024 * 1024,
	BUDGET_SMALL_READ = 4096,
};

/* Owned by main (worker_shared); workers charge and give back. */
struct budget {
	_Atomic size_t used;
	size_t limit; /* --memory; 0 = no limit */
	size_t margin; /* "tight" below this much left: small reads */
	atomic_uint waiting; /* connections waiting for memory, all workers */
};

static inline void budget_init(struct budget *b, size_t limit)
{
	size_t m = limit / 4;

	atomic_store_explicit(&b->used, 0, memory_order_relaxed);
	atomic_store_explicit(&b->waiting, 0, memory_order_relaxed);
	b->limit = limit;
	b->margin = m < BUDGET_TIGHT_MARGIN_MAX ? m : BUDGET_TIGHT_MARGIN_MAX;
}

static inline size_t budget_used(const struct budget *b)
{
	/* atomic_load takes no const pointer before C17; reading is safe. */
	return atomic_load_explicit((_Atomic size_t *)&b->used,
				    memory_order_relaxed);
}

/*
 * Charges n bytes if that stays within the limit. A CAS loop, so that
 * workers charging at once never overshoot together.
 */
static inline bool budget_take(struct budget *b, size_t n)
{
	size_t used = budget_used(b);

	do {
		if (b->limit && used + n > b->limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&b->used, &used, used + n, memory_order_relaxed,
		memory_order_relaxed));
	return true;
}

/*
 * Charges n bytes whatever the limit: for bytes already read (never
 * dropped) and for each worker's small reserve of receive buffers.
 */
static inline void budget_force(struct budget *b, size_t n)
{
	atomic_fetch_add_explicit(&b->used, n, memory_order_relaxed);
}

static inline void budget_give(struct budget *b, size_t n)
{
	atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

/* Over the limit, or someone waits: spare memory should go back now. */
static inline bool budget_pressed(const struct budget *b)
{
	return b->limit && (budget_used(b) > b->limit ||
			    atomic_load_explicit((atomic_uint *)&b->waiting,
						 memory_order_relaxed) > 0);
}

/* Less than the margin left: reads that might stay queued are small. */
static inline bool budget_tight(const struct budget *b)
{
	return b->limit && (budget_used(b) + b->margin > b->limit ||
			    atomic_load_explicit((atomic_uint *)&b->waiting,
						 memory_order_relaxed) > 0);
}

#endif
