/*
 * backend_uring.c - the completion backend: one io_uring per worker with
 * multishot accept, multishot receive into a ring of provided buffers
 * shared by the worker's connections, and sends straight from those
 * buffers. Needs Linux 6.0 (multishot receive; buffer rings came in
 * 5.19); uses IORING_SETUP_SINGLE_ISSUER and IORING_SETUP_DEFER_TASKRUN
 * (6.1) where the kernel has them.
 *
 * A connection's outgoing bytes are one stream, sent in order with at
 * most one send in flight: first its pending buffer (conn.c, bounded by
 * --max-pending), then a chain of ring buffers received but not yet
 * sent. The fast path never copies: a buffer that arrives when nothing
 * waits is sent in place with MSG_DONTWAIT and goes back to the ring when
 * that send completes. When the socket takes less (a slow reader), the
 * rest moves into the pending buffer, the ring buffers go back at once,
 * and the next send waits for room in the socket; so a client that does
 * not read holds pending bytes, as with epoll, and no ring buffer. While
 * bytes are pending, receives are one-shot and armed only when a whole
 * ring buffer fits behind them, so --max-pending is not passed; multishot
 * receive runs only while nothing is pending.
 *
 * When the ring runs dry, a receive ends with -ENOBUFS; the connection
 * then waits on a list and its receive is re-armed as buffers come back.
 * ECHOD_URING_BUFFERS=N (1..32768, default 256) sets how many buffers a
 * worker's ring may have, so tests can run more readers than buffers.
 * UDP sockets are served by udp.c from a one-shot poll.
 */
#ifdef HAVE_LIBURING

#include <sys/mman.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "backend.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "udp.h"
#include "worker.h"

enum {
	SQ_ENTRIES = 512,
	CQ_ENTRIES = 8192,
	DEFAULT_BUFFERS = 256, /* 16 MiB of 64 KiB buffers at most */
	MAX_BUFFERS = 32768, /* buffer ids are 16 bits; BID_NONE stays free */
	BUF_SIZE = 65536,
	BUFS_LOW = 32, /* fewer free than this: give the kernel more */
	/*
	 * Room past --max-pending in a pending buffer (touched only when
	 * used) for what one multishot receive delivers in one go before
	 * its cancel takes effect; beyond it, bytes stay in ring buffers.
	 */
	SPILL = 256 * 1024,
	BGID = 0, /* each worker's ring has one buffer group */
	ACCEPTS_PER_WAKEUP = 64,
	POOL_CACHE = 64, /* pending buffers kept for reuse */
	ACCEPT_PAUSE_MS = 100, /* when out of descriptors */
	DRAIN_MS = 2000, /* bound on waiting for the kernel at stop */
	SLOT_BITS = 24,
	BATCH_PER_CONNS = 8, /* wait for one completion per 8 conns... */
	BATCH_MAX = 16, /* ... up to 16 ... */
	BATCH_WAIT_NS = 50000, /* ... for at most 50 us */
};

#define BID_NONE 0xffffu
#define WAIT_NONE UINT32_MAX
#define SLOT_MASK ((1u << SLOT_BITS) - 1)

/*
 * user_data: the operation in the top 4 bits, then the connection's
 * generation (31 bits) and slot (24 bits); listeners use the slot field
 * for their index. Never a pointer or an fd, so a completion for a slot
 * since reused is recognised.
 */
enum op {
	OP_ACCEPT = 1,
	OP_RECV,
	OP_SEND,
	OP_STOP,
	OP_CANCEL,
	OP_LPOLL, /* a listener's poll while out of descriptors */
	OP_UPOLL, /* a UDP socket's poll; udp.c does the rest */
};

enum uconn_state {
	U_RECV = 1 << 0, /* a receive is armed */
	U_MULTI = 1 << 1, /* ... it is multishot */
	U_CANCEL = 1 << 2, /* ... and its cancellation was asked for */
	U_SEND = 1 << 3, /* a send is in flight */
	U_ZC = 1 << 4, /* ... from the chain's first ring buffer */
	U_SCANCEL = 1 << 5, /* ... and its cancellation was asked for */
	U_WAIT = 1 << 6, /* on the wait list */
	U_CLOSING = 1 << 7, /* closed; freed once nothing is in flight */
	U_QUIET = 1 << 8, /* the last receive emptied the socket */
};

enum accept_state {
	A_ARMED = 1 << 0, /* a request is armed on the listener */
	A_CANCEL = 1 << 1, /* ... and its cancellation was asked for */
	A_POLL = 1 << 2, /* ... it is a poll, not a multishot accept */
};

/*
 * The backend's part of a connection, kept by slot beside the conn_table
 * (so an idle connection costs this plus struct conn, and no buffer).
 */
struct uconn {
	uint32_t send_len; /* bytes asked of the send in flight */
	uint32_t chain_bytes; /* unsent bytes in the chain */
	uint32_t wait_next; /* next slot on the wait list */
	uint16_t head, tail; /* the chain, oldest first; BID_NONE if empty */
	uint16_t inflight; /* requests in the kernel naming this slot */
	uint16_t state; /* enum uconn_state */
};

/* A ring buffer in a chain: its unsent bytes and the next buffer. */
struct ubuf {
	uint32_t off, len;
	uint16_t next;
};

