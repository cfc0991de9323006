// SPDX-License-Identifier: BSD-2-Clause
/*
 * uring.h - private to the io_uring backend (backend_uring.c,
 * uring_conn.c, uring_accept.c, uring_probe.c, uring_bufs.c): the
 * user_data layout, what the kernel offers, the ring of provided
 * buffers, and a worker's loop state.
 */
#ifndef ECHOD_URING_H
#define ECHOD_URING_H

#ifdef HAVE_LIBURING

#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

#include "budget.h"
#include "conn.h"
#include "core.h"
#include "options.h"
#include "splice.h"

struct worker;

/* Newer than the liburing headers some systems have (Debian 12: 2.3). */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4) /* Linux 6.10 */
#endif

struct budget;

/*
 * user_data, the tag the kernel hands back with each completion:
 *
 *   63..60  op           enum ud_op
 *   59..55  zero
 *   54..24  generation   CONN_GEN_BITS, as in the slot table
 *   23..0   slot         a connection's, or a listener's index
 *
 * Never a pointer or an fd, so a completion for a slot since reused is
 * recognised as stale.
 */
enum ud_op {
	OP_ACCEPT = 1, /* a listener's multishot accept */
	OP_RECV, /* a connection's receive */
	OP_SEND, /* a connection's send */
	OP_SEND_COUNTED, /* ... counted on to complete at submission */
	OP_CTL, /* the poll on the worker's ctl_fd, main's requests */
	OP_CANCEL, /* a cancel request */
	OP_LPOLL, /* a listener's poll while out of descriptors */
	OP_UPOLL, /* a UDP socket's poll; the core does the rest */
	OP_SPOLL, /* a streaming connection's poll: its bytes are spliced */
	OP_TIMER, /* the timeout for the core's next deadline */
	OP_TIMER_MOVE, /* a request moving it sooner */
	OP_CLOSE, /* a closed connection's descriptor */
	OP_SHORT, /* a NOP whose completion says a lent send fell short */
};

#define UD_OP_SHIFT 60
#define UD_SLOT_BITS 24
#define UD_SLOT_MASK ((1u << UD_SLOT_BITS) - 1)

_Static_assert(UD_SLOT_BITS + CONN_GEN_BITS <= UD_OP_SHIFT,
	       "user_data fields overlap");

static inline uint64_t ud_pack(enum ud_op op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)op << UD_OP_SHIFT | (uint64_t)gen << UD_SLOT_BITS |
	       slot;
}

static inline enum ud_op ud_op(uint64_t ud)
{
	return (enum ud_op)(ud >> UD_OP_SHIFT);
}

static inline uint32_t ud_gen(uint64_t ud)
{
	return (uint32_t)(ud >> UD_SLOT_BITS) & CONN_GEN_MASK;
}

static inline uint32_t ud_slot(uint64_t ud)
{
	return (uint32_t)ud & UD_SLOT_MASK;
}

/* ------------------------------------------------ uring_probe.c */

/*
 * Returns 0 when this process can run the io_uring backend, else -errno
 * with the reason: ECHOD_DISABLE_IO_URING set, io_uring_setup refused
 * (sysctl, seccomp), or a kernel too old for what the backend uses.
 */
int uring_probe(char *why, size_t len);

/*
 * Creates a worker's ring with the cheapest task-running mode the kernel
 * has. Returns 0 or -errno.
 */
int uring_setup(struct io_uring *ring, unsigned int entries,
		unsigned int cq_entries);

/*
 * True when the kernel ends a multishot receive after a byte limit
 * (Linux 6.17 and later), so that one receive never brings in more than
 * a connection has room for; else receives are one-shot.
 */
bool uring_recv_limit_works(struct io_uring *ring);

/*
 * True when a receive can fill several provided buffers with one
 * completion (a bundle, Linux 6.10 and later): the buffers taken are
 * the next ones in ring order, as many as the bytes need. False also
 * when ECHOD_URING_NO_BUNDLE is set (a debugging aid: the fallback).
 */
bool uring_recv_bundle_works(struct io_uring *ring);

/* ------------------------------------------------- uring_bufs.c */

/*
 * A worker's ring of provided buffers, group 0. The kernel picks a free
 * buffer for each receive; we give it back once its bytes are sent or
 * copied. Buffer memory is mapped at once but touched only as buffers
 * are put in circulation, and the set in circulation follows the load:
 * it grows when few are free, within --memory (each buffer in
 * circulation is charged, since the kernel may fill any of them), and
 * shrinks as buffers come back while many are free or the budget is
 * pressed: such a buffer is parked, its pages given back (madvise) and
 * its charge too. URING_BUFS_RESERVE stay in circulation whatever the
 * budget, so that a worker's readers always have somewhere to receive.
 */
