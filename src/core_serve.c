// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_serve.c - the connections the core serves itself, not the
 * backend's fast path: those with faults (--fault, --control). The
 * backend only watches their sockets; reads, sends, held echoes and
 * their times are here.
 */
#include <sys/socket.h>
#include <errno.h>
#include <string.h>

#include "close_reason.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "deadline.h"
#include "fault.h"
#include "fault_conn.h"
#include "log.h"
#include "options.h"
#include "outq.h"
#include "wakeup.h"

int core_serve_open(struct core *k, struct conn *c)
{
	struct fault_set *s = fault_acquire(k->faults);

	c->fault = fault_conn_new(s, fault_ordinal(k->faults), &c->peer,
				  fault_now_ns());
	fault_release(s);
	if (c->fault == NULL)
		return -ENOMEM;
	/* reset-peer's and timeout's time: core_due's from the start. */
	return wakeup_set(&k->wakeups, &c->fault->heap_pos, c,
			  fault_conn_next_ns(c->fault, c));
}

/* How many bytes c may read now, in pages charged for it; 0: none. */
static size_t fault_room(struct core *k, struct conn *c)
{
	size_t room = fault_conn_read_room(
		c->fault, outq_room(&c->out, k->o->max_pending));

	if (room == 0)
		return 0;
	if (c->out.buf == NULL) {
		/* Everything read is queued here: charged before it is. */
		room = core_read_room(k, c, room);
		return room ? outq_reserve(&k->pool, &c->out, k->o->max_pending,
					   room)
			    : 0;
	}
	return core_read_room(k, c, room);
}

/*
 * One recv for c into its queue, or dropped (timeout's silence, input
 * after limit-data's FIN: MSG_TRUNC discards in the kernel). Returns the
 * bytes read, 0 at end of input, -EAGAIN when there is nothing to read
 * or no room, or another -errno.
 */
static ssize_t fault_recv(struct core *k, struct conn *c, uint64_t now_ns)
{
	struct fault_conn *f = c->fault;
	size_t room, echo;
	ssize_t n;
	char *buf;

	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR)) {
		n = recv(c->fd, NULL, 65536, MSG_TRUNC | MSG_DONTWAIT);
		if (n > 0)
			c->bytes_in += (uint64_t)n;
		return n < 0 ? -errno : n;
	}
	room = fault_room(k, c);
	buf = outq_tail(&k->pool, &c->out, k->o->max_pending, &echo);
	if (echo < room)
		room = echo;
	if (room == 0)
		return -EAGAIN;
	n = recv(c->fd, buf, room, MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	echo = conn_consume(k->o, c, buf, (size_t)n);
	fault_conn_took(f, buf, (size_t)n, echo, now_ns);
	outq_tail_filled(&c->out, echo);
	return n;
}

/* Reads while c's socket has bytes and c has room, a few times at most. */
static int fault_read(struct core *k, struct conn *c, uint64_t now_ns)
{
	ssize_t n;

	for (int i = 0; i < CORE_FAULT_READS; i++) {
		if ((c->flags & CONN_PEER_EOF) || c->fault->eof_ns)
			return 0;
		n = fault_recv(k, c, now_ns);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;
		if (n < 0)
			return (int)n;
		/* slow-close holds the peer's FIN back for its delay. */
		if (n == 0 && !fault_conn_eof(c->fault, now_ns))
			c->flags |= CONN_PEER_EOF;
		if (n == 0)
			return 0;
	}
	return 0;
}

/*
 * limit-data's FIN: ours now; what waits is dropped, what comes is
 * discarded, and the peer's close is awaited on the linger list, as after
 * the -n'th echo.
 */
static void fault_shut(struct core *k, struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->flags |= CONN_SHUT_WR;
	outq_release(&k->pool, &c->out);
	deadline_linger(&k->due, c, k->now_ms);
}

enum close_reason core_serve_step(struct core *k, struct conn *c,
				  uint64_t now_ns)
{
	struct fault_conn *f = c->fault;
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	uint64_t at;
	int err;

	err = fault_conn_send(f, &k->pool, c, now_ns, &f->blocked);
	if (err < 0)
		return close_reason_of(err);
	switch (fault_conn_end(f, c, now_ns)) {
	case FAULT_END_RST:
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		return CLOSE_FAULT;
	case FAULT_END_FIN:
		return CLOSE_FAULT;
	case FAULT_END_SHUT:
		fault_shut(k, c);
		break;
	case FAULT_GO_ON:
		break;
	}
	if (f->eof_ns && now_ns >= f->eof_ns) {
		f->eof_ns = 0;
		c->flags |= CONN_PEER_EOF;
	}
	at = fault_conn_next_ns(f, c);
	/* A time already past is a slip of ours: a millisecond, not a spin. */
	if (at && at <= now_ns)
		at = now_ns + 1000000;
	if (wakeup_set(&k->wakeups, &f->heap_pos, c, at) < 0)
		return CLOSE_MEMORY;
	return CLOSE_NONE;
}

/* A change of the set reaches c's live faults at its next echo. */
static void fault_refresh(struct core *k, struct conn *c)
{
	struct fault_set *s;

	if (fault_version(k->faults) == c->fault->version)
		return;
	s = fault_acquire(k->faults);
	fault_conn_refresh(c->fault, s, &c->peer);
	fault_release(s);
}

enum close_reason core_serve_io(struct core *k, struct conn *c, bool readable,
				bool writable)
{
	uint64_t now_ns = fault_now_ns();
	int err = 0;

	(void)writable; /* every call sends what may go */
	fault_refresh(k, c);
	if (readable)
		err = fault_read(k, c, now_ns);
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		return close_reason_of(err);
	}
	return core_serve_step(k, c, now_ns);
}

unsigned int core_serve_wants(const struct core *k, const struct conn *c)
{
	const struct fault_conn *f = c->fault;
	unsigned int want = 0;

	if (f->blocked && outq_bytes(&c->out))
		want |= CORE_WANT_WRITE;
	if (c->flags & (CONN_PEER_EOF | CONN_MEMWAIT | CONN_CLOSING) ||
	    f->eof_ns)
		return want;
	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR) ||
	    fault_conn_read_room(f, outq_room(&c->out, k->o->max_pending)))
		want |= CORE_WANT_READ;
	return want;
}
