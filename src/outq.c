/* outq.c - a connection's bytes to send back, and the pool of their buffers. */
#include <sys/mman.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

enum {
	TAIL_SLACK = 1024, /* outq_tail slides when less is left */
};

int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap)
{
	memset(p, 0, sizeof(*p));
	p->free = calloc(cap, sizeof(*p->free));
	if (p->free == NULL)
		return -ENOMEM;
	p->cap = cap;
	p->size = size;
	return 0;
}

/*
 * Pooled buffers are mapped, not malloc'd: pages are touched only as
 * bytes fill them, and munmap gives them back to the kernel at once,
 * where free() might keep them in the heap.
 */
static void unmap(const struct outq_pool *p, char *buf)
{
	munmap(buf, p->size);
}

void outq_pool_trim(struct outq_pool *p)
{
	while (p->nfree)
		unmap(p, p->free[--p->nfree]);
}

void outq_pool_destroy(struct outq_pool *p)
{
	outq_pool_trim(p);
	free(p->free);
	p->free = NULL;
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
		return 0;
	}
	buf = mmap(NULL, p->size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	q->buf = buf;
	return 0;
}

void outq_release(struct outq_pool *p, struct outq *q)
{
	/* Keeps up to cap buffers for reuse; memory beyond that goes back. */
	if (q->buf && p->nfree < p->cap)
		p->free[p->nfree++] = q->buf;
	else if (q->buf)
		unmap(p, q->buf);
	q->buf = NULL;
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

size_t outq_bytes(const struct outq *q)
{
	size_t n = q->len;

	for (unsigned int i = 0; i < q->nlent; i++)
		n += q->lent_len[i];
	return n - (q->nlent ? q->lent_off : 0);
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
static int unlend(const struct outq_pool *p, struct outq *q, uint16_t *done)
{
	size_t need = outq_bytes(q) - q->len, at;

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
