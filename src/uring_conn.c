// SPDX-License-Identifier: BSD-2-Clause
/*
 * uring_conn.c - a connection's requests on the io_uring backend: what
 * is armed for it, and what each of its completions does (the loop
 * that reaps them is in backend_uring.c).
 *
 * Receives take their buffers from the worker's ring of provided
 * buffers (uring_bufs.c): multishot, each limited to the bytes the
 * connection has room for under --max-pending, where the kernel can
 * limit them (6.17), and bundled where it can (6.10: one completion
 * fills as many buffers as its bytes need, at most RECV_MAX_BUFS, the
 * next ones in ring order); else one-shot into one buffer, armed only
 * while a whole buffer fits. The kernel checks the limit after each
 * receive, so the last one may pass it by a buffer less a byte: either
 * way a connection never holds more than --max-pending plus one buffer,
 * whatever its peer sends.
 *
 * A connection has at most one send in flight. The fast path never
 * copies: buffers that arrive are lent to the connection's queue
 * (outq.h), up to OUTQ_LENT_MAX deep, and sent in place, all of them in
 * one send (a sendmsg when several) with MSG_DONTWAIT; they go back to
 * the ring when it completes. Sends start only once every completion
 * of a wakeup is handled, so that one send carries all they brought.
 * What arrives behind a full set of lent buffers, and what a short
 * send leaves of them (a slow reader), is copied into the queue's
 * pooled buffer, so a client that does not read holds queued bytes, as
 * with epoll, and never a ring buffer. A send from the pooled buffer
 * leaves room behind its bytes for all the armed receive may bring.
 *
 * When the ring runs dry a receive ends with -ENOBUFS, and so does a
 * lack of SQEs leave work undone: such connections wait on a list and
 * are served again as buffers come back. UDP sockets are served by the
 * core from a one-shot poll.
 *
 * A streaming connection (a receive filled a whole buffer) is echoed
 * through a pipe as on epoll (splice.h), not through the ring: its
 * receive is ended, its queue sent, and from then on a one-shot poll
 * says when to splice, until STREAM_SMALL_EDGES polls in a row bring
 * little. Then it receives from the ring again.
 */
#ifdef HAVE_LIBURING

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "budget.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "options.h"
#include "splice.h"
#include "uring.h"

enum {
	SPLICES_PER_POLL = 4, /* then polled again, behind the others */
	RECV_MAX_BUFS = 2, /* the most one receive may take: see arm_recv */
};

_Static_assert((int)RECV_MAX_BUFS < (int)URING_BUFS_RESERVE,
	       "a receive must leave the ring a buffer");

enum io_state {
	IO_RECV = 1 << 0, /* a receive is armed */
	IO_SEND = 1 << 1, /* a send is in flight */
	IO_WAITING = 1 << 2, /* on the wait list */
	IO_RECV_CANCEL = 1 << 3, /* the receive's end was asked for (with
				    faults, which never receive: the poll's) */
	IO_KICK = 1 << 4, /* on the kick list: its send starts after reap */
	IO_POLL = 1 << 5, /* a poll is armed: it streams through the pipe */
	IO_NONBLOCK = 1 << 6, /* its socket is O_NONBLOCK (set_nonblocking) */
	IO_SLOW = 1 << 7, /* its last send of lent buffers was short */
};

/* The backend's part of a connection (conn_priv). */
struct uconn {
	uint32_t wait_prev, wait_next; /* slots on the wait list */
	uint32_t recv_left; /* bytes the armed receive may still bring */
	uint16_t inflight; /* requests in the kernel naming this slot */
	uint8_t state; /* enum io_state */
	uint8_t fault_want; /* with faults: what its poll waits for */
	struct stream stream;
};

static struct uconn *uc(struct conn *c)
{
	return conn_priv(c);
}

/*
 * splice(2) may wait on a blocking socket, whatever its own flags say,
 * and io_uring's receives and sends may end with -EAGAIN on one that is
 * not: a socket is non-blocking exactly while it is spliced. Returns 0
 * or -errno.
 */
