// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_serve.c - the connections the core serves itself, not the
 * backend's fast path: those whose PROXY header is due (--proxy-protocol)
 * and those with faults (--fault, --control). The backend only watches
 * their sockets; the header, reads, sends, held echoes and their times
 * are here. A connection whose header is in and that has no fault goes
 * back to the backend's own reads and sends.
 */
#include <sys/socket.h>
#include <errno.h>
#include <string.h>

#include "close_reason.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "counter.h"
#include "deadline.h"
#include "fault.h"
#include "fault_conn.h"
#include "log.h"
#include "options.h"
#include "outq.h"
#include "tls.h"
#include "wakeup.h"
#include "worker.h"

/* When a TLS handshake is due: CORE_TLS_HANDSHAKE_MS after the accept. */
static uint64_t tls_deadline_ns(const struct conn *c)
{
	return (c->born_ms + CORE_TLS_HANDSHAKE_MS) * 1000000ULL;
}

/* Whether c's TLS handshake is still to be done. */
static bool tls_pending(const struct conn *c)
{
	return c->tls && !(c->flags & CONN_TLS_UP);
}

/*
 * Gives c the faults that apply to its peer, or, over TLS, the core's
 * queue state without any. Returns 0 or -ENOMEM.
 */
static int fault_take(struct core *k, struct conn *c, uint64_t now_ns)
{
	struct fault_set *s;

	if (k->faults == NULL) {
		if (c->tls)
			c->fault = fault_conn_new(NULL, 0, &c->peer, now_ns);
		return c->tls && c->fault == NULL ? -ENOMEM : 0;
	}
	s = fault_acquire(k->faults);
	c->fault =
		fault_conn_new(s, fault_ordinal(k->faults), &c->peer, now_ns);
	fault_release(s);
	return c->fault ? 0 : -ENOMEM;
}

/*
 * Sets c's wake-up: its header's time (a look again, or the end of
 * --proxy-timeout), else its faults'. A time already past is a slip of
 * ours: a millisecond later, not a spin. Returns 0 or -ENOMEM.
 */
static int set_wake(struct core *k, struct conn *c, uint64_t now_ns)
{
	uint64_t at = 0;

	if (c->flags & CONN_PROXY_WAIT) {
		at = core_proxy_deadline_ns(k, c);
		if (c->proxy_poll_ms &&
		    now_ns + c->proxy_poll_ms * 1000000ULL < at)
			at = now_ns + c->proxy_poll_ms * 1000000ULL;
	} else if (tls_pending(c)) {
		at = tls_deadline_ns(c);
	} else if (c->fault) {
		at = fault_conn_next_ns(c->fault, c);
	}
	if (at && at <= now_ns)
		at = now_ns + 1000000;
	if (at)
		core_recheck(k);
	return wakeup_set(&k->wakeups, &c->wake_pos, c, at);
}

