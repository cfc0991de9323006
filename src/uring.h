/*
 * uring.h - private to the io_uring backend (backend_uring.c,
 * uring_probe.c, uring_bufs.c): the user_data layout, what the kernel
 * offers, and the ring of provided buffers.
 */
#ifndef ECHOD_URING_H
#define ECHOD_URING_H

#ifdef HAVE_LIBURING

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

#include "conn.h"

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
	OP_CTL, /* the poll on the worker's ctl_fd, main's requests */
	OP_CANCEL, /* a cancel request */
	OP_LPOLL, /* a listener's poll while out of descriptors */
	OP_UPOLL, /* a UDP socket's poll; the core does the rest */
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
	uint32_t nparked;
	unsigned int adds; /* given back since the last publish */
	int mask;
	bool touched; /* a buffer was used since the last trim */
	bool recent; /* ... since the last trim tick */
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

#endif /* HAVE_LIBURING */
#endif