static int set_nonblocking(struct conn *c, bool on)
{
	if (!(uc(c)->state & IO_NONBLOCK) == !on)
		return 0;
	if (fcntl(c->fd, F_SETFL, on ? O_NONBLOCK : 0) < 0)
		return -errno;
	uc(c)->state ^= IO_NONBLOCK;
	return 0;
}

/* ---------------------------------------------------------- wait list */

static void wait_push(struct uloop *l, struct conn *c)
{
	struct uconn *u = uc(c);

	if (u->state & IO_WAITING)
		return;
	u->state |= IO_WAITING;
	u->wait_next = WAIT_NONE;
	u->wait_prev = l->wait_tail;
	if (l->wait_tail == WAIT_NONE)
		l->wait_head = c->slot;
	else
		uc(l->core.table.slots[l->wait_tail])->wait_next = c->slot;
	l->wait_tail = c->slot;
	l->nwait++;
}

static void wait_remove(struct uloop *l, struct conn *c)
{
	struct uconn *u = uc(c);
	struct conn **slots = l->core.table.slots;

	if (!(u->state & IO_WAITING))
		return;
	if (u->wait_prev == WAIT_NONE)
		l->wait_head = u->wait_next;
	else
		uc(slots[u->wait_prev])->wait_next = u->wait_next;
	if (u->wait_next == WAIT_NONE)
		l->wait_tail = u->wait_prev;
	else
		uc(slots[u->wait_next])->wait_prev = u->wait_prev;
	u->state &= (uint8_t)~IO_WAITING;
	l->nwait--;
}

/*
 * Gives the waiting connections another go: as many as there are free
 * ring buffers (re-arming more would only bring more -ENOBUFS), or all
 * of them when an SQE was lacking.
 */
void uloop_run_waiters(struct uloop *l)
{
	uint32_t n = l->nwait;
	struct conn *c;

	uring_bufs_publish(&l->bufs);
	if (!l->retry && l->bufs.nfree < n)
		n = l->bufs.nfree;
	l->retry = false;
	while (n-- > 0 && l->nwait > 0) {
		c = l->core.table.slots[l->wait_head];
		wait_remove(l, c);
		uloop_update(l, c);
	}
}

/* ------------------------------------------------------------- closing */

/*
 * Frees c once the kernel holds nothing of it: no request in flight,
 * so no buffer of ours is being read or written. A ring buffer still
 * lent to its queue goes back.
 */
static void maybe_free(struct uloop *l, struct conn *c)
{
	struct io_uring_sqe *sqe;
	uint16_t done[OUTQ_LENT_MAX];
	int n;

	if (uc(c)->inflight)
		return;
	n = outq_unlend_all(&c->out, done);
	while (n-- > 0)
		uring_buf_put(&l->bufs, done[n]);
	/*
	 * The descriptor is closed by the next submission rather than by a
	 * call of its own, which every churned connection would pay. TLS
	 * still writes its close_notify on it, in core_free.
	 */
	sqe = c->tls ? NULL : uloop_get_sqe(l);
	if (sqe) {
		io_uring_prep_close(sqe, c->fd);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_CLOSE, 0, 0));
		/* A socket has no flush to wait for: closed at submission. */
		l->at_submit++;
		c->fd = -1;
	}
	core_free(&l->core, c);
}

/*
 * Ends c for good: the core's close, then the end of its requests.
 * Shutting the socket down makes a waiting receive complete with end of
 * input and a waiting send with EPIPE, with no SQE needed; the cancel
 * by descriptor, where an SQE is free, ends anything else. The memory
 * and the descriptor go once the last completion is in. The caller must
 * not use c afterwards.
 */
