// SPDX-License-Identifier: BSD-2-Clause
/*
 * uring_bufs.c - a worker's ring of provided buffers: registered with the
 * kernel, which picks one for each receive, refilled as we give them
 * back, and sized by the load within the --memory budget.
 */
#ifdef HAVE_LIBURING

#include <sys/mman.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "budget.h"
#include "uring.h"

enum {
	BUFS_LOW = 32, /* fewer free than this (or half): provide more */
};

static void *map_anon(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring,
		    unsigned int count, uint32_t size, struct budget *bud)
{
	struct io_uring_buf_reg reg = {.bgid = URING_BGID};
	unsigned int entries = 1;
	int err;

	memset(b, 0, sizeof(*b));
	b->count = count;
	b->size = size;
	b->budget = bud;
	/* Twice as many entries as buffers: see uring_cqe_buf. */
	while (entries < 2 * count)
		entries <<= 1;
	b->br_bytes = entries * sizeof(struct io_uring_buf);
	b->mem_bytes = (size_t)count * size;
	b->br = map_anon(b->br_bytes);
	b->mem = map_anon(b->mem_bytes);
	b->parked = malloc(count * sizeof(*b->parked));
	b->pos = calloc(count, sizeof(*b->pos));
	if (b->br == NULL || b->mem == NULL || b->parked == NULL ||
	    b->pos == NULL)
		return -ENOMEM;
	/* Lowest ids on top: the memory in use stays at the front. */
	for (uint32_t i = 0; i < count; i++)
		b->parked[i] = (uint16_t)(count - 1 - i);
	b->nparked = count;
	reg.ring_addr = (uintptr_t)b->br;
	reg.ring_entries = entries;
	err = io_uring_register_buf_ring(ring, &reg, 0);
	if (err < 0)
		return err;
	io_uring_buf_ring_init(b->br);
	b->mask = io_uring_buf_ring_mask(entries);
	uring_bufs_publish(b);
	return 0;
}

/* Only once the ring is gone: until then the kernel may write to them. */
void uring_bufs_destroy(struct uring_bufs *b)
{
	if (b->budget)
		budget_give(b->budget,
			    (size_t)(b->nprovided - b->uncharged) * b->size);
	b->nprovided = b->uncharged = 0;
	if (b->mem)
		munmap(b->mem, b->mem_bytes);
	if (b->br)
		munmap(b->br, b->br_bytes);
	free(b->parked);
	free(b->pos);
	b->pos = NULL;
	b->mem = NULL;
	b->br = NULL;
	b->parked = NULL;
}

void uring_bufs_trim(struct uring_bufs *b, unsigned int setup_flags)
{
	if (b->recent) {
		b->recent = false;
		return;
	}
	if (!(setup_flags & IORING_SETUP_DEFER_TASKRUN)) {
		b->touched = false; /* nothing can be given back safely */
		return;
	}
	if (b->nfree < b->nprovided)
		return; /* one is ours: at a later tick */
	madvise(b->mem, b->mem_bytes, MADV_DONTNEED);
	b->touched = false;
	/*
	 * The buffers stay in the kernel's ring (entries cannot be taken
	 * back), but their pages are gone, and so goes their charge, all
	 * but the reserve's: an idle worker keeps no more of --memory than
	 * that, and a small budget is not kept full by a ring nobody uses.
	 */
	if (b->nprovided > URING_BUFS_RESERVE + b->uncharged) {
		budget_give(b->budget,
			    (size_t)(b->nprovided - URING_BUFS_RESERVE -
				     b->uncharged) *
				    b->size);
		b->uncharged = b->nprovided - URING_BUFS_RESERVE;
	}
}

static void provide(struct uring_bufs *b, unsigned int bid)
{
	/* The kernel's tail is 16 bits; the entry is tail + adds. */
	b->pos[bid] = (uint16_t)(b->br->tail + b->adds);
	io_uring_buf_ring_add(b->br, uring_buf(b, bid), b->size,
			      (unsigned short)bid, b->mask, (int)b->adds++);
	b->nfree++;
}

/* Takes bid out of circulation: its pages and its charge go back. */
static void park(struct uring_bufs *b, unsigned int bid)
{
	madvise(uring_buf(b, bid), b->size, MADV_DONTNEED);
	budget_give(b->budget, b->size);
	b->parked[b->nparked++] = (uint16_t)bid;
	b->nprovided--;
}

/*
 * A buffer coming back is parked, beyond the reserve, while the budget
 * is pressed, or while more than half the ring and 2 x BUFS_LOW besides
 * are free: more than a growth step (publish) ever adds, so that a
 * steady load does not park what it provides again at once. An idle
 * ring so shrinks to at most 4 x BUFS_LOW buffers in circulation.
 */
void uring_buf_put(struct uring_bufs *b, unsigned int bid)
{
	if (b->nprovided > URING_BUFS_RESERVE &&
	    (b->nfree > 2 * BUFS_LOW + b->nprovided / 2 ||
	     budget_pressed(b->budget)))
		park(b, bid);
	else
		provide(b, bid);
}

/*
 * Puts one parked buffer in circulation, charged: the reserve whatever
 * the budget, the rest only within it, and not while others wait for
 * memory (what comes back goes to them first). Returns false if not.
 */
static bool grow(struct uring_bufs *b)
{
	if (b->nparked == 0)
		return false;
	if (b->nprovided < URING_BUFS_RESERVE)
		budget_force(b->budget, b->size);
	else if (budget_pressed(b->budget) || !budget_take(b->budget, b->size))
		return false;
	b->nprovided++;
	provide(b, b->parked[--b->nparked]);
	return true;
}

/*
 * The kernel takes buffers in ring order, so every buffer in circulation
 * gets touched: the set starts at the reserve and grows by half (at
 * least the reserve's size) only when fewer than half of it, or than
 * BUFS_LOW, are free, so memory follows the load up to count, and an
 * idle worker keeps only its reserve.
 */
void uring_bufs_publish(struct uring_bufs *b)
{
	uint32_t more = b->nprovided / 2, low = b->nprovided / 2;

	if (low > BUFS_LOW)
		low = BUFS_LOW;
	if (more < URING_BUFS_RESERVE)
		more = URING_BUFS_RESERVE;
	if (b->nparked &&
	    (b->nfree < low || b->nprovided < URING_BUFS_RESERVE)) {
		while (more-- > 0 && grow(b))
			;
	}
	if (b->adds) {
		io_uring_buf_ring_advance(b->br, (int)b->adds);
		b->adds = 0;
	}
}

unsigned int uring_cqe_bufs(const struct uring_bufs *b,
			    const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return 0;
	if (!b->bundle)
		return 1;
	if (cqe->res <= 0)
		return 0;
	return ((unsigned int)cqe->res + b->size - 1) / b->size;
}

uint16_t uring_cqe_pos(const struct uring_bufs *b,
		       const struct io_uring_cqe *cqe)
{
	return b->pos[cqe->flags >> IORING_CQE_BUFFER_SHIFT];
}

unsigned int uring_cqe_buf(struct uring_bufs *b, const struct io_uring_cqe *cqe,
			   uint16_t start, unsigned int i)
{
	unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	if (i)
		bid = b->br->bufs[(uint16_t)(start + i) & b->mask].bid;
	uring_buf_taken(b);
	return bid;
}

bool uring_cqe_sane(const struct uring_bufs *b, const struct io_uring_cqe *cqe,
		    uint16_t start, unsigned int nbufs)
{
	unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	return nbufs < 2 || b->br->bufs[start & b->mask].bid == bid;
}

#endif /* HAVE_LIBURING */
