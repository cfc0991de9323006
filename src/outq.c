/* outq.c - a connection's bytes to send back, and the pool of their buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

enum {
	TAIL_SLACK = 1024, /* outq_tail slides when less is left */
};

int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap)
{
	p->free = calloc(cap, sizeof(*p->free));
	if (p->free == NULL)
		return -ENOMEM;
	p->nfree = 0;
	p->cap = cap;
	p->size = size;
	return 0;
}

void outq_pool_destroy(struct outq_pool *p)
{
	while (p->nfree)
		free(p->free[--p->nfree]);
	free(p->free);
	p->free = NULL;
}

/* Gets q a pooled buffer if it has none. Returns 0 or -ENOMEM. */
static int pool_get(struct outq_pool *p, struct outq *q)
{
	if (q->buf)
		return 0;
	q->buf = p->nfree ? p->free[--p->nfree] : malloc(p->size);
	q->off = q->len = 0;
	return q->buf ? 0 : -ENOMEM;
}

void outq_release(struct outq_pool *p, struct outq *q)
{
	/* Keeps up to cap buffers for reuse; memory beyond that goes back. */
	if (q->buf && p->nfree < p->cap)
		p->free[p->nfree++] = q->buf;
	else
		free(q->buf);
	q->buf = NULL;
	q->off = q->len = 0;
}

/* Moves the pooled bytes to the start of their buffer. */
static void slide(struct outq *q)
{
	if (q->off == 0)
		return;
	memmove(q->buf, q->buf + q->off, q->len);
	q->off = 0;
}

size_t outq_room(const struct outq *q, size_t limit)
{
	size_t used = outq_bytes(q);

	if (q->flight == OUTQ_SENDING_BUF)
		used += q->off;
	return used < limit ? limit - used : 0;
}

int outq_append(struct outq_pool *p, struct outq *q, const char *data, size_t n)
{
	if (pool_get(p, q) < 0)
		return -ENOMEM;
	if (q->off + q->len + n > p->size && q->flight != OUTQ_SENDING_BUF)
		slide(q);
	memcpy(q->buf + q->off + q->len, data, n);
	q->len += (uint32_t)n;
	return 0;
}

void outq_lend(struct outq *q, const char *data, size_t n, unsigned int id)
{
	q->lent = data;
	q->lent_len = (uint32_t)n;
	q->lent_id = (uint16_t)id;
}

size_t outq_front(const struct outq *q, const char **data)
{
	if (q->lent_len) {
		*data = q->lent;
		return q->lent_len;
	}
	*data = q->buf ? q->buf + q->off : NULL;
	return q->len;
}

void outq_start_send(const struct outq_pool *p, struct outq *q, size_t reserve)
{
	if (q->lent_len) {
		q->flight = OUTQ_SENDING_LENT;
		return;
	}
	if (q->off + q->len + reserve > p->size)
		slide(q);
	q->flight = OUTQ_SENDING_BUF;
}

/*
 * After a short send from the lent buffer: its rest goes ahead of the
 * pooled bytes. No send reads the pooled buffer now, so they may move.
 */
static int unlend(struct outq_pool *p, struct outq *q)
{
	uint32_t rest = q->lent_len;

	if (pool_get(p, q) < 0)
		return -ENOMEM;
	if (q->off < rest) {
		memmove(q->buf + rest, q->buf + q->off, q->len);
		q->off = rest;
	}
	q->off -= rest;
	q->len += rest;
	memcpy(q->buf + q->off, q->lent, rest);
	q->lent_len = 0;
	return 0;
}

int outq_sent(struct outq_pool *p, struct outq *q, size_t n, unsigned int *done)
{
	q->flight = OUTQ_IDLE;
	if (q->lent_len == 0) {
		q->off += (uint32_t)n;
		q->len -= (uint32_t)n;
		if (q->len == 0)
			outq_release(p, q);
		return 0;
	}
	q->lent += n;
	q->lent_len -= (uint32_t)n;
	*done = q->lent_id;
	if (q->lent_len && unlend(p, q) < 0)
		return -ENOMEM;
	return 1;
}

char *outq_tail(struct outq_pool *p, struct outq *q, size_t limit,
		size_t *space)
{
	if (pool_get(p, q) < 0)
		return NULL;
	/* Slide only when the tail is nearly used up: rare, never per read. */
	if (q->off + q->len + TAIL_SLACK > limit)
		slide(q);
	*space = limit - q->off - q->len;
	return q->buf + q->off + q->len;
}
