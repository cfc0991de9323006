// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcp_client.c - the TCP client loop of one thread: pipelined ping-pong
 * (closed or open loop), stream and churn, checking every echoed byte.
 *
 * Non-blocking sockets in an edge-triggered epoll set: each readiness edge
 * is followed by reads until a short read and sends until EAGAIN. EPOLLOUT
 * is asked for only while connecting and, from its first EAGAIN on, for a
 * connection whose sends fill the socket buffer: on loopback every send
 * frees buffer space at once, and a write-space wake-up per echo would
 * cost the kernel time the server under test should get. Messages are sent
 * straight from the shared pattern table and checked against it as they arrive,
 * so nothing is allocated or copied per message, whatever the size.
 *
 * With --tls a connection has an SSL (btls.c) between it and the socket:
 * after connect(2) a handshake state, then the same loop through
 * btls_read/btls_write. A read may want the socket writable, and a write
 * readable; each waits for that edge and is retried on it. A churn slot
 * keeps its last session and offers it to its next connection.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "btls.h"
#include "loadgen.h"
#include "opts.h"
#include "pace.h"
#include "pattern.h"
#include "tcp_client.h"

enum cstate {
	C_IDLE, /* no socket: churn between connections, or done */
	C_CONNECTING, /* connect(2) in progress */
	C_HANDSHAKE, /* --tls: TLS handshake in progress */
	C_OPEN,
	C_DEAD, /* failed; not reopened (churn slots included) */
};

/*
 * One connection (one churn slot). Messages are numbered per connection;
 * tx_seq is the one being sent, rx_seq the one being received. TCP keeps
 * order, so the bytes expected next are always message rx_seq at rx_off.
 */
struct tconn {
	int fd;
	uint32_t id; /* global: the pattern depends on it */
	uint8_t state; /* enum cstate */
	bool tx_busy; /* message tx_seq is started (time taken) */
	bool blocked; /* send hit EAGAIN: wait for EPOLLOUT */
	bool want_out; /* EPOLLOUT is in its epoll events */
	bool rx_bad; /* --keep-going: message rx_seq was counted corrupted */
	bool rd_wants_wr; /* TLS: a read waits for EPOLLOUT */
	bool wr_wants_rd; /* TLS: a write waits for EPOLLIN */
	uint64_t tx_seq; /* message being sent */
	uint64_t rx_seq; /* message being received */
	size_t tx_off; /* bytes of tx_seq sent */
	size_t rx_off; /* bytes of rx_seq received */
	uint64_t
		rx_total; /* bytes echoed on this connection (--expect-close) */
	struct pace pace; /* open loop: when the next message is due */
	uint64_t *t0; /* [depth]: send (or due) time per message in flight */
	struct ssl_st *ssl; /* --tls: the session on fd, or NULL */
	struct ssl_session_st *sess; /* --tls: the last one, offered next */
	uint64_t hs_t0; /* --tls: when the handshake began */
};

/* A thread's TCP state; lives on its stack while it runs. */
struct tloop {
	struct lg_thread *th;
	const struct bench_opts *o;
	struct tconn *c;
	uint64_t *t0s; /* the t0 rings of all connections */
	unsigned char *rx;
	size_t rxcap;
	int epfd;
	uint32_t open; /* connections connecting or open */
	uint32_t dead; /* connections failed for good */
	bool running; /* past the start barrier */
	bool stopping; /* no new messages: draining */
	uint64_t drain_end;
	uint64_t next_due; /* open loop: earliest due time worth a wake-up */
};

enum {
	RX_CAP = 256 * 1024,
	MAX_EVENTS = 256,
};

static void tconn_close(struct tloop *l, struct tconn *c, enum cstate to)
{
	bool resume = !l->o->tls_no_resume;

	if (c->ssl) {
		/* A failed session is neither ended politely nor kept. */
		btls_close(c->ssl, to != C_DEAD && c->state == C_OPEN,
			   resume ? &c->sess : NULL);
		c->ssl = NULL;
	}
	c->rd_wants_wr = c->wr_wants_rd = false;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		l->open--;
	}
	if (to == C_DEAD && c->state != C_DEAD)
		l->dead++;
	c->state = to;
	c->blocked = false;
}

