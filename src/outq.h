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
	uint8_t flight; /* enum outq_flight */
	uint8_t flight_lent; /* lent buffers the send in flight covers */
};

/*
 * A worker's spare pooled buffers, so bytes in flight cost no malloc,
 * and the lender's buffers (id i is lend_size bytes at lend_base + i *
 * lend_size), for a backend that lends.
 */
struct outq_pool {
	char **free;
	unsigned int nfree, cap;
	size_t size; /* every pooled buffer's size */
	const char *lend_base;
	size_t lend_size;
};

/* Pooled buffers of size bytes. Returns 0 or -ENOMEM. */
int outq_pool_init(struct outq_pool *p, size_t size, unsigned int cap);
void outq_pool_destroy(struct outq_pool *p);

/* Gives the spare pooled buffers' memory back to the kernel. */
void outq_pool_trim(struct outq_pool *p);

/* The bytes queued, lent and pooled. */
size_t outq_bytes(const struct outq *q);

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