/* One worker's loop state; lives on the worker thread's stack. */
struct loop {
	struct io_uring ring;
	struct worker *w;
	const struct options *o;
	struct io_uring_buf_ring *br; /* shared with the kernel */
	char *bufs; /* nbufs * buf_size bytes */
	struct ubuf *binfo; /* by buffer id */
	struct uconn *u; /* by connection slot */
	size_t br_bytes, bufs_bytes;
	uint32_t nbufs, buf_size, bufs_free, nu;
	uint32_t nprovided; /* buffers ids [0, nprovided) were ever given */
	unsigned int br_adds; /* buffers given back since the last publish */
	int br_mask;
	struct conn_pool pool;
	struct conn_table table;
	struct conn_lists lists; /* every open connection, by deadline */
	uint32_t wait_head, wait_tail, nwait;
	unsigned int ops; /* requests whose last CQE is still due */
	int reserve_fd; /* spare descriptor, given up to refuse on EMFILE */
	uint8_t accept_state[OPTIONS_MAX_BINDS];
	bool udp_armed[OPTIONS_MAX_BINDS];
	struct udp_worker udp;
	uint64_t now_ms;
	uint64_t paused_until; /* accepting paused (EMFILE) until then */
	bool ring_ok, exhausted, stopping, stop_armed;
	bool retry; /* an SQE was lacking: run the whole wait list */
	unsigned int reaped; /* completions handled by the last wakeup */
};

static void update(struct loop *l, struct conn *c);
static void close_conn(struct loop *l, struct conn *c, const char *why);

static uint64_t ud_make(unsigned int op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)op << 60 | (uint64_t)gen << SLOT_BITS | slot;
}

static uint64_t ud_conn(unsigned int op, const struct conn *c)
{
	return ud_make(op, c->gen, c->slot);
}

static void update_clock(struct loop *l)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	l->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* -------------------------------------------------------------- probe */

/* Explains an io_uring_setup failure; the sysctl is the usual cause. */
static void setup_reason(int err, char *why, size_t len)
{
	const char *what = strerror(-err);
	char val[16] = "";
	int fd;

	fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, val, sizeof(val) - 1) < 0)
			val[0] = '\0';
		close(fd);
	}
	val[strcspn(val, "\n")] = '\0';
	if ((err == -EPERM || err == -EACCES) && val[0] && val[0] != '0')
		snprintf(why, len,
			 "io_uring_setup: %s (kernel.io_uring_disabled=%s)",
			 what, val);
	else if (err == -EPERM || err == -EACCES)
		snprintf(
			why, len,
			"io_uring_setup: %s (seccomp filter or kernel.io_uring_disabled?)",
			what);
	else if (err == -ENOSYS)
		snprintf(why, len,
			 "io_uring_setup: %s (kernel without io_uring?)", what);
	else
		snprintf(why, len, "io_uring_setup: %s", what);
}

/*
 * Checks that the ring offers what run() relies on: buffer rings (5.19)
 * and multishot receive (6.0), by receiving one byte through a
 * socketpair into a one-buffer ring at page. Returns 0 or -errno.
 */
static int probe_multishot(struct io_uring *ring, void *page, char *why,
			   size_t len)
{
	struct io_uring_buf_reg reg = {
		.ring_addr = (uintptr_t)page, .ring_entries = 1, .bgid = BGID};
	struct io_uring_buf_ring *br = page;
	struct __kernel_timespec ts = {.tv_sec = 1};
	struct io_uring_cqe *cqe = NULL;
	struct io_uring_sqe *sqe;
	int sv[2], err;

	err = io_uring_register_buf_ring(ring, &reg, 0);
	if (err < 0) {
		snprintf(why, len, "buffer ring: %s (needs Linux 5.19)",
			 strerror(-err));
		return err;
	}
	io_uring_buf_ring_init(br);
	io_uring_buf_ring_add(br, (char *)page + 2048, 64, 0, 0, 0);
	io_uring_buf_ring_advance(br, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, len, "socketpair: %s", strerror(errno));
		return -errno;
	}
	sqe = io_uring_get_sqe(ring);
	err = -EBUSY;
	if (sqe && write(sv[1], "x", 1) == 1) {
		io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
		err = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts,
						       NULL);
	}
	if (err >= 0 && cqe &&
	    (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_MORE)))
		err = cqe->res < 0 ? cqe->res : -EINVAL;
	close(sv[0]);
	close(sv[1]);
	if (err < 0 || cqe == NULL) {
		snprintf(why, len, "multishot recv: %s (needs Linux 6.0)",
			 strerror(err < 0 ? -err : ETIME));
		return err < 0 ? err : -ETIME;
	}
	return 0;
}

static int probe_ring(struct io_uring *ring, void *page, char *why, size_t len)
{
	static const int ops[] = {IORING_OP_ACCEPT, IORING_OP_RECV,
				  IORING_OP_SEND, IORING_OP_POLL_ADD,
				  IORING_OP_ASYNC_CANCEL};
	unsigned int need = IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL |
			    IORING_FEAT_EXT_ARG;
	struct io_uring_probe *p;
	bool all = true;

	if ((ring->features & need) != need) {
		snprintf(
			why, len,
			"io_uring lacks fast poll or ext arg (needs Linux 6.0)");
		return -EOPNOTSUPP;
	}
	p = io_uring_get_probe_ring(ring);
	for (size_t i = 0; p && i < sizeof(ops) / sizeof(ops[0]); i++)
		all &= io_uring_opcode_supported(p, ops[i]) != 0;
	io_uring_free_probe(p);
	if (p == NULL || !all) {
		snprintf(why, len,
			 "io_uring lacks network operations (needs Linux 6.0)");
		return -EOPNOTSUPP;
	}
	return probe_multishot(ring, page, why, len);
}

/*
 * Returns 0 when this process can run the io_uring backend, else -errno
 * with the reason: ECHOD_DISABLE_IO_URING set, io_uring_setup refused
 * (sysctl, seccomp), or a kernel too old for what run() uses.
 */
