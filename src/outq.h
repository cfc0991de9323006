/*
 * outq.h - a connection's bytes waiting to go back to its peer, in order:
 * at most one lent buffer at the front (a backend's own buffer, sent in
 * place without a copy), then a pooled buffer of copies. This is the
 * one owner of those bytes for every backend: the room rule that bounds
 * them, and the rule that bytes a send in flight is reading never move.
 */
#ifndef ECHOD_OUTQ_H
#define ECHOD_OUTQ_H

#include <stddef.h>
#include <stdint.h>

/* What a send in flight (one at a time) is reading from. */
enum outq_flight {
	OUTQ_IDLE,
	OUTQ_SENDING_LENT, /* the lent buffer */
	OUTQ_SENDING_BUF, /* the pooled buffer: it must not move */
};

/*
 * Embedded in struct conn. The pooled buffer is borrowed from the
 * worker's outq_pool only while bytes wait in it, so an idle connection
 * holds none. The lent buffer stays the lender's: outq_sent says when
 * the queue is done with it.
 */
struct outq {
	char *buf; /* [off, off + len) waits, after the lent bytes */
	const char *lent; /* lent_len bytes to send first */
	uint32_t off, len;
	uint32_t lent_len;
	uint16_t lent_id; /* the lender's name for the lent buffer */
	uint8_t flight; /* enum outq_flight */
};

/* A worker's spare pooled buffers, so bytes in flight cost no malloc. */
struct outq_pool {
	char **free;
	unsigned int nfree, cap;
	size_t size; /* every pooled buffer's size */
};

int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap);
void outq_pool_destroy(struct outq_pool *p);

static inline size_t outq_bytes(const struct outq *q)
{
	return (size_t)q->lent_len + q->len;
}

/*
 * Bytes q can still take before it holds limit: what waits, plus, while
 * a send reads the pooled buffer, the space before its bytes (appending
 * must not move them, so that space cannot be reused until it ends).
 */
size_t outq_room(const struct outq *q, size_t limit);

/*
 * Appends a copy of data[0, n); the caller checked outq_room against
 * the pool's buffer size. Returns 0 or -ENOMEM.
 */
int outq_append(struct outq_pool *p, struct outq *q, const char *data,
		size_t n);

/* Puts the lender's buffer id, data[0, n), at the front of an empty q. */
void outq_lend(struct outq *q, const char *data, size_t n, unsigned int id);

/*
 * The bytes to send next: the lent ones, else the pooled ones. Returns
 * their count (0 when q is empty) and sets *data.
 */
size_t outq_front(const struct outq *q, const char **data);

/*
 * Marks the front as read by a send in flight until outq_sent. Before
 * a send from the pooled buffer, slides its bytes to the start when
 * fewer than reserve bytes are free behind them, so later appends fit.
 */
void outq_start_send(const struct outq_pool *p, struct outq *q, size_t reserve);

/*
 * n bytes of the front were sent (by a send in flight or not). When the
 * lent buffer is done with (sent whole, or its rest copied into the
 * pooled buffer, ahead of the bytes there, after a short send), returns
 * 1 and its id in *done; else 0. Returns -ENOMEM if the copy failed.
 * The pooled buffer goes back to the pool once empty.
 */
int outq_sent(struct outq_pool *p, struct outq *q, size_t n,
	      unsigned int *done);

/*
 * For reading straight into the queue (a readiness backend): makes room
 * at the pooled buffer's end, at most up to limit bytes queued, sliding
 * the bytes to its start only when the tail is nearly used up. Returns
 * where to read and sets *space, or NULL on -ENOMEM.
 */
char *outq_tail(struct outq_pool *p, struct outq *q, size_t limit,
		size_t *space);

/* n bytes were read into outq_tail's space and are to be sent. */
static inline void outq_tail_filled(struct outq *q, size_t n)
{
	q->len += (uint32_t)n;
}

/* Gives the pooled buffer back (the connection is being freed). */
void outq_release(struct outq_pool *p, struct outq *q);

#endif