static bool outstanding(const struct tconn *c)
{
	return c->tx_busy || c->tx_seq != c->rx_seq;
}

/* Starts a non-blocking connect; false (slot dead) if it failed at once. */
static bool tconn_open(struct tloop *l, struct tconn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					   EPOLLET};
	int one = 1, fd;

	fd = socket(l->o->addr.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err(1, "socket");
	/* Pipelined small messages must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.u32 = (uint32_t)(c - l->c);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		err(1, "epoll_ctl");
	c->fd = fd;
	c->want_out = true;
	c->rx_total = 0;
	c->state = C_CONNECTING;
	l->open++;
	errno = -lg_bind_source(fd, l->o, c->id);
	if (errno) {
		lg_error(l->th, ERR_CONNECT, "bind to --source: %s",
			 strerror(errno));
		tconn_close(l, c, C_DEAD);
		return false;
	}
	if (connect(fd, (const struct sockaddr *)&l->o->addr, l->o->addrlen) &&
	    errno != EINPROGRESS) {
		lg_error(l->th, ERR_CONNECT, "connect %s: %s", l->o->target,
			 strerror(errno));
		tconn_close(l, c, C_DEAD);
		return false;
	}
	return true;
}

/* Adds or drops EPOLLOUT from the connection's events. */
static void set_out(struct tloop *l, struct tconn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET};

	if (c->want_out == on)
		return;
	ev.events |= on ? EPOLLOUT : 0;
	ev.data.u32 = (uint32_t)(c - l->c);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		err(1, "epoll_ctl");
	c->want_out = on;
}

/* Counts an error that ends this connection. */
#define tconn_fail(l, c, kind, ...)                     \
	do {                                            \
		lg_error((l)->th, (kind), __VA_ARGS__); \
		tconn_close((l), (c), C_DEAD);          \
	} while (0)

/* A TLS call failed with st (enum btls_status) and errno: say why, end. */
static void tls_failed(struct tloop *l, struct tconn *c, const char *during,
		       int st)
{
	char why[160];

	if (st == BTLS_EOF)
		snprintf(why, sizeof(why), "closed by the server");
	else
		btls_why(c->ssl, errno, why, sizeof(why));
	tconn_fail(l, c, ERR_TLS, "conn %u: TLS %s with %s: %s", c->id, during,
		   l->o->target, why);
}

/*
 * Steps the TLS handshake; true once it is done and the connection open.
 * Its latency runs from the ClientHello to the end of the handshake.
 */
static bool handshake(struct tloop *l, struct tconn *c, uint64_t now)
{
	int r = btls_handshake(c->ssl);

	if (r == BTLS_WANT_READ || r == BTLS_WANT_WRITE) {
		set_out(l, c, r == BTLS_WANT_WRITE);
		return false;
	}
	if (r != 1) {
		tls_failed(l, c, "handshake", r);
		return false;
	}
	if (!l->th->tls_version)
		l->th->tls_version = btls_version(c->ssl);
	lg_handshake(l->th, c->hs_t0, now, btls_resumed(c->ssl));
	c->state = C_OPEN;
	set_out(l, c, false);
	return true;
}

/* --tls: the socket is connected; the handshake begins. */
static bool tls_start(struct tloop *l, struct tconn *c, uint64_t now)
{
	c->ssl = btls_new(l->th->lg->tls, l->o, c->fd,
			  l->o->tls_no_resume ? NULL : c->sess);
	if (!c->ssl) {
		tconn_fail(l, c, ERR_TLS, "conn %u: SSL_new: out of memory",
			   c->id);
		return false;
	}
	c->state = C_HANDSHAKE;
	c->hs_t0 = now;
	return handshake(l, c, now);
}