void uloop_close_conn(struct uloop *l, struct conn *c, enum close_reason why)
{
	struct io_uring_sqe *sqe;

	core_retire(&l->core, c, why);
	wait_remove(l, c);
	if (uc(c)->inflight) {
		sqe = uloop_get_sqe(l);
		/*
		 * A fault's reset must not become a FIN: with faults only a
		 * poll is in flight, which the cancel alone ends.
		 */
		if (!c->fault || sqe == NULL)
			shutdown(c->fd, SHUT_RDWR);
		if (sqe) {
			io_uring_prep_cancel_fd(sqe, c->fd,
						IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
		}
	}
	maybe_free(l, c);
}

/* ------------------------------------------------------ a connection */

/*
 * The lent buffers, for one send with MSG_DONTWAIT: a sendmsg when there
 * are several, its header and iovec in the SQE's send_msg. The one-buffer
 * send (every ping-pong echo) leaves send_msg alone: a slot last touched
 * an SQ ring ago is a cache miss, 2 % of an echo at 8,000 a second.
 */
static void prep_send_lent(struct uloop *l, struct conn *c,
			   struct io_uring_sqe *sqe)
{
	struct iovec iov[OUTQ_LENT_MAX];
	unsigned int n = outq_lent_iov(&l->core.pool, &c->out, iov);
	int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	struct send_msg *m;

	if (n == 1) {
		io_uring_prep_send(sqe, c->fd, iov[0].iov_base, iov[0].iov_len,
				   flags);
		return;
	}
	m = &l->msgs[sqe - l->ring.sq.sqes];
	memset(&m->msg, 0, sizeof(m->msg));
	memcpy(m->iov, iov, n * sizeof(*iov));
	m->msg.msg_iov = m->iov;
	m->msg.msg_iovlen = n;
	io_uring_prep_sendmsg(sqe, c->fd, &m->msg, flags);
}

/*
 * Whether c's bytes go through the pipe: it streams, and they need no
 * looking at.
 */
static bool splices(const struct uloop *l, struct conn *c)
{
	return splicer_wants(&l->splicer, &uc(c)->stream, l->core.o);
}

/*
 * A lent send completes while it is submitted, and submit_wait can
 * count on that completion and sleep until one more comes, when
 * handling it will have nothing to start: c's receive stays armed
 * (else the completion's room re-arms it), the send carries all that
 * is queued (else the rest follows it), c is not closing (else the
 * completion ends it), owes no FIN after -n (else the completion sends
 * it), does not stream (else the completion moves it to the pipe), and
 * the core does not serve it (faults, TLS and PROXY have timers of
 * their own). Later changes in the same wakeup reach the ring as
 * requests that complete at once, uncounted: a close or a memory wait
 * cancels the receive. submit_wait counts nothing while connections
 * wait for buffers or memory is tight, for which a buffer given back is
 * work. The completion is then handled at the next wakeup, as of the
 * wakeup that sent it (OP_SEND_COUNTED: the idle clock is not touched
 * again), and the byte counters take it then.
 *
 * A short send must end the sleep too: its rest is queued and sent only
 * once its completion is handled (with a client that had stopped
 * reading, the rest waited for the 1 s trim timer; tests/backpressure.t).
 * So the send carries MSG_WAITALL, under which the kernel reports a
 * short send (or -EAGAIN) as a failure, and a NOP is linked behind it: a
 * failed send cancels the NOP, whose completion is then posted, and
 * IOSQE_CQE_SKIP_SUCCESS posts none when the send went whole. The NOP's
 * SQE is taken without submitting what is queued, so the pair always
 * goes in one submission; with the ring full the send is not counted.
 * Returns whether the send is counted.
 */
static bool expect_at_submit(struct uloop *l, struct conn *c,
			     struct io_uring_sqe *send)
{
	struct io_uring_sqe *nop;

	if ((uc(c)->state & (IO_RECV | IO_RECV_CANCEL)) != IO_RECV ||
	    c->out.len || (c->flags & (CONN_CLOSING | CONN_LIMIT)) ||
	    conn_core_served(c) || splices(l, c))
		return false;
	nop = io_uring_get_sqe(&l->ring);
	if (nop == NULL)
		return false;
	send->msg_flags |= MSG_WAITALL;
	send->flags |= IOSQE_IO_LINK;
	io_uring_prep_nop(nop);
	nop->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(nop, ud_pack(OP_SHORT, 0, 0));
	l->at_submit++; /* the send's completion: see submit_wait */
	return true;
}

/*
 * Starts c's one send, from the front of its queue: every lent ring
 * buffer in one send with MSG_DONTWAIT, so that a slow reader shows at
 * once as a short send and the buffers come back; pooled bytes go in
 * one send that waits for room in the socket. Returns 0, or -EBUSY with
 * no SQE free.
 */
static int start_send(struct uloop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uloop_get_sqe(l);
	enum ud_op op = OP_SEND;
	const char *data;
	size_t n;

	if (sqe == NULL)
		return -EBUSY;
	(void)set_nonblocking(c, false); /* else a send may end with -EAGAIN */
	/*
	 * Pooled bytes in flight must not move: leaves room behind them
	 * for what the armed receive may still bring. One armed later
	 * asks for no more than outq_room, which counts the space before
	 * them.
	 */
	outq_start_send(&l->core.pool, &c->out, uc(c)->recv_left);
	if (c->out.flight == OUTQ_SENDING_LENT) {
		prep_send_lent(l, c, sqe);
		if (expect_at_submit(l, c, sqe))
			op = OP_SEND_COUNTED;
	} else {
		n = outq_front(&l->core.pool, &c->out, &data);
		io_uring_prep_send(sqe, c->fd, data, n, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, ud_pack(op, c->gen, c->slot));
	uc(c)->state |= IO_SEND;
	uc(c)->inflight++;
	return 0;
}

/*
 * While completions are handled, c's send waits on the kick list, so
 * that it carries everything this wakeup brought: one sendmsg of four
 * buffers, not four sends. Returns false (send now) if the list is full
 * and cannot grow.
 */
static bool kick_later(struct uloop *l, struct conn *c)
{
	uint32_t cap = l->kick_cap ? 2 * l->kick_cap : 64;
	uint64_t *k;

	if (!l->reaping)
		return false;
	if (uc(c)->state & IO_KICK)
		return true;
	if (l->nkick == l->kick_cap) {
		k = realloc(l->kick, cap * sizeof(*k));
		if (k == NULL)
			return false;
		l->kick = k;
		l->kick_cap = cap;
	}
	l->kick[l->nkick++] = ud_pack(0, c->gen, c->slot);
	uc(c)->state |= IO_KICK;
	return true;
}

/* After reap: the sends kick_later held back start. */
void uloop_run_kicks(struct uloop *l)
{
	struct conn *c;

	for (uint32_t i = 0; i < l->nkick; i++) {
		c = conn_table_find(&l->core.table, ud_slot(l->kick[i]),
				    ud_gen(l->kick[i]));
		if (c == NULL || !(uc(c)->state & IO_KICK))
			continue;
		uc(c)->state &= (uint8_t)~IO_KICK;
		/* update did the rest: only the send is left to start. */
		if (!(c->flags & CONN_CLOSING) && outq_bytes(&c->out) &&
		    !(uc(c)->state & IO_SEND) && start_send(l, c) < 0)
			wait_push(l, c);
	}
	l->nkick = 0;
}

/*
 * Arms c's receive for at most room bytes: multishot with that limit
 * (the kernel reads it where the file index would be, and ends the
 * receive once it is reached, which a buffer's worth may pass), else
 * one-shot into one buffer. A room smaller than a buffer (a small read
 * under --memory) caps each receive too, as the length does.
 *
 * Each receive is also capped at RECV_MAX_BUFS buffers. Not knowing how
 * much waits, the kernel sets aside for a bundle as many buffers as the
 * limit allows, and a receive that finds the ring emptied so ends its
 * multishot: with the 4 buffers an idle worker keeps, every receive
 * did, and each echo paid a new receive and poll (9 % of its CPU at one
 * echo per wakeup, measured).
 * Returns 0 or -EBUSY.
 */
static int arm_recv(struct uloop *l, struct conn *c, size_t room)
{
	struct io_uring_sqe *sqe = uloop_get_sqe(l);
	size_t cap = room < (size_t)RECV_MAX_BUFS * l->bufs.size
			     ? room
			     : (size_t)RECV_MAX_BUFS * l->bufs.size;

	if (sqe == NULL)
		return -EBUSY;
	(void)set_nonblocking(c, false);
	if (l->recv_limit) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL,
					     (unsigned int)cap, 0);
		sqe->file_index = (uint32_t)room;
	} else {
		/* With a selected buffer, a length caps what it takes. */
		io_uring_prep_recv(sqe, c->fd, NULL,
				   room < l->bufs.size ? (unsigned int)room : 0,
				   0);
	}
	if (l->bufs.bundle)
		sqe->ioprio |= IORING_RECVSEND_BUNDLE;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, c->gen, c->slot));
	/*
	 * The kernel checks the limit after each receive, not before:
	 * the last one may bring up to a buffer less a byte beyond it.
	 */
	uc(c)->recv_left = (uint32_t)(l->recv_limit ? room : 0) + l->bufs.size;
	uc(c)->state |= IO_RECV;
	uc(c)->inflight++;
	return 0;
}

