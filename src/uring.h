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

/* Newer than the liburing headers some systems have (Debian 12: 2.3). */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4) /* Linux 6.10 */
#endif

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
 * copied. Buffer memory is mapped at once but touched only as the set
 * of buffers ever provided grows, so it follows the load up to count.
 */
struct uring_bufs {
	struct io_uring_buf_ring *br; /* shared with the kernel */
	char *mem; /* count * size bytes */
	size_t br_bytes, mem_bytes;
	uint32_t count, size;
	uint32_t nfree; /* in the kernel's hands, unused */
	uint32_t nprovided; /* ids [0, nprovided) were ever provided */
	unsigned int adds; /* given back since the last publish */
	int mask;
};

enum {
	URING_BGID = 0,
};

/* Returns 0 or -errno; uring_bufs_destroy is safe either way. */
int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring,
		    unsigned int count, uint32_t size);
void uring_bufs_destroy(struct uring_bufs *b);

static inline char *uring_buf(const struct uring_bufs *b, unsigned int bid)
{
	return b->mem + (size_t)bid * b->size;
}

/* A completion used buffer bid: it is ours until uring_buf_put. */
static inline void uring_buf_taken(struct uring_bufs *b)
{
	b->nfree--;
}

/* Gives buffer bid back; the kernel sees it at the next publish. */
void uring_buf_put(struct uring_bufs *b, unsigned int bid);

/*
 * Gives the memory of the buffers back to the kernel when none is in use
 * (each is faulted in again when next used). Only for a ring set up with
 * setup_flags IORING_SETUP_DEFER_TASKRUN: the kernel then fills buffers
 * only while this thread is inside io_uring_enter, so "none is in use",
 * seen between two entries, stays true while the pages go.
 */
void uring_bufs_trim(struct uring_bufs *b, unsigned int setup_flags);

/*
 * Makes every buffer given back visible to the kernel with one release
 * store, and provides more when few are free. Once per loop.
 */
void uring_bufs_publish(struct uring_bufs *b);

#endif /* HAVE_LIBURING */
#endif
