// SPDX-License-Identifier: BSD-2-Clause
/*
 * outq.h - a connection's bytes waiting to go back to its peer, in order:
 * first up to OUTQ_LENT_MAX lent buffers (a backend's own buffers, sent
 * in place without a copy), then a pooled buffer of copies. This is the
 * one owner of those bytes for every backend: the room rule that bounds
 * them, and the rule that bytes a send in flight is reading never move.
 */
#ifndef ECHOD_OUTQ_H
#define ECHOD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct budget;

enum {
	/*
	 * Enough for a streaming peer: one buffer in flight and a few
	 * behind it go without a copy; more are copied, so a peer sending
	 * many small messages cannot hold many of the lender's buffers.
	 */
	OUTQ_LENT_MAX = 4,
};

/* What a send in flight (one at a time) is reading from. */
enum outq_flight {
	OUTQ_IDLE,
	OUTQ_SENDING_LENT, /* the first flight_lent lent buffers */
	OUTQ_SENDING_BUF, /* the pooled buffer: its bytes must not move */
};

/*
 * Embedded in struct conn. The pooled buffer is borrowed from the
 * worker's outq_pool only while bytes wait in it, so an idle connection
 * holds none. Lent buffers stay the lender's: outq_sent and
 * outq_unlend_all say when the queue is done with them. Lent buffer i
 * holds lent_len[i] bytes from the start of the lender's buffer
 * lent_id[i]; lent_off of the first are sent already.
 */
struct outq {
	char *buf; /* [off, off + len) waits, after the lent bytes */
	uint32_t off, len;
	uint32_t lent_off;
	uint32_t lent_len[OUTQ_LENT_MAX];
	uint16_t lent_id[OUTQ_LENT_MAX];
	uint8_t nlent;
	/* Nibbles, so that struct conn keeps its size. */
	uint8_t flight : 4; /* enum outq_flight */
	uint8_t flight_lent : 4; /* lent buffers the send in flight covers */
	uint16_t charged; /* buf's bytes [0, charged x pool unit) charged */
};

/*
 * A worker's spare pooled buffers, so bytes in flight cost no malloc,
 * and the lender's buffers (id i is lend_size bytes at lend_base + i *
 * lend_size), for a backend that lends.
 *
 * Every pooled buffer is charged to the --memory budget by its touched
 * extent, in units of unit bytes (a page, or more for buffers beyond
 * 256 MiB, so that a count of units fits 16 bits); spare buffers keep
 * their charge until they are unmapped.
 */
struct outq_pool {
	char **free;
	uint16_t *free_charged; /* each spare buffer's charge, in units */
	unsigned int nfree, cap;
	unsigned int low; /* fewest spare since the last decay */
	size_t size; /* every pooled buffer's size */
	size_t unit;
	struct budget *budget;
	const char *lend_base;
	size_t lend_size;
};

/*
 * Pooled buffers of size bytes, charged to budget b. Returns 0 or
 * -ENOMEM.
 */
int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap,
		   struct budget *b);
void outq_pool_destroy(struct outq_pool *p);

/* Gives the spare pooled buffers' memory back to the kernel. */
void outq_pool_trim(struct outq_pool *p);

/*
 * Once a second while spares are kept: unmaps those that stayed unused
 * the whole time (the fewest spare seen since the last call), or all of
 * them when the budget is pressed. Returns true while spares remain.
 */
bool outq_pool_decay(struct outq_pool *p);

/* The bytes of q's pooled buffer charged to the budget. */
static inline size_t outq_charged(const struct outq_pool *p,
				  const struct outq *q)
{
	return (size_t)q->charged * p->unit;
}

/*
 * The bytes queued, lent and pooled. Inline, with outq_room: both are
 * asked after every echo, on both backends.
 */
static inline size_t outq_bytes(const struct outq *q)
{
	size_t n = q->len;

	if (q->nlent == 0)
		return n;
	for (unsigned int i = 0; i < q->nlent; i++)
		n += q->lent_len[i];
	return n - q->lent_off;
}

/*
 * Bytes q can still take before it holds limit: what waits, plus, while
 * a send reads the pooled buffer, the space before its bytes (appending
 * must not move them, so that space cannot be reused until it ends).
 */