static bool tconn_connected(struct tloop *l, struct tconn *c, uint64_t now)
{
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e == EINPROGRESS)
		return false;
	if (e) {
		lg_error(l->th, ERR_CONNECT, "connect %s: %s", l->o->target,
			 strerror(e));
		tconn_close(l, c, C_DEAD);
		return false;
	}
	if (l->th->lg->tls)
		return tls_start(l, c, now);
	c->state = C_OPEN;
	set_out(l, c, false);
	return true;
}

/*
 * Decides whether message tx_seq may start now: depth not full, then due
 * and within the -n quota (pace.c), which also gives its time stamp.
 */
static bool may_start(struct tloop *l, struct tconn *c, uint64_t now)
{
	uint64_t t0;

	if (l->stopping || l->o->mode == MODE_CHURN)
		return false;
	if (c->tx_seq - c->rx_seq >= l->o->depth)
		return false;
	if (!pace_next(&c->pace, l->th, now, &t0, &l->next_due))
		return false;
	c->t0[c->tx_seq % l->o->depth] = t0;
	c->tx_busy = true;
	return true;
}

static bool read_some(struct tloop *l, struct tconn *c, uint64_t now, bool hup);
static void peer_closed(struct tloop *l, struct tconn *c, int e, uint64_t now);

/*
 * A send failed with e. When a close is expected, a reset can fail a send
 * before the echoes that came ahead of it are read: read them first, so
 * that the close is judged at the byte count where it came.
 */
static void send_failed(struct tloop *l, struct tconn *c, uint64_t now, int e)
{
	if (l->o->expect_close && (e == EPIPE || e == ECONNRESET)) {
		if (read_some(l, c, now, true))
			peer_closed(l, c, e, now);
		return;
	}
	tconn_fail(l, c, ERR_CLOSED, "conn %u: send: %s", c->id, strerror(e));
}

/*
 * --tls: writes len bytes from p; returns how many went, or 0 when the
 * write must wait for an edge (blocked, retried then with the same bytes)
 * or the connection ended.
 */
static ssize_t tls_send(struct tloop *l, struct tconn *c, const void *p,
			size_t len, uint64_t now)
{
	ssize_t n = btls_write(c->ssl, p, len);

	if (n > 0)
		return n;
	if (n == BTLS_WANT_WRITE || n == BTLS_WANT_READ) {
		c->blocked = true;
		c->wr_wants_rd = n == BTLS_WANT_READ;
		if (n == BTLS_WANT_WRITE)
			set_out(l, c, true);
	} else if (n == BTLS_EOF) {
		peer_closed(l, c, 0, now);
	} else if (errno) {
		send_failed(l, c, now, errno);
	} else {
		tls_failed(l, c, "write", (int)n);
	}
	return 0;
}

static void send_some(struct tloop *l, struct tconn *c, uint64_t now)
{
	size_t len;
	const unsigned char *p;
	ssize_t n;

	while (c->state == C_OPEN && !c->blocked) {
		if (!c->tx_busy && !may_start(l, c, now))
			return;
		len = l->o->size - c->tx_off;
		p = pat_bytes(pat_start(c->id, c->tx_seq) + c->tx_off, &len);
		if (c->ssl)
			n = tls_send(l, c, p, len, now);
		else
			n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (c->ssl && n == 0)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* From now on this one fills its buffer: keep EPOLLOUT.
			 */
			c->blocked = true;
			set_out(l, c, true);
			return;
		}
		if (n < 0) {
			send_failed(l, c, now, errno);
			return;
		}
		c->tx_off += (size_t)n;
		if (c->tx_off == l->o->size) {
			c->tx_seq++;
			c->tx_off = 0;
			c->tx_busy = false;
		}
	}
}

/* Bytes of message rx_seq that were sent and not yet echoed. */
static size_t expected(const struct tloop *l, const struct tconn *c)
{
	if (c->rx_seq < c->tx_seq)
		return l->o->size - c->rx_off;
	if (c->rx_seq == c->tx_seq && c->tx_busy)
		return c->tx_off - c->rx_off;
	return 0;
}

static void churn_next(struct tloop *l, struct tconn *c, uint64_t now);