static int probe(char *why, size_t len)
{
	const char *env = getenv("ECHOD_DISABLE_IO_URING");
	struct io_uring ring;
	void *page;
	int err;

	if (env && env[0] && strcmp(env, "0") != 0) {
		snprintf(why, len, "disabled by ECHOD_DISABLE_IO_URING");
		return -ENOSYS;
	}
	err = io_uring_queue_init(8, &ring, 0);
	if (err < 0) {
		setup_reason(err, why, len);
		return err;
	}
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		io_uring_queue_exit(&ring);
		snprintf(why, len, "mmap: %s", strerror(errno));
		return -ENOMEM;
	}
	err = probe_ring(&ring, page, why, len);
	/* The ring goes first: it may still point into the page. */
	io_uring_queue_exit(&ring);
	munmap(page, 4096);
	return err;
}

/* ------------------------------------------------- ring and buffers */

/*
 * Returns a free SQE, counted as a request whose CQE is due; submits
 * what is queued to make room when the ring is full. NULL if even that
 * fails: the caller puts its connection on the wait list.
 */
static struct io_uring_sqe *get_sqe(struct loop *l)
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

/*
 * Asks the kernel to end the request tagged ud. The cancel's own tag is
 * ud with OP_CANCEL on top and ud's operation below it, so a cancel that
 * missed (a multishot receive between two rounds is not found) can be
 * told to its connection and tried again. Returns 0 or -EBUSY.
 */
static int cancel(struct loop *l, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, ud, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)OP_CANCEL << 60 |
					     (ud >> 60) << 56 |
					     (ud & ((1ULL << 56) - 1)));
	return 0;
}

static char *buf_at(const struct loop *l, unsigned int bid)
{
	return l->bufs + (size_t)bid * l->buf_size;
}

/* Gives buffer bid back to the ring; the kernel sees it at publish. */
static void recycle(struct loop *l, unsigned int bid)
{
	io_uring_buf_ring_add(l->br, buf_at(l, bid), l->buf_size,
			      (unsigned short)bid, l->br_mask,
			      (int)l->br_adds++);
	l->bufs_free++;
}

/*
 * One release store for all the buffers given back in this loop. The
 * kernel takes buffers in ring order, so every buffer it was ever given
 * gets touched: the set grows (by half, at least BUFS_LOW) only when
 * few are free, so memory follows the load up to ECHOD_URING_BUFFERS.
 */
static void publish_bufs(struct loop *l)
{
	uint32_t more = l->nprovided / 2;

	if (l->bufs_free < BUFS_LOW && l->nprovided < l->nbufs) {
		if (more < BUFS_LOW)
			more = BUFS_LOW;
		if (more > l->nbufs - l->nprovided)
			more = l->nbufs - l->nprovided;
		while (more-- > 0)
			recycle(l, l->nprovided++);
	}
	if (l->br_adds) {
		io_uring_buf_ring_advance(l->br, (int)l->br_adds);
		l->br_adds = 0;
	}
}

static unsigned int buffers_wanted(void)
{
	const char *env = getenv("ECHOD_URING_BUFFERS");
	const char *errstr;
	long long n;

	if (env == NULL)
		return DEFAULT_BUFFERS;
	n = options_number(env, 1, MAX_BUFFERS, &errstr);
	if (errstr) {
		log_warn("ECHOD_URING_BUFFERS %s: %s; using %d", env, errstr,
			 DEFAULT_BUFFERS);
		return DEFAULT_BUFFERS;
	}
	return (unsigned int)n;
}

