// SPDX-License-Identifier: BSD-2-Clause
/* outq.c - a connection's bytes to send back, and the pool of their buffers. */
#include <sys/mman.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "outq.h"

enum {
	TAIL_SLACK = 1024, /* outq_tail slides when less is left */
};

int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap,
		   struct budget *b)
{
	memset(p, 0, sizeof(*p));
	p->free = calloc(cap, sizeof(*p->free));
	p->free_charged = calloc(cap, sizeof(*p->free_charged));
	if (p->free == NULL || p->free_charged == NULL)
		return -ENOMEM;
	p->cap = cap;
	p->size = size;
	p->budget = b;
	p->unit = 4096;
	while ((size + p->unit - 1) / p->unit > UINT16_MAX)
		p->unit *= 2;
	return 0;
}

/*
 * Pooled buffers are mapped, not malloc'd: pages are touched only as
 * bytes fill them, and munmap gives them back to the kernel at once,
 * where free() might keep them in the heap. Their charge goes with them.
 */
static void unmap(const struct outq_pool *p, char *buf, uint16_t charged)
{
	munmap(buf, p->size);
	budget_give(p->budget, (size_t)charged * p->unit);
}

void outq_pool_trim(struct outq_pool *p)
{
	while (p->nfree) {
		p->nfree--;
		unmap(p, p->free[p->nfree], p->free_charged[p->nfree]);
	}
	p->low = 0;
}

bool outq_pool_decay(struct outq_pool *p)
{
	unsigned int n = budget_pressed(p->budget) ? p->nfree : p->low;

	/* The bottom of the stack is what went unused longest. */
	for (unsigned int i = 0; i < n; i++)
		unmap(p, p->free[i], p->free_charged[i]);
	p->nfree -= n;
	memmove(p->free, p->free + n, p->nfree * sizeof(*p->free));
	memmove(p->free_charged, p->free_charged + n,
		p->nfree * sizeof(*p->free_charged));
	p->low = p->nfree;
	return p->nfree > 0;
}

void outq_pool_destroy(struct outq_pool *p)
{
	outq_pool_trim(p);
	free(p->free);
	free(p->free_charged);
	p->free = NULL;
	p->free_charged = NULL;
}