/*
 * A receive armed before memory got tight may bring up to the limit it
 * was armed with; once c's peer stops taking its echoes (bytes copied
 * into its pooled buffer) while memory is tight, it is ended, and c
 * arms again under core_read_room's rules.
 */
static void stop_recv_if_tight(struct uloop *l, struct conn *c)
{
	if (c->out.buf == NULL || (uc(c)->state & IO_RECV_CANCEL) ||
	    !budget_tight(l->core.budget))
		return;
	if (uloop_cancel(l, ud_pack(OP_RECV, c->gen, c->slot)) == 0)
		uc(c)->state |= IO_RECV_CANCEL;
}

/* Watches a streaming c for input. Returns 0 or -EBUSY. */
static int arm_poll(struct uloop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uloop_get_sqe(l);

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, c->fd, POLLIN | POLLRDHUP | POLLPRI);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_SPOLL, c->gen, c->slot));
	uc(c)->state |= IO_POLL;
	uc(c)->inflight++;
	return 0;
}

/*
 * Keeps a receive armed while c has room for a whole ring buffer and
 * the peer may still send; with no buffer or SQE free, c waits. A
 * stream is polled instead, once its receive has ended and its queue is
 * out (order); but while its peer is slow (a short send) it receives
 * into the queue as epoll reads into it, up to the bounds. (Not "while
 * bytes are copied into the queue": a bundle may bring more buffers than
 * a queue can lend, and a stream waiting for an empty queue to stop its
 * receive could wait for as long as it streams, copying all the while.)
 */