/* A whole echo is back: record it; churn closes and starts over. */
static void complete(struct tloop *l, struct tconn *c, uint64_t now)
{
	lg_done(l->th, c->t0[c->rx_seq % l->o->depth], now, l->o->size);
	c->rx_seq++;
	c->rx_off = 0;
	c->rx_bad = false;
	if (l->o->mode == MODE_CHURN) {
		tconn_close(l, c, C_IDLE);
		churn_next(l, c, now);
	} else if (l->stopping && !outstanding(c)) {
		tconn_close(l, c, C_IDLE);
	}
}

/*
 * Counts the differing bytes of k received bytes of message rx_seq, of which
 * byte bad is the first, and the message once as corrupted. Without
 * --keep-going the connection ends there (false): after a byte lost or
 * added every later byte would differ. With it the connection goes on.
 */
static bool corrupted(struct tloop *l, struct tconn *c,
		      const unsigned char *buf, size_t k, size_t bad)
{
	uint64_t pos = pat_start(c->id, c->rx_seq) + c->rx_off + bad;
	size_t one = 1;

	inc(&l->th->st.corrupt_bytes, pat_count_diff(pos, buf + bad, k - bad));
	if (!c->rx_bad)
		lg_error(
			l->th, ERR_MISMATCH,
			"conn %u message %llu byte %zu: sent 0x%02x, got 0x%02x",
			c->id, (unsigned long long)c->rx_seq, c->rx_off + bad,
			*pat_bytes(pos, &one), buf[bad]);
	if (!l->o->keep_going) {
		tconn_close(l, c, C_DEAD);
		return false;
	}
	c->rx_bad = true;
	return true;
}

/*
 * Checks n received bytes against what was sent, across message bounds.
 * Returns false when the connection was closed (error, or churn done).
 */
static bool check(struct tloop *l, struct tconn *c, size_t n, uint64_t now)
{
	const unsigned char *buf = l->rx;
	size_t k;
	long bad;

	while (n) {
		k = expected(l, c);
		if (!k) {
			tconn_fail(
				l, c, ERR_EXCESS,
				"conn %u: %zu bytes more than were sent, after message %llu",
				c->id, n, (unsigned long long)c->rx_seq);
			return false;
		}
		k = k < n ? k : n;
		bad = pat_compare(pat_start(c->id, c->rx_seq) + c->rx_off, buf,
				  k);
		if (bad >= 0 && !corrupted(l, c, buf, k, (size_t)bad))
			return false;
		c->rx_off += k;
		buf += k;
		n -= k;
		if (c->rx_off == l->o->size) {
			complete(l, c, now);
			if (c->state == C_OPEN)
				continue;
			if (n)
				lg_error(
					l->th, ERR_EXCESS,
					"conn %u: %zu bytes more than were sent, after its last message",
					c->id, n);
			return false;
		}
	}
	return true;
}

/*
 * --expect-close: the close came where expected. What was in flight will
 * never come back and is dropped, not counted short (its echoed part was
 * checked as it came); its -n quota is given back. A new connection takes
 * the place of this one, unless the load is over; in churn the slot goes
 * on to its next connection.
 */
static void expected_close(struct tloop *l, struct tconn *c, uint64_t now)
{
	uint64_t next = c->tx_seq + c->tx_busy;

	inc(&l->th->st.expected_closes, 1);
	for (uint64_t seq = c->rx_seq; seq < next; seq++)
		lg_untake(l->th, c->t0[seq % l->o->depth]);
	c->tx_seq = c->rx_seq = next;
	c->tx_off = c->rx_off = 0;
	c->tx_busy = c->rx_bad = false;
	tconn_close(l, c, C_IDLE);
	if (l->o->mode == MODE_CHURN)
		churn_next(l, c, now);
	else if (!l->stopping)
		tconn_open(l, c);
}