static void *map_anon(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Sets up the worker's buffer ring: room for nbufs buffers of buf_size
 * bytes (at most --max-pending, so one receive never passes that bound),
 * mapped but untouched; publish_bufs hands them out. Returns 0 or -errno.
 */
static int bufs_init(struct loop *l)
{
	struct io_uring_buf_reg reg = {.bgid = BGID};
	unsigned int entries = 1;
	int err;

	l->nbufs = buffers_wanted();
	l->buf_size = l->o->max_pending < BUF_SIZE ? (uint32_t)l->o->max_pending
						   : BUF_SIZE;
	while (entries < l->nbufs)
		entries <<= 1;
	l->br_bytes = entries * sizeof(struct io_uring_buf);
	l->bufs_bytes = (size_t)l->nbufs * l->buf_size;
	l->br = map_anon(l->br_bytes);
	l->bufs = map_anon(l->bufs_bytes);
	l->binfo = calloc(l->nbufs, sizeof(*l->binfo));
	if (l->br == NULL || l->bufs == NULL || l->binfo == NULL)
		return -ENOMEM;
	reg.ring_addr = (uintptr_t)l->br;
	reg.ring_entries = entries;
	err = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (err < 0)
		return err;
	io_uring_buf_ring_init(l->br);
	l->br_mask = io_uring_buf_ring_mask(entries);
	publish_bufs(l);
	return 0;
}

/*
 * Creates the ring with the cheapest task-running mode the kernel has:
 * DEFER_TASKRUN runs completions only when we enter the kernel to wait,
 * so one io_uring_enter per loop both submits and reaps a batch.
 */
static int ring_init(struct loop *l)
{
	static const unsigned int modes[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	int err = -EINVAL;

	for (size_t i = 0; i < 3 && err == -EINVAL; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = modes[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = CQ_ENTRIES;
		err = io_uring_queue_init_params(SQ_ENTRIES, &l->ring, &p);
		if (err == 0)
			log_debug("io_uring set up with flags %#x", p.flags);
	}
	if (err < 0)
		return err;
	l->ring_ok = true;
	/* Spares the kernel an fd lookup on every io_uring_enter. */
	io_uring_register_ring_fd(&l->ring);
	return 0;
}

/* ------------------------------------------------------- connections */

/* Makes l->u cover slot (the conn table grew). Returns 0 or -ENOMEM. */
static int uconn_fit(struct loop *l, uint32_t slot)
{
	uint32_t n = l->table.nslots;
	struct uconn *u;

	if (slot < l->nu)
		return 0;
	u = realloc(l->u, n * sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	memset(u + l->nu, 0, (n - l->nu) * sizeof(*u));
	l->u = u;
	l->nu = n;
	return 0;
}

static void chain_push(struct loop *l, struct uconn *u, unsigned int bid,
		       uint32_t len)
{
	l->binfo[bid] = (struct ubuf){.off = 0, .len = len, .next = BID_NONE};
	if (u->tail == BID_NONE)
		u->head = (uint16_t)bid;
	else
		l->binfo[u->tail].next = (uint16_t)bid;
	u->tail = (uint16_t)bid;
	u->chain_bytes += len;
}

/* Drops the chain's first buffer, sent or not, back into the ring. */
static void chain_pop(struct loop *l, struct uconn *u)
{
	unsigned int bid = u->head;

	u->chain_bytes -= l->binfo[bid].len;
	u->head = l->binfo[bid].next;
	if (u->head == BID_NONE)
		u->tail = BID_NONE;
	recycle(l, bid);
}

static void wait_push(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];

	if (u->state & U_WAIT)
		return;
	u->state |= U_WAIT;
	u->wait_next = WAIT_NONE;
	if (l->wait_tail == WAIT_NONE)
		l->wait_head = c->slot;
	else
		l->u[l->wait_tail].wait_next = c->slot;
	l->wait_tail = c->slot;
	l->nwait++;
}

static struct conn *wait_pop(struct loop *l)
{
	uint32_t slot = l->wait_head;

	l->wait_head = l->u[slot].wait_next;
	if (l->wait_head == WAIT_NONE)
		l->wait_tail = WAIT_NONE;
	l->nwait--;
	l->u[slot].state &= (uint16_t)~U_WAIT;
	return l->table.slots[slot];
}

/*
 * Frees c once the kernel holds nothing of it: no request in flight
 * (which also means no ring buffer or pending byte being read) and no
 * place on the wait list.
 */
static void maybe_free(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];

	if (u->inflight || (u->state & U_WAIT))
		return;
	while (u->head != BID_NONE)
		chain_pop(l, u);
	u->state = 0;
	conn_release(&l->pool, c);
	close(c->fd);
	worker_conn_put(l->w);
	conn_table_put(&l->table, c);
}

/*
 * Asks the kernel to end c's requests (each still completes with a CQE).
 * A send with MSG_DONTWAIT completes at once and needs no cancel.
 * Returns 0, or -EBUSY when an SQE was lacking (call again later).
 */
static int cancel_all(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];

	if ((u->state & (U_RECV | U_CANCEL)) == U_RECV) {
		if (cancel(l, ud_conn(OP_RECV, c)) < 0)
			return -EBUSY;
		u->state |= U_CANCEL;
	}
	if ((u->state & (U_SEND | U_ZC | U_SCANCEL)) == U_SEND) {
		if (cancel(l, ud_conn(OP_SEND, c)) < 0)
			return -EBUSY;
		u->state |= U_SCANCEL;
	}
	return 0;
}

/*
 * Ends c for good as epoll's close_conn does (stats, log, lists); the
 * memory and the descriptor go once the kernel has returned everything.
 * The caller must not use c afterwards.
 */
static void close_conn(struct loop *l, struct conn *c, const char *why)
{
	struct uconn *u = &l->u[c->slot];

	worker_count_close(l->w, c, why);
	conn_lists_remove(&l->lists, c);
	u->state |= U_CLOSING;
	if (cancel_all(l, c) < 0)
		wait_push(l, c);
	maybe_free(l, c);
}

/*
 * Bytes c's stream can grow by before it holds limit bytes. While the
 * kernel reads pending bytes for a send, appending must not move them,
 * so only the pending buffer's tail counts.
 */
static size_t room_below(const struct loop *l, const struct conn *c,
			 size_t limit)
{
	const struct uconn *u = &l->u[c->slot];
	size_t used = (size_t)c->len + u->chain_bytes;

	if ((u->state & (U_SEND | U_ZC)) == U_SEND)
		used += c->off;
	return used < limit ? limit - used : 0;
}

/* What c may still receive: a receive is armed only if a buffer fits. */
static size_t intake(const struct loop *l, const struct conn *c)
{
	return room_below(l, c, l->o->max_pending);
}

/*
 * Moves the chain's bytes, in order, to the end of the pending buffer as
 * far as it goes (--max-pending plus SPILL, for what a multishot receive
 * delivered past the bound), and gives the emptied ring buffers back.
 * Only while no send is in flight: conn_keep may move pending bytes.
 * Returns 0 or -ENOMEM.
 */
static int absorb(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];
	struct ubuf *b;
	size_t n;

	while (u->head != BID_NONE) {
		b = &l->binfo[u->head];
		n = l->pool.size - c->len;
		if (n > b->len)
			n = b->len;
		if (n == 0)
			return 0;
		if (conn_keep(&l->pool, c, buf_at(l, u->head) + b->off, n) < 0)
			return -ENOMEM;
		b->off += (uint32_t)n;
		b->len -= (uint32_t)n;
		u->chain_bytes -= (uint32_t)n;
		if (b->len > 0)
			return 0;
		chain_pop(l, u);
	}
	return 0;
}

/*
 * Takes n bytes received into ring buffer bid: what conn_consume says to
 * echo joins the end of c's stream, copied into the pending buffer when
 * bytes wait there and it fits (the ring buffer goes back at once), else
 * chained as it is. Returns 0 or -ENOMEM.
 */
static int take(struct loop *l, struct conn *c, unsigned int bid, size_t n)
{
	struct uconn *u = &l->u[c->slot];
	size_t echo = conn_consume(l->o, c, buf_at(l, bid), n);
	int err = 0;

	if (echo == 0) {
		recycle(l, bid);
		return 0;
	}
	if (u->head == BID_NONE && c->len > 0 &&
	    room_below(l, c, l->pool.size) >= echo) {
		err = conn_keep(&l->pool, c, buf_at(l, bid), echo);
		recycle(l, bid);
		return err;
	}
	chain_push(l, u, bid, (uint32_t)echo);
	return 0;
}