static void update_recv(struct uloop *l, struct conn *c)
{
	size_t room = outq_room(&c->out, l->core.o->max_pending);
	bool to_pipe = splices(l, c) && !(uc(c)->state & IO_SLOW);

	if (uc(c)->state & IO_POLL)
		return;
	if (uc(c)->state & IO_RECV) {
		if (!to_pipe)
			stop_recv_if_tight(l, c);
		else if (!(uc(c)->state & IO_RECV_CANCEL) &&
			 uloop_cancel(l, ud_pack(OP_RECV, c->gen, c->slot)) ==
				 0)
			uc(c)->state |= IO_RECV_CANCEL;
		return;
	}
	if (to_pipe && outq_bytes(&c->out))
		return; /* handle_send comes back here */
	if ((c->flags & CONN_PEER_EOF) || room < l->bufs.size)
		return;
	/* --memory: maybe less; 0 while c waits (core_due ends it). */
	room = core_read_room(&l->core, c, room);
	if (room == 0)
		return;
	if (to_pipe && room >= splice_size(l->core.o->max_pending)) {
		if (arm_poll(l, c) < 0)
			wait_push(l, c);
		return;
	}
	if (l->bufs.nfree == 0 || arm_recv(l, c, room) < 0)
		wait_push(l, c);
}

