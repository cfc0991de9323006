// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_mem.c - the loop core's share of --memory: how much a connection
 * may read, and the queue of those waiting for memory, served first come
 * first served as it comes back.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "budget.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "counter.h"
#include "options.h"
#include "worker.h"

/* Appends c's entry to the memory queue; false if there is no room. */
static bool memq_push(struct core *k, struct conn *c)
{
	uint32_t cap = k->memq_cap ? k->memq_cap * 2 : 64, at;
	uint64_t *q;

	if (k->memq_n == k->memq_cap) {
		q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return false;
		for (uint32_t i = 0; i < k->memq_n; i++)
			q[i] = k->memq[(k->memq_head + i) % k->memq_cap];
		free(k->memq);
		k->memq = q;
		k->memq_cap = cap;
		k->memq_head = 0;
	}
	at = (k->memq_head + k->memq_n++) % k->memq_cap;
	k->memq[at] = (uint64_t)c->gen << 32 | c->slot;
	c->flags |= CONN_MEMQ;
	return true;
}

/*
 * Queues c to wait for memory, behind those already waiting. One entry
 * per connection: one that waits again before its entry came up keeps
 * that place, so a slow reader that waits, reads a little and waits
 * again cannot grow the queue without bound.
 */
static void mem_wait(struct core *k, struct conn *c)
{
	/* No room to queue: c tries again when its echoes go out. */
	if (!(c->flags & CONN_MEMQ) && !memq_push(k, c))
		return;
	c->flags |= CONN_MEMWAIT;
	k->nmemwait++;
	core_recheck(k);
	atomic_fetch_add_explicit(&k->budget->waiting, 1, memory_order_relaxed);
	counter_add(&k->w->stats.mem_waits, 1);
}

void core_mem_unwait(struct core *k, struct conn *c)
{
	if (!(c->flags & CONN_MEMWAIT))
		return;
	c->flags &= ~CONN_MEMWAIT;
	k->nmemwait--;
	atomic_fetch_sub_explicit(&k->budget->waiting, 1, memory_order_relaxed);
}

/*
 * What one read of a connection with nothing queued may bring: what is
 * left of the budget shared by every open connection, and only a small
 * read's worth while memory is tight. A backend that arms receives in
 * advance (io_uring) may see each of them filled before it knows whose
 * peer does not read, so the sum of what they can bring past the budget
 * stays within what was left of it.
 */
static size_t fair_share_now(const struct core *k)
{
	const struct budget *b = k->budget;
	unsigned int conns;
	size_t used, left;

	if (b->limit == 0)
		return SIZE_MAX;
	if (budget_tight(b))
		return BUDGET_SMALL_READ;
	conns = atomic_load_explicit(&k->w->shared->conns,
				     memory_order_relaxed);
	used = budget_used(b);
	left = (b->limit - used) / (conns ? conns : 1);
	return left > BUDGET_SMALL_READ ? left : BUDGET_SMALL_READ;
}

/* The fair share, noted with the tick it was found in (core_read_room). */
static size_t fair_share(struct core *k)
{
	k->share = fair_share_now(k);
	k->share_ms = k->now_ms;
	return k->share;
}

size_t core_read_room_shared(struct core *k, struct conn *c, size_t room)
{
	size_t n;

	if (room == 0)
		return 0;
	if (c->out.buf == NULL) {
		core_mem_unwait(k, c);
		n = fair_share(k);
		return room < n ? room : n;
	}
	/*
	 * Waiting, it reads again into the pages it holds as its peer takes
	 * echoes (a slow reader), since that costs the budget nothing; new
	 * pages are for core_due to give, to those before it first.
	 */
	if (c->flags & CONN_MEMWAIT) {
		n = outq_charged_room(&k->pool, &c->out, k->pool.size);
		if (n)
			core_mem_unwait(k, c);
		return n < room ? n : room;
	}
	n = outq_reserve(&k->pool, &c->out, k->pool.size, room);
	if (n == 0)
		mem_wait(k, c);
	return n;
}

bool core_may_read(struct core *k, struct conn *c, size_t room)
{
	if (c->out.buf == NULL && !(c->flags & CONN_MEMWAIT))
		return room > 0;
	return core_read_room(k, c, room) > 0;
}

struct conn *core_mem_resumed(struct core *k)
{
	uint64_t e;
	struct conn *c;

	while (k->memq_n) {
		e = k->memq[k->memq_head];
		c = conn_table_find(&k->table, (uint32_t)e,
				    (uint32_t)(e >> 32));
		/* One whose queue emptied meanwhile reads freely: no charge. */
		if (c && (c->flags & CONN_MEMWAIT) && c->out.buf &&
		    outq_reserve(&k->pool, &c->out, k->pool.size,
				 outq_room(&c->out, k->o->max_pending)) == 0)
			return NULL; /* the first in line keeps its place */
		k->memq_head = (k->memq_head + 1) % k->memq_cap;
		k->memq_n--;
		if (c)
			c->flags &= ~CONN_MEMQ;
		if (c && (c->flags & CONN_MEMWAIT)) {
			core_mem_unwait(k, c);
			return c;
		}
	}
	return NULL;
}