/* With --expect-close, why a close (e: 0 or an errno) was not expected. */
static void unexpected_close(struct tloop *l, struct tconn *c, int e)
{
	const char *how = !e		    ? "closed"
			  : e == ECONNRESET ? "reset"
					    : strerror(e);

	tconn_fail(l, c, ERR_CLOSED,
		   "conn %u: %s after %llu bytes, expected %llu", c->id, how,
		   (unsigned long long)c->rx_total,
		   (unsigned long long)l->o->expect_close);
}

/* The server closed: an error unless we were done with the connection. */
static void peer_closed(struct tloop *l, struct tconn *c, int e, uint64_t now)
{
	if (l->o->expect_close && c->rx_total == l->o->expect_close) {
		expected_close(l, c, now);
		return;
	}
	if (!outstanding(c) && l->stopping) {
		tconn_close(l, c, C_IDLE);
		return;
	}
	if (l->o->expect_close) {
		unexpected_close(l, c, e);
		return;
	}
	tconn_fail(
		l, c, ERR_CLOSED,
		"conn %u: %s by server after %llu echoes, %zu bytes of message %llu outstanding",
		c->id, e ? strerror(e) : "closed",
		(unsigned long long)c->rx_seq, expected(l, c),
		(unsigned long long)c->rx_seq);
}

/*
 * --expect-close: echoes past the bytes after which the server should
 * have closed are an error; the close it should have made was missed.
 */
static bool past_close(struct tloop *l, struct tconn *c, size_t n)
{
	uint64_t after = l->o->expect_close;

	c->rx_total += n;
	if (!after || c->rx_total <= after)
		return false;
	tconn_fail(l, c, ERR_CLOSED,
		   "conn %u: %llu bytes echoed, expected a close after %llu",
		   c->id, (unsigned long long)c->rx_total,
		   (unsigned long long)after);
	return true;
}

/*
 * --tls: reads until OpenSSL wants the socket again, since a short read
 * ends a record, not what the socket holds, and records read ahead wait
 * inside the SSL, where no edge announces them.
 */
static bool tls_read_some(struct tloop *l, struct tconn *c, uint64_t now)
{
	ssize_t n;

	for (;;) {
		n = btls_read(c->ssl, l->rx, l->rxcap);
		if (n > 0) {
			if (past_close(l, c, (size_t)n) ||
			    !check(l, c, (size_t)n, now))
				return false;
			continue;
		}
		if (n == BTLS_WANT_READ)
			return true;
		if (n == BTLS_WANT_WRITE) {
			c->rd_wants_wr = true;
			set_out(l, c, true);
			return true;
		}
		if (n == BTLS_EOF || errno)
			peer_closed(l, c, n == BTLS_EOF ? 0 : errno, now);
		else
			tls_failed(l, c, "read", (int)n);
		return false;
	}
}

static bool read_some(struct tloop *l, struct tconn *c, uint64_t now, bool hup)
{
	ssize_t n;

	if (c->ssl)
		return tls_read_some(l, c, now);
	for (;;) {
		n = recv(c->fd, l->rx, l->rxcap, MSG_DONTWAIT);
		if (n > 0) {
			if (past_close(l, c, (size_t)n) ||
			    !check(l, c, (size_t)n, now))
				return false;
			/*
			 * A short read emptied the socket; with EPOLLET the
			 * next arrival raises a new edge. A FIN that came
			 * with the data raises none: read on to see it.
			 */
			if ((size_t)n < l->rxcap && !hup)
				return true;
		} else if (n == 0) {
			peer_closed(l, c, 0, now);
			return false;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return true;
		} else if (errno != EINTR) {
			peer_closed(l, c, errno, now);
			return false;
		}
	}
}

/* Churn: starts the slot's next connection if it is due. */
static void churn_next(struct tloop *l, struct tconn *c, uint64_t now)
{
	uint64_t t0;

	if (l->stopping || c->state != C_IDLE)
		return;
	if (!pace_next(&c->pace, l->th, now, &t0, &l->next_due))
		return;
	/* Latency runs from connect(2) to the last byte of the echo. */
	c->t0[c->tx_seq % l->o->depth] = t0;
	c->tx_busy = true;
	tconn_open(l, c);
}

