/*
 * backend_epoll.c - the readiness backend: one level-triggered epoll loop
 * per worker.
 *
 * An echo is one recv(2) into the worker's scratch buffer and one send(2)
 * straight back; only bytes the socket would not take are copied into the
 * connection's pending buffer, and while any wait there the connection
 * reads into that buffer's tail, never past --max-pending, then stops
 * reading (EPOLLIN off) until the client drains it. Level-triggered mode
 * lets one recv per wakeup suffice: no extra recv to see EAGAIN, and a
 * busy peer cannot starve the others.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "udp.h"
#include "worker.h"

enum {
	MAX_EVENTS = 256,
	ACCEPTS_PER_WAKEUP = 64,
	SCRATCH_SIZE = 64 * 1024,
	POOL_CACHE = 64, /* pending buffers kept for reuse */
	ACCEPT_PAUSE_MS = 100, /* when out of descriptors */
};

/* epoll data: a connection is (gen << 32 | slot); the rest are tagged. */
#define TAG_SPECIAL (1ULL << 63)
#define TAG_STOP (TAG_SPECIAL | 0xffffu)
#define TAG_LISTEN(i) (TAG_SPECIAL | (uint64_t)(i))
#define TAG_UDP_BIT 0x10000u
#define TAG_UDP(i) (TAG_SPECIAL | TAG_UDP_BIT | (uint64_t)(i))

/* One worker's loop state; lives on the worker thread's stack. */
struct loop {
	struct worker *w;
	const struct options *o;
	int epfd;
	int reserve_fd; /* spare descriptor, given up to refuse on EMFILE */
	char *scratch;
	size_t read_size;
	struct conn_pool pool;
	struct conn_table table;
	struct conn_lists lists; /* every open connection, by deadline */
	uint64_t now_ms;
	uint64_t paused_until; /* accepting paused (EMFILE) until then */
	bool exhausted; /* in an out-of-descriptors episode */
	struct udp_worker udp;
};

static void update_clock(struct loop *l)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	l->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static void close_conn(struct loop *l, struct conn *c, const char *why)
{

	worker_count_close(l->w, c, why);
	conn_lists_remove(&l->lists, c);
	conn_release(&l->pool, c);
	/* close() also drops the fd from the epoll set: it is never dup'd. */
	close(c->fd);
	worker_conn_put(l->w);
	conn_table_put(&l->table, c);
}

/* A transient error is no error; anything else ends the connection. */
static bool fatal_errno(int err)
{
	return err != EAGAIN && err != EWOULDBLOCK && err != EINTR;
}

/*
 * Sends what is pending. Returns 0, or -errno when the connection must
 * close (the peer reset or went away).
 */
static int flush(struct loop *l, struct conn *c)
{
	ssize_t n;

	while (c->len > 0) {
		n = send(c->fd, c->pending + c->off, c->len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fatal_errno(errno) ? -errno : 0;
		}
		conn_sent(&l->pool, c, (size_t)n);
	}
	return 0;
}

/*
 * Echoes data[0, n) at once, keeping whatever the socket does not take.
 * Returns 0 or -errno.
 */