struct uring_bufs {
	struct io_uring_buf_ring *br; /* shared with the kernel */
	char *mem; /* count * size bytes */
	size_t br_bytes, mem_bytes;
	uint32_t count, size;
	uint32_t nfree; /* in the kernel's hands, unused */
	uint32_t nprovided; /* in circulation: in the ring or ours */
	uint16_t *parked; /* ids out of circulation (a stack) */
	uint16_t *pos; /* by id: the ring entry it was last given in */
	uint32_t nparked;
	/*
	 * Provided buffers whose pages and charge went back at a trim (the
	 * ring idle, all free): charged again as the kernel fills them.
	 */
	uint32_t uncharged;
	unsigned int adds; /* given back since the last publish */
	int mask;
	bool touched; /* a buffer was used since the last trim */
	bool recent; /* ... since the last trim tick */
	bool bundle; /* a receive may fill several (IORING_RECVSEND_BUNDLE) */
	struct budget *budget;
};

enum {
	URING_BGID = 0,
	URING_BUFS_RESERVE = 4, /* in circulation whatever --memory says */
};

/*
 * count buffers of size bytes at most, charged to budget b. Returns 0
 * or -errno; uring_bufs_destroy is safe either way.
 */
int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring,
		    unsigned int count, uint32_t size, struct budget *bud);
void uring_bufs_destroy(struct uring_bufs *b);

static inline char *uring_buf(const struct uring_bufs *b, unsigned int bid)
{
	return b->mem + (size_t)bid * b->size;
}

/* A completion used buffer bid: it is ours until uring_buf_put. */
static inline void uring_buf_taken(struct uring_bufs *b)
{
	b->nfree--;
	b->touched = b->recent = true;
	/* Its pages are back: the kernel has written to them. */
	if (b->uncharged) {
		b->uncharged--;
		budget_force(b->budget, b->size);
	}
}

/*
 * Gives buffer bid back: to the ring (the kernel sees it at the next
 * publish), or parked when the ring has more than it needs.
 */
void uring_buf_put(struct uring_bufs *b, unsigned int bid);

/*
 * At the core's trim tick: gives the pages of every buffer back to the
 * kernel once the ring has been idle for a tick and none is in use
 * (each is faulted in again when next used); touched stays set while
 * there is still something to give back later. The pages go only for
 * a ring set up with setup_flags IORING_SETUP_DEFER_TASKRUN: the kernel
 * then fills buffers only while this thread is inside io_uring_enter,
 * so "none is in use", seen between two entries, stays true while the
 * pages go.
 */
void uring_bufs_trim(struct uring_bufs *b, unsigned int setup_flags);

/*
 * Makes every buffer given back visible to the kernel with one release
 * store, and puts more in circulation when few are free. Once per loop.
 */
void uring_bufs_publish(struct uring_bufs *b);

/*
 * How many ring buffers a receive's completion took: one, or for a
 * bundle as many as its bytes fill (none without bytes: the kernel then
 * keeps the buffer it looked at).
 */
unsigned int uring_cqe_bufs(const struct uring_bufs *b,
			    const struct io_uring_cqe *cqe);

/*
 * Where in the ring the first buffer a completion took sat: from the id
 * the completion names, never from a count of the kernel's progress, as
 * completions of different receives need not come in the order they
 * took buffers. Read before any of its buffers is given back (which
 * moves its position).
 */
uint16_t uring_cqe_pos(const struct uring_bufs *b,
		       const struct io_uring_cqe *cqe);

/*
 * The id of the i'th buffer a completion took, its first at ring entry
 * start; it is ours now (uring_buf_taken). The first is the id the
 * completion names; a bundle's others are the entries after it, which
 * the ring (twice as many entries as buffers) does not give again
 * before they come back.
 */
unsigned int uring_cqe_buf(struct uring_bufs *b, const struct io_uring_cqe *cqe,
			   uint16_t start, unsigned int i);

/*
 * Whether a bundle's first entry still names the buffer the completion
 * does; if not, the entries after it cannot be trusted either.
 */
bool uring_cqe_sane(const struct uring_bufs *b, const struct io_uring_cqe *cqe,
		    uint16_t start, unsigned int nbufs);

/* ------------------------- backend_uring.c and uring_accept.c */