/* A poll for what a connection with faults waits for. */
static int arm_fault_poll(struct uloop *l, struct conn *c, unsigned int want)
{
	struct io_uring_sqe *sqe;
	unsigned int mask = 0;

	if (set_nonblocking(c, true) < 0)
		return -errno;
	sqe = uloop_get_sqe(l);
	if (sqe == NULL)
		return -EBUSY;
	if (want & CORE_WANT_READ)
		mask |= POLLIN | POLLRDHUP;
	if (want & CORE_WANT_WRITE)
		mask |= POLLOUT;
	io_uring_prep_poll_add(sqe, c->fd, mask);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_SPOLL, c->gen, c->slot));
	uc(c)->state |= IO_POLL;
	uc(c)->fault_want = (uint8_t)want;
	uc(c)->inflight++;
	return 0;
}

/*
 * A connection with faults: the core reads and sends, the ring only
 * polls, for what the core wants. A poll armed for something else is
 * ended, and the next armed when its completion comes.
 */
static void fault_update(struct uloop *l, struct conn *c)
{
	enum close_reason why = core_settle(&l->core, c);
	unsigned int want;
	int err;

	if (why != CLOSE_NONE) {
		uloop_close_conn(l, c, why);
		return;
	}
	want = core_serve_wants(&l->core, c);
	if (uc(c)->state & IO_POLL) {
		if (want != uc(c)->fault_want &&
		    !(uc(c)->state & IO_RECV_CANCEL) &&
		    uloop_cancel(l, ud_pack(OP_SPOLL, c->gen, c->slot)) == 0)
			uc(c)->state |= IO_RECV_CANCEL;
		return;
	}
	if (want == 0)
		return; /* its time comes through core_due */
	err = arm_fault_poll(l, c, want);
	if (err == -EBUSY)
		wait_push(l, c);
	else if (err < 0)
		uloop_close_conn(l, c, CLOSE_ERROR);
}

/*
 * Brings c's requests in line with its state, as epoll's interest
 * update does: a send while bytes wait, a receive while there is room;
 * the FIN, or the close, once everything owed is out. c may be closed.
 * Without touch: as of an earlier wakeup (core_settle_as).
 */
static void update(struct uloop *l, struct conn *c, bool touch)
{
	enum close_reason why;

	if (conn_core_served(c)) {
		fault_update(l, c);
		return;
	}
	if (outq_bytes(&c->out) && !(uc(c)->state & IO_SEND) &&
	    !kick_later(l, c) && start_send(l, c) < 0)
		wait_push(l, c);
	why = core_settle_as(&l->core, c, touch);
	if (why != CLOSE_NONE) {
		uloop_close_conn(l, c, why);
		return;
	}
	update_recv(l, c);
}

void uloop_update(struct uloop *l, struct conn *c)
{
	update(l, c, true);
}

static bool transient(int res)
{
	return res == -EAGAIN || res == -EINTR || res == -ENOBUFS ||
	       res == -ECANCELED;
}

/*
 * Takes n bytes received into ring buffer bid: what conn_consume says
 * to echo is lent to the queue as it is where it can be, else copied
 * behind what waits (the arming rule left room for it). Returns 0 or
 * -ENOMEM.
 */
static int take(struct uloop *l, struct conn *c, unsigned int bid, size_t n)
{
	const char *data = uring_buf(&l->bufs, bid);
	size_t echo = conn_consume(l->core.o, c, data, n);
	int err = 0;

	if (echo && outq_lend(&c->out, echo, bid))
		return 0;
	if (echo)
		err = outq_append(&l->core.pool, &c->out, data, echo);
	uring_buf_put(&l->bufs, bid);
	return err;
}

/*
 * A receive completed: buffers of data, end of input, the ring ran dry
 * (-ENOBUFS: re-armed when buffers return), or an error that ends c.
 * Every buffer a completion names is kept or given back; no other is.
 */