/* Gets q a pooled buffer if it has none. Returns 0 or -ENOMEM. */
static int pool_get(struct outq_pool *p, struct outq *q)
{
	void *buf;

	if (q->buf)
		return 0;
	q->off = q->len = 0;
	if (p->nfree) {
		q->buf = p->free[--p->nfree];
		q->charged = p->free_charged[p->nfree];
		if (p->nfree < p->low)
			p->low = p->nfree;
		return 0;
	}
	buf = mmap(NULL, p->size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	q->buf = buf;
	q->charged = 0;
	return 0;
}

/*
 * Charges q's buffer up to end bytes from its start, whole units: within
 * the budget, or whatever it says when force (bytes already read).
 */
static bool charge(struct outq_pool *p, struct outq *q, size_t end, bool force)
{
	size_t units = (end + p->unit - 1) / p->unit, n;

	if (units <= q->charged)
		return true;
	n = (units - q->charged) * p->unit;
	if (force)
		budget_force(p->budget, n);
	else if (!budget_take(p->budget, n))
		return false;
	q->charged = (uint16_t)units;
	return true;
}

void outq_release(struct outq_pool *p, struct outq *q)
{
	/*
	 * Keeps up to cap buffers for reuse, unless the budget is pressed:
	 * then the memory goes back at once, for whoever waits for it.
	 */
	if (q->buf && p->nfree < p->cap && !budget_pressed(p->budget)) {
		p->free_charged[p->nfree] = q->charged;
		p->free[p->nfree++] = q->buf;
	} else if (q->buf) {
		unmap(p, q->buf, q->charged);
	}
	q->buf = NULL;
	q->charged = 0;
	q->off = q->len = 0;
}

static const char *lent_at(const struct outq_pool *p, const struct outq *q,
			   unsigned int i)
{
	return p->lend_base + (size_t)q->lent_id[i] * p->lend_size;
}

/* Moves the pooled bytes to the start of their buffer. */
static void slide(struct outq *q)
{
	if (q->off == 0)
		return;
	memmove(q->buf, q->buf + q->off, q->len);
	q->off = 0;
}

int outq_append(struct outq_pool *p, struct outq *q, const char *data, size_t n)
{
	if (pool_get(p, q) < 0)
		return -ENOMEM;
	if (q->off + q->len + n > p->size && q->flight != OUTQ_SENDING_BUF)
		slide(q);
	charge(p, q, q->off + q->len + n, true);
	memcpy(q->buf + q->off + q->len, data, n);
	q->len += (uint32_t)n;
	return 0;
}

bool outq_lend(struct outq *q, size_t n, unsigned int id)
{
	if (q->len || q->nlent == OUTQ_LENT_MAX)
		return false;
	if (q->nlent == 0)
		q->lent_off = 0;
	q->lent_len[q->nlent] = (uint32_t)n;
	q->lent_id[q->nlent++] = (uint16_t)id;
	return true;
}

size_t outq_front(const struct outq_pool *p, const struct outq *q,
		  const char **data)
{
	if (q->nlent) {
		*data = lent_at(p, q, 0) + q->lent_off;
		return q->lent_len[0] - q->lent_off;
	}
	*data = q->buf ? q->buf + q->off : NULL;
	return q->len;
}

unsigned int outq_lent_iov(const struct outq_pool *p, const struct outq *q,
			   struct iovec *iov)
{
	for (unsigned int i = 0; i < q->nlent; i++) {
		size_t skip = i ? 0 : q->lent_off;

		iov[i].iov_base = (char *)lent_at(p, q, i) + skip;
		iov[i].iov_len = q->lent_len[i] - skip;
	}
	return q->nlent;
}

void outq_start_send(const struct outq_pool *p, struct outq *q, size_t reserve)
{
	if (q->nlent) {
		q->flight = OUTQ_SENDING_LENT;
		q->flight_lent = q->nlent;
		return;
	}
	if (q->off + q->len + reserve > p->size)
		slide(q);
	q->flight = OUTQ_SENDING_BUF;
}

int outq_unlend_all(struct outq *q, uint16_t *done)
{
	int n = q->nlent;

	for (int i = 0; i < n; i++)
		done[i] = q->lent_id[i];
	q->nlent = 0;
	q->lent_off = 0;
	return n;
}

/*
 * After a short send of the lent buffers: their unsent bytes go ahead of
 * the pooled ones, copied into the pooled buffer q already has. No send
 * reads that buffer now, so its bytes may move; this is the slow-reader
 * path, never per message.
 */
static int unlend(struct outq_pool *p, struct outq *q, uint16_t *done)
{
	size_t need = outq_bytes(q) - q->len, at;

	/* outq_sent got the pooled buffer; the copy is kept past --memory. */
	charge(p, q, (q->off < need ? need : q->off) + q->len, true);
	if (q->off < need) {
		memmove(q->buf + need, q->buf + q->off, q->len);
		q->off = (uint32_t)need;
	}
	at = q->off - need;
	for (unsigned int i = 0; i < q->nlent; i++) {
		size_t skip = i ? 0 : q->lent_off;

		memcpy(q->buf + at, lent_at(p, q, i) + skip,
		       q->lent_len[i] - skip);
		at += q->lent_len[i] - skip;
	}
	q->off -= (uint32_t)need;
	q->len += (uint32_t)need;
	return outq_unlend_all(q, done);
}

/* Drops the first lent buffer, sent whole; its id goes to *done. */
static void pop_lent(struct outq *q, uint16_t *done)
{
	*done = q->lent_id[0];
	q->nlent--;
	memmove(q->lent_len, q->lent_len + 1,
		q->nlent * sizeof(q->lent_len[0]));
	memmove(q->lent_id, q->lent_id + 1, q->nlent * sizeof(q->lent_id[0]));
	q->lent_off = 0;
}

size_t outq_flight_lent_bytes(const struct outq *q)
{
	size_t whole = 0;

	if (q->flight != OUTQ_SENDING_LENT)
		return 0;
	for (unsigned int i = 0; i < q->flight_lent && i < q->nlent; i++)
		whole += q->lent_len[i] - (i ? 0 : q->lent_off);
	return whole;
}

int outq_sent(struct outq_pool *p, struct outq *q, size_t n, uint16_t *done)
{
	unsigned int want = q->flight == OUTQ_SENDING_LENT ? q->flight_lent : 1;
	size_t whole = 0;
	unsigned int k = 0;

	q->flight = OUTQ_IDLE;
	if (q->nlent == 0) {
		q->off += (uint32_t)n;
		q->len -= (uint32_t)n;
		if (q->len == 0)
			outq_release(p, q);
		return 0;
	}
	/* The copy a short send needs is the one thing that can fail: first. */
	for (unsigned int i = 0; i < want && i < q->nlent; i++)
		whole += q->lent_len[i] - (i ? 0 : q->lent_off);
	if (n < whole && pool_get(p, q) < 0)
		return -ENOMEM;
	while (q->nlent && n >= q->lent_len[0] - q->lent_off) {
		n -= q->lent_len[0] - q->lent_off;
		pop_lent(q, done + k++);
	}
	q->lent_off += (uint32_t)n;
	if (k >= want)
		return (int)k;
	return (int)k + unlend(p, q, done + k);
}

size_t outq_charged_room(const struct outq_pool *p, struct outq *q,
			 size_t limit)
{
	size_t end = outq_charged(p, q) < limit ? outq_charged(p, q) : limit;

	/* Slide only when the tail is nearly used up: rare, never per read. */
	if (q->off + q->len + TAIL_SLACK > limit &&
	    q->flight != OUTQ_SENDING_BUF)
		slide(q);
	return end > q->off + q->len ? end - q->off - q->len : 0;
}

size_t outq_reserve(struct outq_pool *p, struct outq *q, size_t limit,
		    size_t want)
{
	size_t end, n;

	if (pool_get(p, q) < 0)
		return 0;
	n = outq_charged_room(p, q, limit);
	end = q->off + q->len;
	if (n < want && end < limit &&
	    !charge(p, q, want < limit - end ? end + want : limit, false))
		charge(p, q,
		       end + BUDGET_SMALL_READ < limit ? end + BUDGET_SMALL_READ
						       : limit,
		       false);
	n = outq_charged_room(p, q, limit);
	return n < want ? n : want;
}

char *outq_tail(const struct outq_pool *p, struct outq *q, size_t limit,
		size_t *space)
{
	size_t end = outq_charged(p, q) < limit ? outq_charged(p, q) : limit;

	*space = end > q->off + q->len ? end - q->off - q->len : 0;
	return q->buf + q->off + q->len;
}