static int echo_now(struct loop *l, struct conn *c, const char *data, size_t n)
{
	ssize_t sent;

	do {
		sent = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (sent < 0 && errno == EINTR);
	if (sent < 0) {
		if (fatal_errno(errno))
			return -errno;
		sent = 0;
	}
	c->bytes_out += (uint64_t)sent;
	if ((size_t)sent == n)
		return 0;
	return conn_keep(&l->pool, c, data + sent, n - (size_t)sent);
}

/*
 * One recv for c: into the scratch buffer when nothing is pending (the
 * common case, echoed at once), else into the pending buffer's tail so
 * order is kept. Returns 0, 1 on end-of-file, or -errno.
 */
static int read_once(struct loop *l, struct conn *c)
{
	const struct options *o = l->o;
	size_t space, echo;
	ssize_t n;
	char *buf;

	if (c->len == 0) {
		buf = l->scratch;
		space = l->read_size;
	} else {
		buf = conn_tail(o, &l->pool, c, &space);
		if (buf == NULL)
			return -ENOMEM;
	}
	do {
		n = recv(c->fd, buf, space, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fatal_errno(errno) ? -errno : 0;
	if (n == 0)
		return 1;
	if (c->len == 0) {
		echo = conn_consume(o, c, buf, (size_t)n);
		return echo ? echo_now(l, c, buf, echo) : 0;
	}
	conn_tail_filled(o, c, (size_t)n);
	return flush(l, c);
}

/*
 * Brings c's epoll interest in line with its state: read while there is
 * room under --max-pending and the peer may still send; wait for
 * writability while bytes are pending. Returns 0 or -errno.
 */
static int update_interest(struct loop *l, struct conn *c)
{
	struct epoll_event ev = {0};
	uint32_t want = 0;

	if (!(c->flags & CONN_PEER_EOF) && conn_room(l->o, c) > 0)
		want |= EPOLLIN;
	if (c->len > 0)
		want |= EPOLLOUT;
	if (want == (uint32_t)c->backend_state)
		return 0;
	ev.events = want;
	ev.data.u64 = (uint64_t)c->gen << 32 | c->slot;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -errno;
	c->backend_state = (int)want;
	return 0;
}

static void handle_conn(struct loop *l, struct conn *c, uint32_t events)
{
	int err = 0;

	if ((events & EPOLLOUT) && c->len > 0)
		err = flush(l, c);
	if (!err && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    !(c->flags & CONN_PEER_EOF)) {
		err = read_once(l, c);
		if (err == 1) {
			c->flags |= CONN_PEER_EOF;
			err = 0;
		}
	}
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		close_conn(l, c, err == -ENOMEM ? "out of memory" : "error");
		return;
	}
	if (c->len == 0 && (c->flags & CONN_PEER_EOF)) {
		close_conn(l, c, "end of input");
		return;
	}
	if (c->len == 0 && (c->flags & CONN_LIMIT) &&
	    !(c->flags & CONN_SHUT_WR))
		conn_finish_limit(&l->lists, c, l->now_ms);
	conn_touch(&l->lists, l->o, c, l->now_ms);
	err = update_interest(l, c);
	if (err < 0)
		close_conn(l, c, "epoll_ctl failed");
}

static int add_conn(struct loop *l, int fd, const union net_addr *peer, int lfd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	char text[NET_ADDR_TEXT];
	struct conn *c;

	c = conn_table_get(&l->table);
	if (c == NULL)
		return -ENOMEM;
	c->fd = fd;
	c->peer = *peer;
	c->backend_state = EPOLLIN;
	ev.data.u64 = (uint64_t)c->gen << 32 | c->slot;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_table_put(&l->table, c);
		return -errno;
	}
	net_tune_conn(fd);
	conn_lists_add(&l->lists, c, l->now_ms);
	l->w->stats.accepted++;
	log_verbose("accept fd %d peer %s on fd %d", fd,
		    net_addr_text(&peer->sa, text, sizeof(text)), lfd);
	return 0;
}

static void set_listening(struct loop *l, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	for (int i = 0; i < l->w->nlisten; i++) {
		ev.data.u64 = TAG_LISTEN(i);
		epoll_ctl(l->epfd, EPOLL_CTL_MOD, l->w->listen_fds[i], &ev);
	}
}

/*
 * Out of descriptors: give up the spare one to accept and close each
 * waiting client, so they are refused quickly instead of hanging in the
 * backlog; if even that fails, stop accepting for a moment instead of
 * spinning on a listener that stays readable.
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
		return;
	set_listening(l, 0);
	l->paused_until = l->now_ms + ACCEPT_PAUSE_MS;
}

static void handle_accept(struct loop *l, int lfd)
{
	union net_addr peer;
	socklen_t len;
	int fd, err;

	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		len = sizeof(peer);
		fd = accept4(lfd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
			    err == ENOMEM) {
				handle_exhaustion(l, lfd, err);
				return;
			}
			/* ECONNABORTED, EINTR, EPROTO...: that client only. */
			log_debug("accept on fd %d: %s", lfd, strerror(err));
			continue;
		}
		if (l->exhausted) {
			log_info("accepting again on fd %d", lfd);
			l->exhausted = false;
		}
		if (worker_admit(l->w, fd) < 0)
			continue;
		if (add_conn(l, fd, &peer, lfd) < 0) {
			worker_conn_put(l->w);
			l->w->stats.refused++;
			close(fd);
		}
	}
}