/*
 * --tls: the handshake is done. What it read ahead is read now, as no
 * edge will announce it; then the load begins.
 */
static void tls_opened(struct tloop *l, struct tconn *c, uint64_t now)
{
	if (btls_pending(c->ssl) && !read_some(l, c, now, false))
		return;
	if (l->running)
		send_some(l, c, now);
}

static void handle(struct tloop *l, struct tconn *c, uint32_t ev, uint64_t now)
{
	bool out = ev & (EPOLLOUT | EPOLLERR | EPOLLHUP);
	bool in = ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP);

	if (c->state == C_CONNECTING) {
		if (!out || !tconn_connected(l, c, now))
			return;
		if (l->running)
			send_some(l, c, now);
		return;
	}
	if (c->state == C_HANDSHAKE) {
		if (handshake(l, c, now))
			tls_opened(l, c, now);
		return;
	}
	if (c->state != C_OPEN)
		return;
	if (out)
		c->blocked = false;
	/* TLS: a write that wanted to read, or a read that wanted to write. */
	if ((ev & EPOLLIN) && c->wr_wants_rd)
		c->blocked = c->wr_wants_rd = false;
	if (out && c->rd_wants_wr) {
		c->rd_wants_wr = false;
		in = true;
	}
	if (in &&
	    !read_some(l, c, now, ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		return;
	send_some(l, c, now);
}

static void dispatch(struct tloop *l, uint64_t deadline)
{
	struct epoll_event ev[MAX_EVENTS];
	uint64_t now;
	int n;

	n = lg_wait(l->epfd, ev, MAX_EVENTS, deadline);
	now = now_ns();
	for (int i = 0; i < n; i++)
		handle(l, &l->c[ev[i].data.u32], ev[i].events, now);
}

/* Open loop: sends whatever is due and finds the next due time. */
static void scan_due(struct tloop *l, uint64_t now)
{
	l->next_due = UINT64_MAX;
	for (uint32_t i = 0; i < l->th->nconns; i++) {
		if (l->o->mode == MODE_CHURN)
			churn_next(l, &l->c[i], now);
		else
			send_some(l, &l->c[i], now);
	}
}

/* End of the load: finish what is in flight, close what is idle. */
static void begin_stop(struct tloop *l, uint64_t now)
{
	struct tconn *c;

	l->stopping = true;
	l->drain_end = now + (uint64_t)(l->o->timeout * 1e9);
	for (uint32_t i = 0; i < l->th->nconns; i++) {
		c = &l->c[i];
		if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE) &&
		    !outstanding(c))
			tconn_close(l, c, C_IDLE);
		if (c->state == C_OPEN && !outstanding(c))
			tconn_close(l, c, C_IDLE);
	}
}

/* Whatever is still in flight after the drain time never came back. */
static void finish(struct tloop *l)
{
	struct tconn *c;

	for (uint32_t i = 0; i < l->th->nconns; i++) {
		c = &l->c[i];
		if (c->state != C_IDLE && c->state != C_DEAD)
			lg_error(
				l->th, ERR_SHORT,
				"conn %u: %zu bytes of message %llu not echoed within %g s",
				c->id, expected(l, c),
				(unsigned long long)c->rx_seq, l->o->timeout);
		tconn_close(l, c, C_IDLE);
	}
}

static void setup(struct tloop *l, struct lg_thread *th)
{
	const struct bench_opts *o = th->lg->o;

	l->th = th;
	l->o = o;
	l->rxcap = RX_CAP;
	l->rx = malloc(l->rxcap);
	l->c = calloc(th->nconns, sizeof(*l->c));
	l->t0s = calloc((size_t)th->nconns * o->depth, sizeof(*l->t0s));
	if (!l->rx || !l->c || !l->t0s)
		err(1, "malloc");
	l->next_due = UINT64_MAX;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		err(1, "epoll_create1");
	for (uint32_t i = 0; i < th->nconns; i++) {
		l->c[i].fd = -1;
		l->c[i].id = th->first + i * o->threads;
		l->c[i].t0 = l->t0s + (size_t)i * o->depth;
	}
}