/*
 * Starts c's one send, from the front of its stream. The fast path is a
 * lone ring buffer, sent in place with MSG_DONTWAIT so that a slow
 * reader shows at once as a short send. Otherwise the chain joins the
 * pending buffer (one copy, and the ring buffers go back) and all of it
 * goes in one send that waits for room in the socket. Returns 0, -EBUSY
 * when no SQE is free, or -ENOMEM.
 */
static int start_send(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];
	int flags = MSG_NOSIGNAL, zc = 0;
	struct io_uring_sqe *sqe;
	const char *data;
	uint32_t n;

	if (c->len > 0 || l->binfo[u->head].next != BID_NONE) {
		if (absorb(l, c) < 0)
			return -ENOMEM;
		/* Leave a whole buffer's room behind the bytes in flight. */
		if (c->off + c->len + l->buf_size > l->pool.size)
			conn_compact(c);
		data = c->pending + c->off;
		n = c->len;
	} else {
		data = buf_at(l, u->head) + l->binfo[u->head].off;
		n = l->binfo[u->head].len;
		flags |= MSG_DONTWAIT;
		zc = U_ZC;
	}
	sqe = get_sqe(l);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_send(sqe, c->fd, data, n, flags);
	io_uring_sqe_set_data64(sqe, ud_conn(OP_SEND, c));
	u->send_len = n;
	u->state |= (uint16_t)(U_SEND | zc);
	u->inflight++;
	return 0;
}

/*
 * Arms c's receive: multishot while the peer is interactive (its last
 * message emptied the socket) and nothing is pending, else one buffer's
 * worth. A multishot receive takes whatever the socket holds, dozens of
 * buffers in one go, and a cancel only stops it between rounds; so a
 * streaming peer gets one-shot receives, each armed only when a buffer
 * fits under --max-pending. Returns 0 or -EBUSY.
 */
static int arm_recv(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];
	struct io_uring_sqe *sqe = get_sqe(l);

	if (sqe == NULL)
		return -EBUSY;
	if (c->len == 0 && (u->state & U_QUIET)) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		u->state |= U_MULTI;
	} else {
		io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	}
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud_conn(OP_RECV, c));
	u->state |= U_RECV;
	u->inflight++;
	return 0;
}

/*
 * Keeps a receive armed while c may take a whole ring buffer more and
 * the peer may still send. A multishot receive is cancelled when bytes
 * become pending, room runs out or the peer streams; what it still
 * delivers is kept.
 */
static void update_recv(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];
	bool want = !(c->flags & CONN_PEER_EOF) && intake(l, c) >= l->buf_size;

	if (!(u->state & U_RECV)) {
		/* No buffer free: re-armed from the wait list when one is. */
		if (want && (l->bufs_free == 0 || arm_recv(l, c) < 0))
			wait_push(l, c);
		return;
	}
	if ((u->state & (U_MULTI | U_CANCEL)) != U_MULTI ||
	    (want && c->len == 0 && (u->state & U_QUIET)))
		return;
	if (cancel(l, ud_conn(OP_RECV, c)) < 0)
		wait_push(l, c);
	else
		u->state |= U_CANCEL;
}

/*
 * Brings c's requests in the kernel in line with its state, as epoll's
 * update_interest does: a send while bytes wait, a receive while there
 * is room; the FIN, or the close, once everything owed is out. What
 * cannot be submitted now puts c on the wait list. c may be closed.
 */
static void update(struct loop *l, struct conn *c)
{
	struct uconn *u = &l->u[c->slot];
	bool empty = c->len == 0 && u->head == BID_NONE;
	int err = 0;

	if (!empty && !(u->state & U_SEND))
		err = start_send(l, c);
	if (err == -ENOMEM) {
		close_conn(l, c, "out of memory");
		return;
	}
	if (err == -EBUSY)
		wait_push(l, c);
	if (empty && (c->flags & CONN_PEER_EOF)) {
		close_conn(l, c, "end of input");
		return;
	}
	if (empty && (c->flags & CONN_LIMIT) && !(c->flags & CONN_SHUT_WR))
		conn_finish_limit(&l->lists, c, l->now_ms);
	update_recv(l, c);
}

static bool transient(int res)
{
	return res == -EAGAIN || res == -EINTR || res == -ENOBUFS ||
	       res == -ECANCELED;
}

/*
 * A full buffer, or more data behind it, says the peer streams. Only a
 * one-shot receive may find it quiet again, so that a steady stream
 * does not flip between the two kinds of receive.
 */
static void note_pace(const struct loop *l, struct uconn *u,
		      const struct io_uring_cqe *cqe)
{
	if (cqe->res <= 0)
		return;
	if ((uint32_t)cqe->res == l->buf_size ||
	    (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY))
		u->state &= (uint16_t)~U_QUIET;
	else if (!(u->state & U_MULTI))
		u->state |= U_QUIET;
}

/*
 * A receive completed: a buffer of data (echoed in order), end of input,
 * the ring ran dry (-ENOBUFS: re-armed when buffers return), our cancel,
 * or an error that ends c. Every buffer the CQE names is kept or given
 * back; no other is.
 */