/* Closes connections whose idle or linger time ran out. */
static void expire(struct loop *l)
{
	const char *why;
	struct conn *c;

	while ((c = conn_expired(&l->lists, l->o, l->now_ms, &why)))
		close_conn(l, c, why);
	if (l->paused_until && l->paused_until <= l->now_ms) {
		l->paused_until = 0;
		set_listening(l, EPOLLIN);
	}
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

static int loop_init(struct loop *l, struct worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_STOP};

	memset(l, 0, sizeof(*l));
	l->w = w;
	l->o = w->opts;
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->read_size = l->o->max_pending < SCRATCH_SIZE ? l->o->max_pending
							: SCRATCH_SIZE;
	l->scratch = malloc(SCRATCH_SIZE);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0 || l->scratch == NULL ||
	    conn_pool_init(&l->pool, l->o->max_pending, POOL_CACHE) < 0)
		return l->epfd < 0 ? -errno : -ENOMEM;
	if (w->nudp && udp_init(&l->udp, l->o, w->port) < 0)
		return -ENOMEM;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->stop_fd, &ev) < 0)
		return -errno;
	for (int i = 0; i < w->nlisten + w->nudp; i++) {
		bool udp = i >= w->nlisten;
		int fd = udp ? w->udp_fds[i - w->nlisten] : w->listen_fds[i];

		ev.data.u64 = udp ? TAG_UDP(i - w->nlisten) : TAG_LISTEN(i);
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
	}
	update_clock(l);
	return 0;
}

static void loop_destroy(struct loop *l)
{
	while (l->lists.idle.head)
		close_conn(l, l->lists.idle.head, "shutdown");
	while (l->lists.linger.head)
		close_conn(l, l->lists.linger.head, "shutdown");
	conn_table_destroy(&l->table);
	l->w->udp_stats = l->udp.stats;
	udp_destroy(&l->udp);
	if (l->pool.free)
		conn_pool_destroy(&l->pool);
	free(l->scratch);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
}

static void dispatch(struct loop *l, const struct epoll_event *ev, bool *stop)
{
	uint64_t tag = ev->data.u64;
	struct conn *c;
	int fd, err;

	if (tag == TAG_STOP) {
		*stop = true;
	} else if (tag & TAG_SPECIAL && tag & TAG_UDP_BIT) {
		fd = l->w->udp_fds[tag & 0xffff];
		err = udp_serve(&l->udp, fd, l->now_ms);
		if (err < 0)
			log_warn("udp fd %d: %s", fd, strerror(-err));
	} else if (tag & TAG_SPECIAL) {
		handle_accept(l, l->w->listen_fds[tag & 0xffff]);
	} else {
		c = conn_table_find(&l->table, (uint32_t)tag,
				    (uint32_t)(tag >> 32));
		/* A connection closed earlier in this batch is stale. */
		if (c)
			handle_conn(l, c, ev->events);
	}
}

static int run(struct worker *w)
{
	struct epoll_event events[MAX_EVENTS];
	struct loop l;
	bool stop = false;
	int n, err;

	err = loop_init(&l, w);
	if (err < 0) {
		snprintf(w->why, sizeof(w->why), "epoll set-up: %s",
			 strerror(-err));
		loop_destroy(&l);
		return err;
	}
	while (!stop) {
		n = epoll_wait(l.epfd, events, MAX_EVENTS, next_timeout(&l));
		if (n < 0 && errno != EINTR) {
			err = -errno;
			snprintf(w->why, sizeof(w->why), "epoll_wait: %s",
				 strerror(errno));
			break;
		}
		update_clock(&l);
		for (int i = 0; i < n; i++)
			dispatch(&l, &events[i], &stop);
		expire(&l);
	}
	loop_destroy(&l);
	return err;
}

const struct backend_ops backend_epoll = {
	.name = "epoll",
	.probe = probe,
	.run = run,
};
