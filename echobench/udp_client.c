// SPDX-License-Identifier: BSD-2-Clause
/*
 * udp_client.c - the UDP client loop of one thread: closed and open loop over
 * connected datagram sockets. Losses, reorders and duplicates are what
 * UDP may do, so they are counted, not failed on; a datagram whose bytes
 * differ from what was sent fails the run.
 *
 * Each datagram starts with a 16-byte header (sequence number, connection
 * id, size) so that an echo can be matched to its datagram whatever order
 * they come back in; the rest is cut from the pattern like a TCP message,
 * and the header is checked byte for byte too.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <err.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"
#include "opts.h"
#include "pace.h"
#include "pattern.h"
#include "udp_client.h"

enum {
	UWIN = 1024, /* datagrams remembered per socket; depth <= UWIN / 2 */
	HDR = 16,
	MAX_EVENTS = 256,
};

enum dstate {
	D_OUT = 1, /* sent, no echo yet */
	D_DONE, /* echoed */
	D_LOST, /* no echo within --timeout */
};

struct dgram_hdr {
	uint64_t seq;
	uint32_t conn;
	uint32_t size;
};

/* One socket; slot seq % UWIN describes datagram seq while it is recent. */
struct udp_client {
	int fd;
	uint32_t id;
	bool blocked; /* send hit EAGAIN: wait for EPOLLOUT */
	bool dead; /* the server refused: ICMP port unreachable */
	uint64_t tx_seq; /* next datagram to send */
	uint64_t lo; /* lowest datagram neither echoed nor lost */
	struct pace pace; /* open loop: when tx_seq is due */
	uint64_t t0[UWIN]; /* latency base: send time, or due time */
	uint64_t sent[UWIN]; /* when it really left, for the loss timer */
	uint8_t state[UWIN];
};

/* A thread's UDP state; lives on its stack while it runs. */
struct udp_loop {
	struct lg_thread *th;
	const struct bench_opts *o;
	struct udp_client *c;
	unsigned char *rx;
	int epfd;
	uint64_t timeout; /* ns */
	uint64_t next_wake; /* earliest due or loss time */
	bool stopping;
};

static void want(struct udp_loop *l, uint64_t t)
{
	if (t < l->next_wake)
		l->next_wake = t;
}

/* Declares lost what has waited --timeout; moves lo past answered ones. */
static void expire(struct udp_loop *l, struct udp_client *c, uint64_t now)
{
	unsigned int i;

	for (; c->lo < c->tx_seq; c->lo++) {
		i = c->lo % UWIN;
		if (c->state[i] != D_OUT)
			continue;
		if (c->sent[i] + l->timeout > now) {
			want(l, c->sent[i] + l->timeout);
			return;
		}
		c->state[i] = D_LOST;
		lg_error(l->th, ERR_LOST, "lost");
	}
}

static bool may_start(struct udp_loop *l, struct udp_client *c, uint64_t now)
{
	uint64_t t0;

	if (l->stopping || c->dead || c->tx_seq - c->lo >= l->o->depth)
		return false;
	if (!pace_next(&c->pace, l->th, now, &t0, &l->next_wake))
		return false;
	c->t0[c->tx_seq % UWIN] = t0;
	return true;
}

static void refused(struct udp_loop *l, struct udp_client *c, int e)
{
	lg_error(l->th, ERR_CLOSED, "conn %u: %s", c->id, strerror(e));
	c->dead = true;
}