static void handle_recv(struct loop *l, struct conn *c,
			const struct io_uring_cqe *cqe)
{
	struct uconn *u = &l->u[c->slot];
	unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	int res = cqe->res, err = 0;

	note_pace(l, u, cqe);
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		u->state &= (uint16_t) ~(U_RECV | U_MULTI | U_CANCEL);
		u->inflight--;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		l->bufs_free--;
		if (res > 0 && !(u->state & U_CLOSING))
			err = take(l, c, bid, (size_t)res);
		else
			recycle(l, bid);
	}
	if (u->state & U_CLOSING) {
		maybe_free(l, c);
		return;
	}
	if (res == 0)
		c->flags |= CONN_PEER_EOF;
	else if (res < 0 && !transient(res))
		err = res;
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		close_conn(l, c, err == -ENOMEM ? "out of memory" : "error");
		return;
	}
	conn_touch(&l->lists, l->o, c, l->now_ms);
	update(l, c);
}

/*
 * A send completed with res bytes taken (or -errno). A short in-place
 * send moves the rest of the stream into the pending buffer, so the
 * ring buffers go back and the next send waits for the slow reader.
 */
static void handle_send(struct loop *l, struct conn *c, int res)
{
	struct uconn *u = &l->u[c->slot];
	bool zc = u->state & U_ZC;
	uint32_t n = res > 0 ? (uint32_t)res : 0;

	u->state &= (uint16_t) ~(U_SEND | U_ZC | U_SCANCEL);
	u->inflight--;
	if (u->state & U_CLOSING) {
		maybe_free(l, c);
		return;
	}
	if (res < 0 && !transient(res)) {
		log_debug("fd %d: %s", c->fd, strerror(-res));
		close_conn(l, c, "error");
		return;
	}
	if (zc) {
		c->bytes_out += n;
		l->binfo[u->head].off += n;
		l->binfo[u->head].len -= n;
		u->chain_bytes -= n;
		if (l->binfo[u->head].len == 0)
			chain_pop(l, u);
		if (n < u->send_len && absorb(l, c) < 0) {
			close_conn(l, c, "out of memory");
			return;
		}
	} else if (n > 0) {
		conn_sent(&l->pool, c, n);
	}
	conn_touch(&l->lists, l->o, c, l->now_ms);
	update(l, c);
}

/* ---------------------------------------------------------- accepting */

/* A connection for a new client, or NULL on -ENOMEM. */
static struct conn *new_conn(struct loop *l)
{
	struct conn *c = conn_table_get(&l->table);
	struct uconn *u;

	if (c == NULL)
		return NULL;
	if (c->slot > SLOT_MASK || uconn_fit(l, c->slot) < 0) {
		conn_table_put(&l->table, c);
		return NULL;
	}
	u = &l->u[c->slot];
	memset(u, 0, sizeof(*u));
	u->head = u->tail = BID_NONE;
	return c;
}

static void add_conn(struct loop *l, int fd, int lfd)
{
	char text[NET_ADDR_TEXT];
	struct conn *c;
	socklen_t len;

	if (l->exhausted) {
		log_info("accepting again on fd %d", lfd);
		l->exhausted = false;
	}
	if (worker_admit(l->w, fd) < 0)
		return;
	c = new_conn(l);
	if (c == NULL) {
		worker_conn_put(l->w);
		l->w->stats.refused++;
		close(fd);
		return;
	}
	c->fd = fd;
	len = sizeof(c->peer);
	/* Only the -v lines show the peer; spare the syscall otherwise. */
	if (log_level >= LOG_VERBOSE)
		getpeername(fd, &c->peer.sa, &len);
	net_tune_conn(fd);
	conn_lists_add(&l->lists, c, l->now_ms);
	l->w->stats.accepted++;
	log_verbose("accept fd %d peer %s on fd %d", fd,
		    net_addr_text(&c->peer.sa, text, sizeof(text)), lfd);
	update(l, c);
}

/*
 * Cancels the listeners' armed requests: all of them, or only the
 * multishot accepts. Those must go while descriptors are out: an
 * io_uring accept takes a descriptor before it looks for a client, so
 * it would fail at once, again and again; a poll waits for a client.
 */
static void stop_listeners(struct loop *l, bool polls_too)
{
	unsigned int op;
	uint8_t st;

	for (int i = 0; i < l->w->nlisten; i++) {
		st = l->accept_state[i];
		if (!(st & A_ARMED) || (st & A_CANCEL) ||
		    ((st & A_POLL) && !polls_too))
			continue;
		op = st & A_POLL ? OP_LPOLL : OP_ACCEPT;
		if (cancel(l, ud_make(op, 0, (uint32_t)i)) == 0)
			l->accept_state[i] |= A_CANCEL;
	}
}

/* Stops accepting for ACCEPT_PAUSE_MS; arm_listeners resumes after. */
static void pause_accepting(struct loop *l)
{
	l->paused_until = l->now_ms + ACCEPT_PAUSE_MS;
	stop_listeners(l, true);
}

/*
 * Out of descriptors: give up the spare one to accept and close each
 * waiting client, so they are refused quickly instead of hanging in the
 * backlog; if even that fails, stop accepting for a moment instead of
 * spinning on a listener that stays ready.
 */
static void handle_exhaustion(struct loop *l, int lfd, int err)
{
	unsigned long long refused = 0;
	int busy;

	if (!l->exhausted)
		log_warn(
			"accept on fd %d: %s; refusing clients until descriptors free up",
			lfd, strerror(err));
	l->exhausted = true;
	busy = net_refuse_waiting(lfd, &l->reserve_fd, ACCEPTS_PER_WAKEUP,
				  &refused);
	l->w->stats.refused += refused;
	if (busy == 0)
		stop_listeners(l, false);
	else
		pause_accepting(l);
}

static bool out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

/*
 * A client waits on listener i while descriptors are out: accept as
 * epoll does (accept4, bounded per wakeup), refusing while none is free.
 * Once one is accepted, arm_listeners goes back to multishot accept.
 */