static void handle_recv(struct uloop *l, struct conn *c,
			const struct io_uring_cqe *cqe)
{
	unsigned int nbufs = uring_cqe_bufs(&l->bufs, cqe), bid, i;
	uint16_t start = nbufs ? uring_cqe_pos(&l->bufs, cqe) : 0;
	size_t left = cqe->res > 0 ? (size_t)cqe->res : 0, n;
	int res = cqe->res, err = 0;

	if (res > 0)
		uc(c)->recv_left -= (uint32_t)res < uc(c)->recv_left
					    ? (uint32_t)res
					    : uc(c)->recv_left;
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		uc(c)->state &= (uint8_t) ~(IO_RECV | IO_RECV_CANCEL);
		uc(c)->recv_left = 0;
		uc(c)->inflight--;
	}
	if (!uring_cqe_sane(&l->bufs, cqe, start, nbufs)) {
		/* Never seen; fail closed rather than echo others' bytes. */
		log_error("fd %d: a receive's buffers are not where the ring "
			  "had them; closing it",
			  c->fd);
		nbufs = 1, err = -EIO;
	}
	for (i = 0; i < nbufs; i++) {
		bid = uring_cqe_buf(&l->bufs, cqe, start, i);
		n = left < l->bufs.size ? left : l->bufs.size;
		left -= n;
		if (n && err == 0 && !(c->flags & CONN_CLOSING))
			err = take(l, c, bid, n);
		else
			uring_buf_put(&l->bufs, bid);
	}
	if (c->flags & CONN_CLOSING) {
		maybe_free(l, c);
		return;
	}
	if (res == 0)
		c->flags |= CONN_PEER_EOF;
	else if (res < 0 && !transient(res))
		err = res;
	else if (res > 0)
		stream_read(&uc(c)->stream, (size_t)res, l->bufs.size);
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		uloop_close_conn(l, c, close_reason_of(err));
		return;
	}
	uloop_update(l, c);
}

/*
 * c's one-shot request (flag IO_POLL or IO_SEND) ended with res: the
 * flag and the count go. Returns false when c is gone (it was closing,
 * or res is an error that closes it).
 */
static bool request_ended(struct uloop *l, struct conn *c, uint8_t flag,
			  int res)
{
	uc(c)->state &= (uint8_t)~flag;
	uc(c)->inflight--;
	if (c->flags & CONN_CLOSING) {
		maybe_free(l, c);
		return false;
	}
	if (res < 0 && !transient(res)) {
		log_debug("fd %d: %s", c->fd, strerror(-res));
		uloop_close_conn(l, c, close_reason_of(res));
		return false;
	}
	return true;
}

/* A poll of a connection with faults completed: the core does the rest. */
static void handle_fault_poll(struct uloop *l, struct conn *c, int res)
{
	const int input = POLLIN | POLLRDHUP | POLLHUP | POLLERR;
	enum close_reason why;

	uc(c)->state &= (uint8_t)~IO_RECV_CANCEL;
	if (!request_ended(l, c, IO_POLL, res))
		return;
	why = core_serve_io(&l->core, c, res > 0 && (res & input),
			    res > 0 && (res & POLLOUT));
	if (why != CLOSE_NONE)
		uloop_close_conn(l, c, why);
	else
		uloop_update(l, c);
}

/*
 * A streaming c's poll completed: splices while they bring bytes, at
 * most SPLICES_PER_POLL; what the socket would not take back is queued
 * and sent as any other, and the next poll waits for it.
 */