int core_serve_open(struct core *k, struct conn *c, bool balancer, bool tls)
{
	uint64_t now_ns = fault_now_ns();

	if (tls) {
		c->tls = tls_conn_new(k->tls, c->fd);
		if (c->tls == NULL)
			return -ENOMEM;
	}
	/* Faults are chosen for the client, so after its header. */
	if (k->o->proxy_protocol)
		c->flags |= CONN_PROXY_WAIT | (balancer ? CONN_BALANCER : 0);
	else if (fault_take(k, c, now_ns) < 0)
		return -ENOMEM;
	conn_note_served(c);
	return set_wake(k, c, now_ns);
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
 * bytes read, 0 at end of input, -EAGAIN when there is nothing to read,
 * -ENOSPC when there is no room, or another -errno.
 */
/* Reads and drops what a TLS peer sent: the bytes, 0, or -errno. */
static ssize_t tls_drop(struct conn *c)
{
	char buf[4096];

	return tls_conn_read(c->tls, buf, sizeof(buf), &c->fault->tls_want);
}

/* How the core's queue goes out: fault_conn_send's writer. */
static ssize_t write_out(struct conn *c, const void *buf, size_t n)
{
	ssize_t sent;

	if (c->tls)
		return tls_conn_write(c->tls, buf, n, &c->fault->tls_want);
	sent = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return sent < 0 ? -errno : sent;
}

static ssize_t fault_recv(struct core *k, struct conn *c)
{
	struct fault_conn *f = c->fault;
	size_t room, echo;
	ssize_t n;
	char *buf;

	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR)) {
		if (c->tls) /* records must be read to be dropped */
			return tls_drop(c);
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
		return -ENOSPC;
	n = c->tls ? tls_conn_read(c->tls, buf, room, &f->tls_want)
		   : recv(c->fd, buf, room, MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 && !c->tls ? -errno : n;
	echo = conn_consume(k->o, c, buf, (size_t)n);
	/*
	 * A hold runs from when the bytes were read, not from when this
	 * call began: a client may have sent them in between (it sends as
	 * soon as its connect returns, while echod serves the accept), and
	 * its echo must never come back sooner than the delay it was given.
	 */
	fault_conn_took(f, buf, (size_t)n, echo, fault_now_ns());
	outq_tail_filled(&c->out, echo);
	return n;
}

/*
 * Reads while c's socket has bytes and c has room, a few times at most
 * (over TLS, until its library holds nothing more: what it decrypted
 * ahead raises no readiness). Returns 0 when the socket is empty, 1 when
 * bytes may be left (no room, or the reads' bound), or -errno.
 */
static int fault_read(struct core *k, struct conn *c, uint64_t now_ns)
{
	int reads = c->tls ? CORE_TLS_READS : CORE_FAULT_READS;
	ssize_t n;

	for (int i = 0; i < reads; i++) {
		if ((c->flags & CONN_PEER_EOF) || c->fault->eof_ns)
			return 0;
		n = fault_recv(k, c);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;
		if (n == -ENOSPC)
			return 1;
		if (n < 0)
			return (int)n;
		/* slow-close holds the peer's FIN back for its delay. */
		if (n == 0 && !fault_conn_eof(c->fault, now_ns))
			c->flags |= CONN_PEER_EOF;
		if (n == 0)
			return 0;
	}
	return 1;
}

void core_linger(struct core *k, struct conn *c)
{
	deadline_linger(&k->due, c, k->now_ms);
	core_wake_by(k, k->now_ms + k->due.linger_ms);
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
	core_linger(k, c);
}

/* Sends what of c's queue may go at now_ns; ends c when a fault says so. */
static enum close_reason fault_step(struct core *k, struct conn *c,
				    uint64_t now_ns)
{
	struct fault_conn *f = c->fault;
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	int err;

	err = fault_conn_send(f, &k->pool, c, now_ns, &f->blocked, write_out);
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
	return CLOSE_NONE;
}

/* A handshake that failed or ran out of time, counted and logged (-v). */
static enum close_reason tls_failed(struct core *k, struct conn *c,
				    enum tls_outcome why)
{
	char peer[NET_ADDR_TEXT];

	counter_add(&k->w->stats.tls[why], 1);
	if (log_level >= LOG_VERBOSE)
		log_verbose(
			"tls fd %d peer %s: handshake %s%s%s", c->fd,
			net_addr_text(&c->peer.sa, peer, sizeof(peer)),
			why == TLS_OUT_TIMEOUT ? "not done in time" : "failed",
			why == TLS_OUT_TIMEOUT ? "" : ": ",
			why == TLS_OUT_TIMEOUT ? "" : tls_conn_error(c->tls));
	return CLOSE_TLS;
}

/* One step of c's TLS handshake; its end counted, and logged with -v. */
static enum close_reason tls_step(struct core *k, struct conn *c,
				  uint64_t now_ns)
{
	int r = tls_conn_handshake(c->tls, &c->fault->tls_want);
	bool resumed;

	if (r == -EAGAIN)
		return now_ns >= tls_deadline_ns(c)
			       ? tls_failed(k, c, TLS_OUT_TIMEOUT)
			       : CLOSE_NONE;
	if (r < 0)
		return tls_failed(k, c, TLS_OUT_FAILED);
	c->flags |= CONN_TLS_UP;
	c->fault->tls_want = 0;
	resumed = tls_conn_resumed(c->tls);
	counter_add(&k->w->stats.tls[resumed ? TLS_OUT_RESUMED : TLS_OUT_FULL],
		    1);
	if (log_level >= LOG_VERBOSE)
		log_verbose("tls fd %d %s %s%s%s", c->fd,
			    tls_conn_version(c->tls), tls_conn_cipher(c->tls),
			    resumed ? " resumed" : "",
			    tls_conn_ktls(c->tls) ? " ktls" : "");
	return CLOSE_NONE;
}

enum close_reason core_serve_step(struct core *k, struct conn *c,
				  uint64_t now_ns)
{
	enum close_reason why = CLOSE_NONE;

	if (c->flags & CONN_PROXY_WAIT) {
		why = core_proxy_step(k, c, now_ns);
		/* Its faults are chosen for the client it turned out to be. */
		if (why == CLOSE_NONE && !(c->flags & CONN_PROXY_WAIT) &&
		    fault_take(k, c, now_ns) < 0)
			why = CLOSE_MEMORY;
		conn_note_served(c);
	} else if (tls_pending(c))
		why = tls_step(k, c, now_ns);
	else if (c->fault)
		why = fault_step(k, c, now_ns);
	if (why == CLOSE_NONE && set_wake(k, c, now_ns) < 0)
		why = CLOSE_MEMORY;
	return why;
}

/* A change of the set reaches c's live faults at its next echo. */
static void fault_refresh(struct core *k, struct conn *c)
{
	struct fault_set *s;

	if (k->faults == NULL || fault_version(k->faults) == c->fault->version)
		return;
	s = fault_acquire(k->faults);
	fault_conn_refresh(c->fault, s, &c->peer);
	fault_release(s);
}

enum close_reason core_serve_io(struct core *k, struct conn *c, bool readable,
				bool writable)
{
	uint64_t now_ns = fault_now_ns();
	enum close_reason why;
	int err = 0;

	(void)writable; /* every call sends what may go */
	if (c->flags & CONN_PROXY_WAIT)
		return core_serve_step(k, c, now_ns);
	if (tls_pending(c)) {
		why = core_serve_step(k, c, now_ns);
		if (why != CLOSE_NONE || tls_pending(c))
			return why;
	}
	fault_refresh(k, c);
	/*
	 * TLS reads whatever the socket says, and again once the sends made
	 * room: records its library read already (with the handshake's end,
	 * or past the room there was) raise no readiness of their own.
	 */
	for (int round = 0; round < CORE_TLS_ROUNDS; round++) {
		/* Held echoes are timed from their read, not the call's start:
		 * a TLS handshake or the sends before may have taken ms. */
		now_ns = fault_now_ns();
		if (readable || c->tls)
			err = fault_read(k, c, now_ns);
		if (err < 0) {
			log_debug("fd %d: %s", c->fd, strerror(-err));
			return close_reason_of(err);
		}
		why = core_serve_step(k, c, now_ns);
		if (why != CLOSE_NONE || !c->tls || err == 0 ||
		    !fault_conn_read_room(
			    c->fault, outq_room(&c->out, k->o->max_pending)))
			return why;
	}
	/* Still more: the next look comes by time, not by the socket. */
	core_recheck(k);
	return wakeup_set(&k->wakeups, &c->wake_pos, c, now_ns + 1000000) < 0
		       ? CLOSE_MEMORY
		       : CLOSE_NONE;
}

unsigned int core_serve_wants(const struct core *k, const struct conn *c)
{
	const struct fault_conn *f = c->fault;
	unsigned int want = 0;

	if (c->flags & CONN_PROXY_WAIT)
		return c->proxy_poll_ms ? 0 : CORE_WANT_READ;
	if (tls_pending(c))
		return f->tls_want & TLS_WANT_WRITE ? CORE_WANT_WRITE
						    : CORE_WANT_READ;
	/* A TLS write may wait for the socket to be readable (a key update). */
	if (f->blocked && outq_bytes(&c->out))
		want |= c->tls && f->tls_want == TLS_WANT_READ
				? CORE_WANT_READ
				: CORE_WANT_WRITE;
	if (c->flags & (CONN_PEER_EOF | CONN_MEMWAIT | CONN_CLOSING) ||
	    f->eof_ns)
		return want;
	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR) ||
	    fault_conn_read_room(f, outq_room(&c->out, k->o->max_pending)))
		want |= CORE_WANT_READ;
	return want;
}