static void handle_lpoll(struct loop *l, uint32_t i, int res)
{
	int lfd = l->w->listen_fds[i], fd;

	l->accept_state[i] = 0;
	if (res < 0 || l->stopping)
		return;
	for (int k = 0; k < ACCEPTS_PER_WAKEUP; k++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			add_conn(l, fd, lfd);
		} else if (out_of_fds(errno)) {
			handle_exhaustion(l, lfd, errno);
			return;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return;
		} else {
			log_debug("accept on fd %d: %s", lfd, strerror(errno));
		}
	}
}

/*
 * A multishot accept completed: a new descriptor, or an error. It ends
 * on errors (no IORING_CQE_F_MORE) and is armed again by arm_listeners.
 */
static void handle_accept(struct loop *l, uint32_t i,
			  const struct io_uring_cqe *cqe)
{
	int lfd = l->w->listen_fds[i], res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->accept_state[i] = 0;
	if (res >= 0) {
		/* Accepted while stopping: nobody would serve it. */
		if (l->stopping)
			close(res);
		else
			add_conn(l, res, lfd);
	} else if (out_of_fds(-res)) {
		handle_exhaustion(l, lfd, -res);
	} else if (res != -ECANCELED) {
		/* ECONNABORTED, EPROTO...: that client only. */
		log_debug("accept on fd %d: %s", lfd, strerror(-res));
	}
}

static void arm_listeners(struct loop *l)
{
	struct io_uring_sqe *sqe;

	if (l->stopping || l->paused_until)
		return;
	for (int i = 0; i < l->w->nlisten; i++) {
		if (l->accept_state[i])
			continue;
		sqe = get_sqe(l);
		if (sqe == NULL)
			return;
		if (l->exhausted) {
			io_uring_prep_poll_add(sqe, l->w->listen_fds[i],
					       POLLIN);
			io_uring_sqe_set_data64(
				sqe, ud_make(OP_LPOLL, 0, (uint32_t)i));
			l->accept_state[i] = A_ARMED | A_POLL;
			continue;
		}
		io_uring_prep_multishot_accept(sqe, l->w->listen_fds[i], NULL,
					       NULL, SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe,
					ud_make(OP_ACCEPT, 0, (uint32_t)i));
		l->accept_state[i] = A_ARMED;
	}
}

/*
 * UDP rides on one-shot polls: udp_serve handles a bounded number of
 * batches with recvmmsg/sendmmsg, and a poll armed again on a socket
 * that still holds datagrams fires at once, as level-triggered epoll.
 */
static void arm_udp(struct loop *l)
{
	struct io_uring_sqe *sqe;

	for (int i = 0; i < l->w->nudp && !l->stopping; i++) {
		if (l->udp_armed[i])
			continue;
		sqe = get_sqe(l);
		if (sqe == NULL)
			return;
		io_uring_prep_poll_add(sqe, l->w->udp_fds[i], POLLIN);
		io_uring_sqe_set_data64(sqe, ud_make(OP_UPOLL, 0, (uint32_t)i));
		l->udp_armed[i] = true;
	}
}

static void handle_udp(struct loop *l, uint32_t i, int res)
{
	int fd = l->w->udp_fds[i], err;

	l->udp_armed[i] = false;
	if (res < 0 || l->stopping)
		return;
	err = udp_serve(&l->udp, fd, l->now_ms);
	if (err < 0)
		log_warn("udp fd %d: %s", fd, strerror(-err));
}

/* --------------------------------------------------------------- loop */

/*
 * A cancel found nothing to cancel: the request ended meanwhile (fine),
 * or it was between two rounds of a multishot receive, still running;
 * then the connection asks again from update() or the wait list.
 */
static void cancel_missed(struct loop *l, unsigned int op, uint32_t slot,
			  uint32_t gen)
{
	struct conn *c = conn_table_find(&l->table, slot, gen);
	struct uconn *u;

	if (c == NULL || (op != OP_RECV && op != OP_SEND))
		return;
	u = &l->u[c->slot];
	if (op == OP_RECV && (u->state & U_RECV))
		u->state &= (uint16_t)~U_CANCEL;
	else if (op == OP_SEND && (u->state & U_SEND))
		u->state &= (uint16_t)~U_SCANCEL;
	else
		return;
	l->retry = true;
	wait_push(l, c);
}

static void dispatch(struct loop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	uint32_t slot = (uint32_t)ud & SLOT_MASK;
	uint32_t gen = (uint32_t)(ud >> SLOT_BITS) & 0x7fffffffu;
	struct conn *c;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->ops--;
	switch (ud >> 60) {
	case OP_ACCEPT:
		handle_accept(l, slot, cqe);
		return;
	case OP_STOP:
		l->stop_armed = false;
		l->stopping = true;
		return;
	case OP_LPOLL:
		handle_lpoll(l, slot, cqe->res);
		return;
	case OP_UPOLL:
		handle_udp(l, slot, cqe->res);
		return;
	case OP_CANCEL:
		if (cqe->res < 0)
			cancel_missed(l, (ud >> 56) & 0xf, slot, gen);
		return;
	}
	c = conn_table_find(&l->table, slot, gen);
	if (c == NULL) {
		/* Cannot happen (freed only when idle), but keep the buffer. */
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			l->bufs_free--;
			recycle(l, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		}
		return;
	}
	if (ud >> 60 == OP_RECV)
		handle_recv(l, c, cqe);
	else
		handle_send(l, c, cqe->res);
}