static void handle_poll(struct uloop *l, struct conn *c, int res)
{
	uint64_t before = c->bytes_in;
	ssize_t n = -EAGAIN;

	if (conn_core_served(c)) {
		handle_fault_poll(l, c, res);
		return;
	}
	/* A poll armed while the core served c, which it no longer does. */
	uc(c)->state &= (uint8_t)~IO_RECV_CANCEL;
	if (!request_ended(l, c, IO_POLL, res))
		return;
	/*
	 * Urgent data: splice would stop at its mark, so the ring's
	 * receive, which takes it in line, reads on from here.
	 */
	if (res > 0 && ((res & POLLPRI) || set_nonblocking(c, true) < 0))
		uc(c)->stream.on = 0;
	for (int i = 0; res > 0 && i < SPLICES_PER_POLL; i++) {
		if (!splices(l, c) || outq_bytes(&c->out))
			break;
		n = splicer_echo(&l->splicer, &l->core, c,
				 splice_size(l->core.o->max_pending));
		if (n <= 0)
			break;
	}
	stream_edge(&uc(c)->stream, c->bytes_in - before);
	if (outq_bytes(&c->out))
		uc(c)->state |= IO_SLOW; /* the socket did not take it all */
	if (n == 0) {
		c->flags |= CONN_PEER_EOF;
	} else if (n == -EINVAL) {
		uc(c)->stream.on = 0; /* a socket that cannot splice */
	} else if (n < 0 && n != -EAGAIN) {
		log_debug("fd %d: %s", c->fd, strerror((int)-n));
		uloop_close_conn(l, c, close_reason_of((int)n));
		return;
	}
	uloop_update(l, c);
}

/*
 * A send completed with res bytes taken (or -errno). Lent buffers the
 * queue is done with, sent whole or copied after a short send, go back.
 * counted: it completed at submission, in an earlier wakeup
 * (expect_at_submit).
 */
static void handle_send(struct uloop *l, struct conn *c, int res, bool counted)
{
	size_t n = res > 0 ? (size_t)res : 0;
	uint16_t done[OUTQ_LENT_MAX];
	int ndone;

	if (!request_ended(l, c, IO_SEND, res))
		return;
	c->bytes_out += n;
	if (c->out.flight == OUTQ_SENDING_LENT)
		uc(c)->state = n < outq_flight_lent_bytes(&c->out)
				       ? uc(c)->state | IO_SLOW
				       : uc(c)->state & (uint8_t)~IO_SLOW;
	ndone = outq_sent(&l->core.pool, &c->out, n, done);
	if (ndone < 0) {
		uloop_close_conn(l, c, CLOSE_MEMORY);
		return;
	}
	while (ndone-- > 0)
		uring_buf_put(&l->bufs, done[ndone]);
	update(l, c, !counted);
}

/* ---------------------------------------------------------- accepting */

/* A new connection on listener lfd (-1: none); lfd as core_admit has it. */
void uloop_add_conn(struct uloop *l, int fd, int lfd)
{
	struct conn *c = core_admit(&l->core, fd, NULL, lfd);

	if (c == NULL)
		return;
	uc(c)->wait_prev = uc(c)->wait_next = WAIT_NONE;
	if (c->slot > UD_SLOT_MASK) {
		log_warn("fd %d: no slot left in user_data", c->fd);
		uloop_close_conn(l, c, CLOSE_ERROR);
		return;
	}
	uloop_update(l, c);
}

/* A completion of OP_RECV, OP_SEND(_COUNTED) or OP_SPOLL, for the connection it
 * names. */
void uloop_conn_cqe(struct uloop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c;

	c = conn_table_find(&l->core.table, ud_slot(ud), ud_gen(ud));
	if (c == NULL) {
		/* Cannot happen (freed only when idle), but keep the buffers.
		 */
		unsigned int n = uring_cqe_bufs(&l->bufs, cqe);
		uint16_t start = n ? uring_cqe_pos(&l->bufs, cqe) : 0;

		for (unsigned int i = 0; i < n; i++)
			uring_buf_put(&l->bufs,
				      uring_cqe_buf(&l->bufs, cqe, start, i));
		return;
	}
	if (ud_op(ud) == OP_RECV)
		handle_recv(l, c, cqe);
	else if (ud_op(ud) == OP_SPOLL)
		handle_poll(l, c, cqe->res);
	else
		handle_send(l, c, cqe->res, ud_op(ud) == OP_SEND_COUNTED);
}

size_t uloop_conn_size(void)
{
	return sizeof(struct uconn);
}

#endif /* HAVE_LIBURING */
