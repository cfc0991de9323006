/*
 * uring_bufs.c - a worker's ring of provided buffers: registered with the
 * kernel, which picks one for each receive, and refilled as we give them
 * back.
 */
#ifdef HAVE_LIBURING

#include <sys/mman.h>
#include <errno.h>
#include <string.h>

#include <liburing.h>

#include "uring.h"

enum {
	BUFS_LOW = 32, /* fewer free than this: provide more */
};

static void *map_anon(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring,
		    unsigned int count, uint32_t size)
{
	struct io_uring_buf_reg reg = {.bgid = URING_BGID};
	unsigned int entries = 1;
	int err;

	memset(b, 0, sizeof(*b));
	b->count = count;
	b->size = size;
	while (entries < count)
		entries <<= 1;
	b->br_bytes = entries * sizeof(struct io_uring_buf);
	b->mem_bytes = (size_t)count * size;
	b->br = map_anon(b->br_bytes);
	b->mem = map_anon(b->mem_bytes);
	if (b->br == NULL || b->mem == NULL)
		return -ENOMEM;
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
	if (b->mem)
		munmap(b->mem, b->mem_bytes);
	if (b->br)
		munmap(b->br, b->br_bytes);
	b->mem = NULL;
	b->br = NULL;
}

void uring_bufs_trim(struct uring_bufs *b, unsigned int setup_flags)
{
	if (!(setup_flags & IORING_SETUP_DEFER_TASKRUN) ||
	    b->nfree < b->nprovided || b->nprovided == 0)
		return;
	madvise(b->mem, (size_t)b->nprovided * b->size, MADV_DONTNEED);
}

void uring_buf_put(struct uring_bufs *b, unsigned int bid)
{
	io_uring_buf_ring_add(b->br, uring_buf(b, bid), b->size,
			      (unsigned short)bid, b->mask, (int)b->adds++);
	b->nfree++;
}

/*
 * The kernel takes buffers in ring order, so every buffer it was ever
 * given gets touched: the set grows (by half, at least BUFS_LOW) only
 * when few are free, so memory follows the load up to count.
 */
void uring_bufs_publish(struct uring_bufs *b)
{
	uint32_t more = b->nprovided / 2;

	if (b->nfree < BUFS_LOW && b->nprovided < b->count) {
		if (more < BUFS_LOW)
			more = BUFS_LOW;
		if (more > b->count - b->nprovided)
			more = b->count - b->nprovided;
		while (more-- > 0)
			uring_buf_put(b, b->nprovided++);
	}
	if (b->adds) {
		io_uring_buf_ring_advance(b->br, (int)b->adds);
		b->adds = 0;
	}
}

#endif /* HAVE_LIBURING */