/* Handles every completion there is, then marks them all seen at once. */
static void reap(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		dispatch(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	l->reaped = n;
}

/*
 * Gives the waiting connections another go: as many as there are free
 * ring buffers (re-arming more would only bring more -ENOBUFS), or all
 * of them when an SQE was lacking.
 */
static void run_waiters(struct loop *l)
{
	uint32_t n = l->nwait;
	struct conn *c;

	publish_bufs(l);
	if (!l->retry && l->bufs_free < n)
		n = l->bufs_free;
	l->retry = false;
	while (n-- > 0 && l->nwait > 0) {
		c = wait_pop(l);
		if (!(l->u[c->slot].state & U_CLOSING)) {
			update(l, c);
			continue;
		}
		if (cancel_all(l, c) < 0)
			wait_push(l, c);
		maybe_free(l, c);
	}
}

/* Closes connections whose idle or linger time ran out. */
static void expire(struct loop *l)
{
	const char *why;
	struct conn *c;

	while ((c = conn_expired(&l->lists, l->o, l->now_ms, &why)))
		close_conn(l, c, why);
	if (l->paused_until && l->paused_until <= l->now_ms)
		l->paused_until = 0;
}

/* Milliseconds until the next deadline, or -1 when there is none. */
static int next_timeout(const struct loop *l)
{
	uint64_t next = conn_next_deadline(&l->lists, l->o);

	if (l->paused_until && l->paused_until < next)
		next = l->paused_until;
	if (next == UINT64_MAX)
		return -1;
	/* The coarse clock ticks every few ms: round up, never spin. */
	return next > l->now_ms ? (int)(next - l->now_ms) + 5 : 5;
}

/*
 * Publishes the buffers given back, submits everything queued and waits
 * for a completion or the deadline: one io_uring_enter per loop.
 * Returns 0, or -errno when the ring itself failed.
 */
static int submit_wait(struct loop *l, int timeout_ms)
{
	unsigned int batch = l->lists.idle.count / BATCH_PER_CONNS;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	/* Quiet (the last wakeup found little): sleep until there is work. */
	if (l->reaped < 2)
		batch = 0;
	publish_bufs(l);
	/*
	 * With many connections, completions come in a steady stream:
	 * waiting a few microseconds for several of them costs each echo
	 * that little latency and saves most kernel entries. With few, the
	 * next completion is awaited alone, so one client's round trip is
	 * never held up.
	 */
	if (batch > BATCH_MAX)
		batch = BATCH_MAX;
	if (batch > 1 && timeout_ms != 0) {
		ts.tv_sec = 0;
		ts.tv_nsec = BATCH_WAIT_NS;
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, batch,
						       &ts, NULL);
	} else if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&l->ring, 1);
	} else {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		return ret;
	return 0;
}

static int arm_stop(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, l->w->stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_make(OP_STOP, 0, 0));
	l->stop_armed = true;
	return 0;
}

static int loop_init(struct loop *l, struct worker *w)
{
	int err;

	memset(l, 0, sizeof(*l));
	l->w = w;
	l->o = w->opts;
	l->wait_head = l->wait_tail = WAIT_NONE;
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	update_clock(l);
	err = ring_init(l);
	if (err == 0)
		err = bufs_init(l);
	if (err == 0 && w->nudp && udp_init(&l->udp, l->o, w->port) < 0)
		err = -ENOMEM;
	if (err == 0 &&
	    conn_pool_init(&l->pool, l->o->max_pending + SPILL, POOL_CACHE) < 0)
		err = -ENOMEM;
	if (err == 0)
		err = arm_stop(l);
	return err;
}

/*
 * After the stop request (or a ring failure): closes every connection,
 * cancels what is armed, and reaps until the kernel holds nothing of
 * ours, for at most DRAIN_MS, so that nothing is freed while in use.
 */
static void drain(struct loop *l)
{
	uint64_t deadline = l->now_ms + DRAIN_MS;

	l->stopping = true;
	while (l->lists.idle.head)
		close_conn(l, l->lists.idle.head, "shutdown");
	while (l->lists.linger.head)
		close_conn(l, l->lists.linger.head, "shutdown");
	stop_listeners(l, true);
	for (int i = 0; i < l->w->nudp; i++)
		if (l->udp_armed[i])
			cancel(l, ud_make(OP_UPOLL, 0, (uint32_t)i));
	if (l->stop_armed && cancel(l, ud_make(OP_STOP, 0, 0)) == 0)
		l->stop_armed = false;
	while (l->ops > 0 && l->now_ms < deadline) {
		if (submit_wait(l, 100) < 0)
			break;
		update_clock(l);
		reap(l);
		l->retry = true;
		run_waiters(l);
	}
}

static void loop_destroy(struct loop *l)
{
	struct conn *c;

	/* Ends whatever the drain did not see complete. */
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	for (uint32_t i = 0; i < l->table.nslots; i++) {
		c = l->table.slots[i];
		if (c == NULL || c->fd < 0)
			continue;
		conn_release(&l->pool, c);
		close(c->fd);
		worker_conn_put(l->w);
	}
	conn_table_destroy(&l->table);
	l->w->udp_stats = l->udp.stats;
	udp_destroy(&l->udp);
	if (l->pool.free)
		conn_pool_destroy(&l->pool);
	free(l->u);
	free(l->binfo);
	if (l->bufs)
		munmap(l->bufs, l->bufs_bytes);
	if (l->br)
		munmap(l->br, l->br_bytes);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
}

static int run(struct worker *w)
{
	struct loop l;
	int err;

	err = loop_init(&l, w);
	if (err < 0) {
		snprintf(w->why, sizeof(w->why), "io_uring set-up: %s",
			 strerror(-err));
		loop_destroy(&l);
		return err;
	}
	while (!l.stopping) {
		arm_listeners(&l);
		arm_udp(&l);
		err = submit_wait(&l, next_timeout(&l));
		if (err < 0) {
			snprintf(w->why, sizeof(w->why), "io_uring_enter: %s",
				 strerror(-err));
			break;
		}
		update_clock(&l);
		reap(&l);
		run_waiters(&l);
		expire(&l);
	}
	drain(&l);
	loop_destroy(&l);
	return err;
}

const struct backend_ops backend_uring = {
	.name = "io_uring",
	.probe = probe,
	.run = run,
};

#endif /* HAVE_LIBURING */