static void send_some(struct udp_loop *l, struct udp_client *c, uint64_t now)
{
	struct dgram_hdr h = {.conn = c->id, .size = (uint32_t)l->o->size};
	struct iovec iov[2];
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	unsigned int i;

	while (!c->blocked && may_start(l, c, now)) {
		h.seq = c->tx_seq;
		iov[0] = (struct iovec){&h, HDR};
		iov[1].iov_len = l->o->size - HDR;
		iov[1].iov_base = (void *)pat_bytes(pat_start(c->id, h.seq),
						    &iov[1].iov_len);
		if (sendmsg(c->fd, &m, MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				c->blocked = true;
			else if (errno == ENOBUFS)
				want(l, now + 1000000); /* no edge will come */
			else if (errno == ECONNREFUSED)
				refused(l, c, errno);
			else if (errno != EINTR)
				err(1, "conn %u: sendmsg", c->id);
			/* t0 stays for the retry; nothing was taken twice. */
			return;
		}
		i = c->tx_seq++ % UWIN;
		c->sent[i] = now;
		c->state[i] = D_OUT;
		want(l, now + l->timeout);
	}
}

/* Matches one echo to its datagram and checks every byte of it. */
static void check(struct udp_loop *l, struct udp_client *c, size_t n,
		  uint64_t now)
{
	struct dgram_hdr h;
	unsigned int i;

	memcpy(&h, l->rx, sizeof(h));
	if (n != l->o->size || h.conn != c->id || h.size != n ||
	    h.seq >= c->tx_seq) {
		lg_error(l->th, n < l->o->size ? ERR_SHORT : ERR_MISMATCH,
			 "conn %u: a %zu-byte datagram that was not sent",
			 c->id, n);
		return;
	}
	if (pat_compare(pat_start(c->id, h.seq), l->rx + HDR, n - HDR) >= 0) {
		inc(&l->th->st.corrupt_bytes,
		    pat_count_diff(pat_start(c->id, h.seq), l->rx + HDR,
				   n - HDR));
		lg_error(l->th, ERR_MISMATCH,
			 "conn %u datagram %llu: bytes differ from those sent",
			 c->id, (unsigned long long)h.seq);
		return;
	}
	i = h.seq % UWIN;
	if (c->tx_seq - h.seq > UWIN / 2 || c->state[i] == D_LOST) {
		lg_error(l->th, ERR_LATE, "late");
	} else if (c->state[i] == D_DONE) {
		lg_error(l->th, ERR_DUP, "duplicate");
	} else {
		if (h.seq != c->lo)
			lg_error(l->th, ERR_REORDER, "reordered");
		c->state[i] = D_DONE;
		lg_done(l->th, c->t0[i], now, n);
	}
}

static void read_some(struct udp_loop *l, struct udp_client *c, uint64_t now)
{
	ssize_t n;

	for (;;) {
		n = recv(c->fd, l->rx, 65536, MSG_DONTWAIT | MSG_TRUNC);
		if (n >= 0) {
			check(l, c, (size_t)n, now);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNREFUSED)
			refused(l, c, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			err(1, "conn %u: recv", c->id);
		return;
	}
}

static void setup(struct udp_loop *l, struct lg_thread *th)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
	const struct bench_opts *o = th->lg->o;
	struct udp_client *c;

	l->th = th;
	l->o = o;
	l->timeout = (uint64_t)(o->timeout * 1e9);
	l->next_wake = UINT64_MAX;
	l->rx = malloc(65536);
	l->c = calloc(th->nconns, sizeof(*l->c));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!l->rx || !l->c)
		err(1, "malloc");
	if (l->epfd < 0)
		err(1, "epoll_create1");
	for (uint32_t i = 0; i < th->nconns; i++) {
		c = &l->c[i];
		c->id = th->first + i * o->threads;
		c->fd = socket(o->addr.ss_family,
			       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			err(1, "socket");
		errno = -lg_bind_source(c->fd, o, c->id);
		if (errno)
			err(1, "bind to --source");
		if (connect(c->fd, (const struct sockaddr *)&o->addr,
			    o->addrlen))
			err(1, "connect %s", o->target);
		ev.data.u32 = i;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev))
			err(1, "epoll_ctl");
	}
}

static void scan(struct udp_loop *l, uint64_t now)
{
	l->next_wake = UINT64_MAX;
	for (uint32_t i = 0; i < l->th->nconns; i++) {
		expire(l, &l->c[i], now);
		send_some(l, &l->c[i], now);
	}
}

static bool all_answered(const struct udp_loop *l)
{
	for (uint32_t i = 0; i < l->th->nconns; i++)
		if (l->c[i].lo != l->c[i].tx_seq && !l->c[i].dead)
			return false;
	return true;
}

static bool all_dead(const struct udp_loop *l)
{
	for (uint32_t i = 0; i < l->th->nconns; i++)
		if (!l->c[i].dead)
			return false;
	return true;
}

static void dispatch(struct udp_loop *l, uint64_t deadline)
{
	struct epoll_event ev[MAX_EVENTS];
	struct udp_client *c;
	uint64_t now;
	int n;

	n = lg_wait(l->epfd, ev, MAX_EVENTS, deadline);
	now = now_ns();
	for (int i = 0; i < n; i++) {
		c = &l->c[ev[i].data.u32];
		if (ev[i].events & (EPOLLOUT | EPOLLERR))
			c->blocked = false;
		if (ev[i].events & (EPOLLIN | EPOLLERR))
			read_some(l, c, now);
		expire(l, c, now);
		send_some(l, c, now);
	}
}

static void udp_run(struct lg_thread *th)
{
	struct udp_loop l = {0};
	uint64_t now, deadline, drain_end = 0;

	setup(&l, th);
	pthread_barrier_wait(&th->lg->ready);
	pthread_barrier_wait(&th->lg->go);
	for (uint32_t i = 0; i < th->nconns; i++)
		pace_init(&l.c[i].pace, th, l.c[i].id);
	scan(&l, now_ns());
	for (;;) {
		now = now_ns();
		if (!l.stopping && lg_stopping(th, now)) {
			l.stopping = true;
			drain_end = now + l.timeout;
		}
		if (all_dead(&l) ||
		    (l.stopping && (all_answered(&l) || now >= drain_end)))
			break;
		if (now >= l.next_wake)
			scan(&l, now);
		deadline = l.stopping ? drain_end : th->lg->end;
		if (l.next_wake < deadline)
			deadline = l.next_wake;
		dispatch(&l, deadline);
	}
	/* What the drain did not bring back is lost. */
	scan(&l, UINT64_MAX - l.timeout);
	for (uint32_t i = 0; i < th->nconns; i++)
		close(l.c[i].fd);
	close(l.epfd);
	free(l.c);
	free(l.rx);
}

const struct lg_ops udp_client_ops = {
	.run = udp_run,
};