static inline size_t outq_room(const struct outq *q, size_t limit)
{
	size_t used = outq_bytes(q);

	if (q->flight == OUTQ_SENDING_BUF)
		used += q->off;
	return used < limit ? limit - used : 0;
}

/*
 * Appends a copy of data[0, n); the caller checked outq_room against
 * the pool's buffer size. Bytes already read are never dropped, so the
 * pages they need are charged whatever the budget says (the callers'
 * read rules keep that small). Returns 0 or -ENOMEM (no mapping).
 */
int outq_append(struct outq_pool *p, struct outq *q, const char *data,
		size_t n);

/*
 * Queues the first n bytes of the lender's buffer id without a copy, if
 * nothing is pooled and fewer than OUTQ_LENT_MAX are lent; else returns
 * false and the caller appends a copy.
 */
bool outq_lend(struct outq *q, size_t n, unsigned int id);

/*
 * The bytes to send next: what is left of the first lent buffer, else
 * the pooled ones. Returns their count (0 when q is empty), sets *data.
 */
size_t outq_front(const struct outq_pool *p, const struct outq *q,
		  const char **data);

/*
 * Every lent buffer, for one send that reads them all: iov[i] (room for
 * OUTQ_LENT_MAX) is what is left of lent buffer i. Returns their count.
 */
unsigned int outq_lent_iov(const struct outq_pool *p, const struct outq *q,
			   struct iovec *iov);

/*
 * The bytes a send of lent buffers in flight covers; 0 when the send in
 * flight is not one. Less sent means its peer is slow.
 */
size_t outq_flight_lent_bytes(const struct outq *q);

/*
 * Marks the front as read by a send in flight until outq_sent: every
 * lent buffer (outq_lent_iov), else the pooled bytes. Before
 * a send from the pooled buffer, slides its bytes to the start when
 * fewer than reserve bytes are free behind them, so later appends fit.
 */
void outq_start_send(const struct outq_pool *p, struct outq *q, size_t reserve);

/*
 * n bytes of the front were sent (by a send in flight or not). The ids
 * of lent buffers the queue is done with go into done[] (room for
 * OUTQ_LENT_MAX), and their count is returned: those sent whole; after
 * a short send (one that left some of the lent buffers it covered, or of
 * the first when no send was in flight), all of them, the unsent bytes
 * copied into the pooled buffer ahead of what waits there, so that a
 * peer that does not read holds none of the lender's buffers. Returns
 * -ENOMEM, with q as it was, when there is no pooled buffer for that
 * copy. The pooled buffer goes back to the pool once empty.
 */
int outq_sent(struct outq_pool *p, struct outq *q, size_t n, uint16_t *done);

/* Drops every lent buffer (closing); their ids go into done[], counted. */
int outq_unlend_all(struct outq *q, uint16_t *done);

/*
 * Before reading more into a queue that holds pooled bytes: slides them
 * to the buffer's start when the tail is nearly used up, and charges the
 * pages for up to want more bytes behind them, at most up to limit from
 * the buffer's start, within the budget (all of it, else a small read's
 * worth). Returns the charged room behind the bytes, 0 when the budget
 * or the mapping has none.
 */
size_t outq_reserve(struct outq_pool *p, struct outq *q, size_t limit,
		    size_t want);

/*
 * The room behind q's pooled bytes in pages already charged, at most up
 * to limit from the buffer's start, sliding the bytes as outq_reserve
 * does; no charge taken. q has a pooled buffer.
 */
size_t outq_charged_room(const struct outq_pool *p, struct outq *q,
			 size_t limit);

/*
 * For reading straight into the queue (a readiness backend): where to
 * read, and in *space the room outq_reserve charged behind the bytes
 * (at most up to limit); 0 when there is none.
 */
char *outq_tail(const struct outq_pool *p, struct outq *q, size_t limit,
		size_t *space);

/* n bytes were read into outq_tail's space and are to be sent. */
static inline void outq_tail_filled(struct outq *q, size_t n)
{
	q->len += (uint32_t)n;
}

/* Gives the pooled buffer back (the connection is being freed). */
void outq_release(struct outq_pool *p, struct outq *q);

#endif