/*
 * Opens every connection before the clock starts (churn opens its own),
 * at most --connect-rate a second over all threads, then waits up to
 * --timeout, at least 5 s, for the handshakes.
 */
static void connect_all(struct tloop *l)
{
	const struct bench_opts *o = l->o;
	double gap = o->connect_rate > 0 ? 1 / o->connect_rate : 0;
	uint64_t begin = now_ns(), due, deadline;
	bool pending = true;

	if (o->mode == MODE_CHURN)
		return;
	for (uint32_t i = 0; i < l->th->nconns; i++) {
		/*
		 * Connection k overall (i here) is due at k / rate, so the
		 * threads interleave; handshakes are handled meanwhile.
		 */
		due = begin + (uint64_t)((double)(i * o->threads +
						  (uint32_t)l->th->id) *
					 gap * 1e9);
		while (now_ns() < due)
			dispatch(l, due);
		tconn_open(l, &l->c[i]);
	}
	deadline = now_ns() + 5000000000ULL;
	if (o->timeout > 5)
		deadline += (uint64_t)((o->timeout - 5) * 1e9);
	while (pending && now_ns() < deadline) {
		dispatch(l, deadline);
		pending = false;
		for (uint32_t i = 0; i < l->th->nconns; i++)
			pending |= l->c[i].state == C_CONNECTING ||
				   l->c[i].state == C_HANDSHAKE;
	}
	for (uint32_t i = 0; i < l->th->nconns; i++)
		if (l->c[i].state == C_CONNECTING)
			tconn_fail(l, &l->c[i], ERR_CONNECT,
				   "connect %s: no answer within 5 s",
				   o->target);
		else if (l->c[i].state == C_HANDSHAKE)
			tconn_fail(l, &l->c[i], ERR_TLS,
				   "conn %u: TLS handshake with %s: no answer",
				   l->c[i].id, o->target);
}

/*
 * Whether the load ends now. With -n and --expect-close a spent quota ends
 * it only once nothing is in flight: a message an expected close cuts short
 * gives its quota back (expected_close), and another must take its place
 * for the run to measure its N echoes.
 */
static bool load_over(struct tloop *l, uint64_t now)
{
	const struct lg_thread *th = l->th;

	if (!lg_stopping(th, now))
		return false;
	if (!l->o->expect_close || now >= th->lg->end ||
	    __atomic_load_n(&th->lg->stop, __ATOMIC_RELAXED))
		return true;
	for (uint32_t i = 0; i < th->nconns; i++)
		if (l->c[i].state == C_OPEN && outstanding(&l->c[i]))
			return false;
	return true;
}

static void tcp_run(struct lg_thread *th)
{
	struct tloop l = {0};
	uint64_t now, deadline;

	setup(&l, th);
	connect_all(&l);
	pthread_barrier_wait(&th->lg->ready);
	pthread_barrier_wait(&th->lg->go);
	l.running = true;
	for (uint32_t i = 0; i < th->nconns; i++)
		pace_init(&l.c[i].pace, th, l.c[i].id);
	scan_due(&l, now_ns());
	for (;;) {
		now = now_ns();
		if (!l.stopping && load_over(&l, now))
			begin_stop(&l, now);
		if (l.dead == th->nconns ||
		    (!l.open && (l.stopping || l.o->mode != MODE_CHURN)))
			break;
		if (l.stopping && now >= l.drain_end)
			break;
		if (!l.stopping && l.o->rate > 0 && now >= l.next_due)
			scan_due(&l, now);
		deadline = l.stopping ? l.drain_end : th->lg->end;
		if (!l.stopping && l.o->rate > 0 && l.next_due < deadline)
			deadline = l.next_due;
		dispatch(&l, deadline);
	}
	finish(&l);
	for (uint32_t i = 0; i < th->nconns; i++)
		btls_session_free(l.c[i].sess);
	close(l.epfd);
	free(l.t0s);
	free(l.c);
	free(l.rx);
}

const struct lg_ops tcp_client_ops = {
	.run = tcp_run,
};