/*
 * A sendmsg's header and iovec, one per SQE (by its index), so that they
 * need no room per connection: the kernel has read them once the SQE is
 * submitted (IORING_FEAT_SUBMIT_STABLE, Linux 5.5), before the SQE can
 * be handed out again.
 */
struct send_msg {
	struct msghdr msg;
	struct iovec iov[OUTQ_LENT_MAX];
};

#define WAIT_NONE UINT32_MAX /* the end of the wait list */

enum accept_state {
	A_ARMED = 1 << 0, /* a request is armed on the listener */
	A_CANCEL = 1 << 1, /* ... and its cancellation was asked for */
	A_POLL = 1 << 2, /* ... it is a poll, not a multishot accept */
};

/* One worker's loop state; lives on the worker thread's stack. */
struct uloop {
	struct core core;
	struct io_uring ring;
	struct uring_bufs bufs;
	struct splicer splicer; /* for streaming connections */
	uint32_t wait_head, wait_tail, nwait;
	struct send_msg *msgs; /* one per SQE */
	uint64_t *kick; /* (generation, slot) of connections to send for */
	uint32_t nkick, kick_cap;
	unsigned int ops; /* requests whose last CQE is still due */
	unsigned int reaped; /* completions the last wakeup brought in */
	/*
	 * Requests queued since the last wait that complete while they are
	 * submitted (submit_wait), and how many the last submission had.
	 */
	unsigned int at_submit, at_submit_last;
	uint8_t accept_state[OPTIONS_MAX_LISTEN];
	bool udp_armed[OPTIONS_MAX_BINDS];
	bool ring_ok, stopping, ctl_armed;
	bool timer_moves; /* the kernel can move a timeout (Linux 5.11) */
	uint64_t timer_at; /* when OP_TIMER expires (core ms); 0: none */
	struct __kernel_timespec timer_ts; /* read by the kernel at submit */
	bool recv_limit; /* multishot receives can be limited */
	bool retry; /* an SQE was lacking: run the whole wait list */
	bool reaping; /* completions are being handled: sends wait */
};

/*
 * The two ways every io_uring file makes a request, inline here so that
 * the loop file and the files it calls share them without calling back.
 *
 * Returns a free SQE, counted as a request whose CQE is due; submits
 * what is queued to make room when the ring is full. NULL if even that
 * fails: the caller puts its connection on the wait list (l->retry).
 */
static inline struct io_uring_sqe *uloop_get_sqe(struct uloop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (sqe == NULL) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe == NULL) {
		l->retry = true;
		return NULL;
	}
	l->ops++;
	return sqe;
}

/* Asks the kernel to end the request tagged ud. Returns 0 or -EBUSY. */
static inline int uloop_cancel(struct uloop *l, uint64_t ud)
{
	struct io_uring_sqe *sqe = uloop_get_sqe(l);

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, ud, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
	return 0;
}

/* uring_conn.c: serves fd, accepted on listener lfd (-1: from main). */
void uloop_add_conn(struct uloop *l, int fd, int lfd);

/* The bytes the backend keeps per connection (conn_priv). */
size_t uloop_conn_size(void);

/* A completion of OP_RECV, OP_SEND(_COUNTED) or OP_SPOLL. */
void uloop_conn_cqe(struct uloop *l, const struct io_uring_cqe *cqe);

/*
 * Brings c's requests in line with its state: a send while bytes wait, a
 * receive (or a stream's poll) while there is room; the close once all
 * is out. c may be closed.
 */
void uloop_update(struct uloop *l, struct conn *c);

/* Ends c: the core's close, then its requests. c is not to be used again. */
void uloop_close_conn(struct uloop *l, struct conn *c, enum close_reason why);

/* After a wakeup's completions: the sends held back, then the waiters. */
void uloop_run_kicks(struct uloop *l);
void uloop_run_waiters(struct uloop *l);

/* uring_accept.c: arms what is not armed (not while stopping or paused). */
void uloop_arm_listeners(struct uloop *l);
void uloop_arm_udp(struct uloop *l);

/* Cancels the listeners' requests: all, or only the multishot accepts. */
void uloop_stop_listeners(struct uloop *l, bool polls_too);

/* The completions of OP_ACCEPT, OP_LPOLL and OP_UPOLL for index i. */
void uloop_handle_accept(struct uloop *l, uint32_t i,
			 const struct io_uring_cqe *cqe);
void uloop_handle_lpoll(struct uloop *l, uint32_t i, int res);
void uloop_handle_udp(struct uloop *l, uint32_t i, int res);

#endif /* HAVE_LIBURING */
#endif
