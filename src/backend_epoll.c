// SPDX-License-Identifier: BSD-2-Clause
/*
 * backend_epoll.c - the readiness backend: one epoll loop per worker, turning
 * "readable" and "writable" into calls on the loop core.
 *
 * An echo is one recv(2) into the worker's scratch buffer and one send(2)
 * straight back; only bytes the socket would not take are copied into
 * the connection's queue, and while any wait there the connection reads
 * into the queue's tail, never past --max-pending, then stops reading
 * (EPOLLIN off) until the client drains it.
 *
 * Connections are edge-triggered. Level-triggered, epoll polls every
 * reported socket once more at the next epoll_wait, to see whether it
 * is still readable; for a ping-pong echo it is not, and that second
 * look at a socket long gone from the cache is what made each echo
 * dearer with 10,000 connections than with 50. Edge-triggered, a read
 * that comes back short proves the socket empty (the next arrival
 * raises a new edge), so most echoes still take one recv. A FIN that
 * came before the read raises no edge of its own: EPOLLRDHUP in the
 * event says so, and then reads go on until end-of-file. A read that
 * fills its buffer reads on too, and after READS_PER_EVENT the connection
 * is re-armed behind the others, so that a streaming peer cannot
 * starve them. A streaming peer's bytes go through a pipe (splice.h).
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "compiler.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "splice.h"
#include "sys.h"

enum {
	MAX_EVENTS = 256,
	/*
	 * Not uvloop's 256 KiB: reads and sends of that size cost 1.7x the
	 * CPU per streamed byte here, the bytes no longer staying in cache
	 * between the copy in and the copy out.
	 */
	SCRATCH_SIZE = 64 * 1024,
	READS_PER_EVENT = 4,
};

/* What read_once found, besides -errno. */
enum read_result {
	READ_DRAINED = 0, /* EAGAIN: the socket is empty */
	READ_EOF = 1,
	READ_SHORT = 2, /* less than asked: empty, but for a FIN */
	READ_FULL = 3, /* the buffer filled: more may wait */
};

/* epoll data: a connection is (gen << 32 | slot); the rest are tagged. */
#define TAG_SPECIAL (1ULL << 63)
#define TAG_CTL (TAG_SPECIAL | 0xffffu)
#define TAG_LISTEN(i) (TAG_SPECIAL | (uint64_t)(i))
#define TAG_UDP_BIT 0x10000u
#define TAG_UDP(i) (TAG_SPECIAL | TAG_UDP_BIT | (uint64_t)(i))

/* One worker's loop state; lives on the worker thread's stack. */
struct eloop {
	struct core core;
	int epfd;
	char *scratch;
	size_t read_size;
	struct splicer splicer; /* for streaming peers */
};

/* Each connection's private state. */
struct econn {
	uint32_t events; /* what it is registered for */
	struct stream stream;
};

static uint32_t *registered(struct conn *c)
{
	return &((struct econn *)conn_priv(c))->events;
}

static struct stream *stream(struct conn *c)
{
	return &((struct econn *)conn_priv(c))->stream;
}

static void close_conn(struct eloop *l, struct conn *c, enum close_reason why)
{
	core_retire(&l->core, c, why);
	core_free(&l->core, c);
}

/* A transient error is no error; anything else ends the connection. */
static bool fatal_errno(int err)
{
	return err != EAGAIN && err != EWOULDBLOCK && err != EINTR;
}

/*
 * Sends what is queued. Returns 0, or -errno when the connection must
 * close (the peer reset or went away).
 */
static int flush(struct eloop *l, struct conn *c)
{
	uint16_t unused[OUTQ_LENT_MAX];
	const char *data;
	size_t len;
	ssize_t n;

	/* Nothing is ever lent here: unused stays unused. */
	while ((len = outq_front(&l->core.pool, &c->out, &data)) > 0) {
		n = sys_send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fatal_errno(errno) ? -errno : 0;
		}
		c->bytes_out += (uint64_t)n;
		outq_sent(&l->core.pool, &c->out, (size_t)n, unused);
	}
	return 0;
}

/*
 * Echoes data[0, n) at once, queueing whatever the socket does not take.
 * Returns 0 or -errno.
 */
static ALWAYS_INLINE int echo_now(struct eloop *l, struct conn *c,
				  const char *data, size_t n)
{
	ssize_t sent;

	do {
		sent = sys_send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (sent < 0 && errno == EINTR);
	if (sent < 0) {
		if (fatal_errno(errno))
			return -errno;
		sent = 0;
	}
	c->bytes_out += (uint64_t)sent;
	if ((size_t)sent == n)
		return 0;
	return outq_append(&l->core.pool, &c->out, data + sent,
			   n - (size_t)sent);
}

/*
 * One read of a streaming peer, through the pipe. Returns an enum
 * read_result or -errno.
 */
static int splice_once(struct eloop *l, struct conn *c)
{
	ssize_t n = splicer_echo(&l->splicer, &l->core, c,
				 splice_size(l->core.o->max_pending));

	if (n == -EINVAL) {
		/*
		 * A socket that cannot splice (inetd's may be any), or not
		 * now (an urgent mark): recv. At the mark that too may find
		 * nothing for a moment (splicer_echo says when), and no edge
		 * would follow: the registration is forgotten, so that
		 * update_interest re-arms it (EPOLL_CTL_MOD polls the socket).
		 */
		stream(c)->on = 0;
		*registered(c) = 0;
		return READ_FULL;
	}
	if (n < 0)
		return fatal_errno((int)-n) ? (int)n : READ_DRAINED;
	return n == 0 ? READ_EOF : READ_FULL;
}

/*
 * Whether c's next read goes through the pipe: it streams, nothing of
 * it is queued, and its bytes need no looking at.
 */
static bool splice_ready(const struct eloop *l, struct conn *c)
{
	return splicer_wants(&l->splicer, stream(c), l->core.o) &&
	       outq_bytes(&c->out) == 0;
}

/*
 * One recv for c: into the scratch buffer when nothing is queued (the
 * common case, echoed at once), else into the queue's tail so order is
 * kept; through the pipe when c streams. Returns an enum read_result or
 * -errno.
 */
static ALWAYS_INLINE int read_once(struct eloop *l, struct conn *c, bool urgent)
{
	const struct options *o = l->core.o;
	bool queued = outq_bytes(&c->out) > 0;
	size_t space, echo;
	char *buf = l->scratch;
	ssize_t n;
	int err;

	/* Under --memory: a small read while tight, none while waiting. */
	space = core_read_room(&l->core, c,
			       queued ? outq_room(&c->out, o->max_pending)
				      : l->read_size);
	if (space == 0)
		return READ_DRAINED;
	/*
	 * splice(2) never reads past the urgent mark (tcp_read_sock stops
	 * there: EAGAIN, or 0 after a FIN, which would read as the end):
	 * with urgent data in, recv takes it in line.
	 */
	if (stream(c)->on && !urgent && !queued && space == l->read_size &&
	    splice_ready(l, c))
		return splice_once(l, c);
	if (queued)
		buf = outq_tail(&l->core.pool, &c->out, o->max_pending, &space);
	do {
		n = sys_recv(c->fd, buf, space, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fatal_errno(errno) ? -errno : READ_DRAINED;
	if (n == 0)
		return READ_EOF;
	echo = conn_consume(o, c, buf, (size_t)n);
	if (!queued) {
		err = echo ? echo_now(l, c, buf, echo) : 0;
	} else {
		outq_tail_filled(&c->out, echo);
		err = flush(l, c);
	}
	if (err < 0)
		return err;
	stream_read(stream(c), (size_t)n, l->read_size);
	return (size_t)n == space ? READ_FULL : READ_SHORT;
}

/*
 * Reads what an edge announced: on while reads fill their buffer, or,
 * when a short read does not mean the socket is empty, until it is
 * (to_end): the peer's FIN is in, or urgent data is (a read stops short
 * at the urgent mark, SO_OOBINLINE, and no edge would come for the rest).
 * Only while there is room. Returns an enum read_result (READ_FULL:
 * stopped at READS_PER_EVENT with more perhaps waiting) or -errno.
 */
static ALWAYS_INLINE int read_ready(struct eloop *l, struct conn *c,
				    bool to_end, bool urgent)
{
	uint64_t before = c->bytes_in;
	int r = READ_FULL;

	/* Without room read_once reads nothing: re-armed on resume. */
	for (int i = 0; i < READS_PER_EVENT && r == READ_FULL; i++) {
		r = read_once(l, c, urgent);
		if (to_end && r == READ_SHORT)
			r = READ_FULL;
	}
	stream_edge(stream(c), c->bytes_in - before);
	return r;
}

#define READING (EPOLLET | EPOLLIN | EPOLLRDHUP | EPOLLPRI)

/*
 * Whether c reads on after an echo that all went out: nothing pooled,
 * so nothing waits and memory is no matter. interest() answers the same
 * for it, in more steps.
 */
static bool reads_on(const struct conn *c)
{
	return !conn_core_served(c) && c->out.buf == NULL &&
	       !(c->flags & (CONN_PEER_EOF | CONN_MEMWAIT));
}

/*
 * What c's epoll interest must be: read while there is room under
 * --max-pending and --memory and the peer may still send; wait for
 * writability while bytes are queued. One the core serves says itself.
 */
static uint32_t interest(struct eloop *l, struct conn *c)
{
	uint32_t want = EPOLLET;
	bool served = conn_core_served(c);
	unsigned int core_wants;

	if (reads_on(c))
		return READING;
	core_wants = served ? core_serve_wants(&l->core, c) : 0;
	if (served ? core_wants & CORE_WANT_READ
		   : !(c->flags & CONN_PEER_EOF) &&
			     core_may_read(&l->core, c,
					   outq_room(&c->out,
						     l->core.o->max_pending)))
		want |= READING;
	if (served ? core_wants & CORE_WANT_WRITE : outq_bytes(&c->out) > 0)
		want |= EPOLLOUT;
	return want;
}

/* Registers events for c with op (EPOLL_CTL_ADD or _MOD); 0 or -errno. */
static int watch(struct eloop *l, struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	ev.data.u64 = (uint64_t)c->gen << 32 | c->slot;
	if (epoll_ctl(l->epfd, op, c->fd, &ev) < 0)
		return -errno;
	*registered(c) = events;
	return 0;
}

/*
 * Brings c's epoll interest in line with its state. A change, or rearm,
 * re-arms the edge: the kernel polls the socket then and queues an
 * event if it is ready, so turning reading back on finds bytes that
 * came meanwhile. Returns 0 or -errno.
 */
static NOINLINE int change_interest(struct eloop *l, struct conn *c, bool rearm)
{
	uint32_t want = interest(l, c);

	/* The core reads a connection it serves only so far: look again. */
	if (want == *registered(c) && !rearm && !conn_core_served(c))
		return 0;
	return watch(l, c, EPOLL_CTL_MOD, want);
}

static inline int update_interest(struct eloop *l, struct conn *c, bool rearm)
{
	/* As most echoes leave it: no question for the core, no frame. */
	if (!rearm && *registered(c) == READING && reads_on(c))
		return 0;
	return change_interest(l, c, rearm);
}

/*
 * What an event of c's means, read and sent as echoes: CLOSE_NONE, or
 * why c must close. *more: reads stopped with bytes perhaps waiting.
 */
static ALWAYS_INLINE enum close_reason
serve_events(struct eloop *l, struct conn *c, uint32_t events, bool *more)
{
	const uint32_t input =
		EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI;
	int err = 0;

	if ((events & EPOLLOUT) && outq_bytes(&c->out) > 0)
		err = flush(l, c);
	if (!err && (events & input) && !(c->flags & CONN_PEER_EOF)) {
		err = read_ready(
			l, c,
			events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI),
			events & EPOLLPRI);
		if (err == READ_EOF)
			c->flags |= CONN_PEER_EOF;
		*more = err == READ_FULL;
		if (err > 0)
			err = 0;
	}
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		return close_reason_of(err);
	}
	return CLOSE_NONE;
}

static void handle_conn(struct eloop *l, struct conn *c, uint32_t events)
{
	const uint32_t input =
		EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI;
	bool more = false, served = conn_core_served(c);
	enum close_reason why;

	/*
	 * One the core serves (faults, a PROXY header due), it reads and
	 * sends: epoll only watches. Back from it, c is re-armed: bytes may
	 * wait that no edge will announce.
	 */
	if (served)
		why = core_serve_io(&l->core, c, events & input,
				    events & EPOLLOUT);
	else
		why = serve_events(l, c, events, &more);
	if (why == CLOSE_NONE)
		why = core_settle(&l->core, c);
	if (why == CLOSE_NONE && update_interest(l, c, more || served) < 0)
		why = CLOSE_ERROR;
	if (why != CLOSE_NONE)
		close_conn(l, c, why);
}

/*
 * Serves a new connection, then watches it. The client of an echo
 * server speaks first, and when each connection carries one echo
 * (health checks, short-lived clients) its bytes are most often in by
 * the time accept4 returns: read now, they save a round through
 * epoll_wait. The socket joins the set after that read, with the
 * interest its state then asks for: EPOLL_CTL_ADD polls it, so bytes
 * that came between the read and the call still raise an event. A
 * client that has not spoken yet costs one recv that finds nothing.
 */
static void add_conn(struct eloop *l, struct conn *c)
{
	enum close_reason why = CLOSE_NONE;
	bool more = false;

	if (!conn_core_served(c))
		why = serve_events(l, c, EPOLLIN, &more);
	if (why == CLOSE_NONE)
		why = core_settle(&l->core, c);
	if (why == CLOSE_NONE && watch(l, c, EPOLL_CTL_ADD, interest(l, c)) < 0)
		why = CLOSE_ERROR;
	if (why != CLOSE_NONE)
		close_conn(l, c, why);
}

static void set_listening(struct eloop *l, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	for (int i = 0; i < l->core.nlisten; i++) {
		ev.data.u64 = TAG_LISTEN(i);
		epoll_ctl(l->epfd, EPOLL_CTL_MOD, l->core.listen_fds[i], &ev);
	}
}

static void handle_accept(struct eloop *l, int lfd)
{
	union net_addr peer;
	struct conn *c;
	socklen_t len;
	int fd;

	for (int i = 0; i < CORE_ACCEPTS_PER_WAKEUP; i++) {
		len = sizeof(peer);
		fd = sys_accept4(lfd, &peer.sa, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (fd < 0) {
			switch (core_accept_failed(&l->core, lfd, errno)) {
			case CORE_ACCEPT_GO_ON:
				continue;
			case CORE_ACCEPT_PAUSED:
				set_listening(l, 0);
				return;
			case CORE_ACCEPT_EMPTIED:
				return;
			}
		}
		c = core_admit(&l->core, fd, &peer, lfd);
		if (c)
			add_conn(l, c);
	}
}

static int init(void *loop, struct worker *w, const struct options *o)
{
	struct eloop *l = loop;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_CTL};
	const struct core *k = &l->core;
	int err;

	l->splicer = (struct splicer){.pipe = {-1, -1}};
	/* The core first: destroy relies on it whatever fails after. */
	err = core_init(&l->core, w, sizeof(struct econn), o->max_pending);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (err < 0 || l->epfd < 0)
		return err < 0 ? err : -errno;
	l->read_size =
		o->max_pending < SCRATCH_SIZE ? o->max_pending : SCRATCH_SIZE;
	l->scratch = malloc(SCRATCH_SIZE);
	if (l->scratch == NULL)
		return -ENOMEM;
	splicer_open(&l->splicer);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, k->ctl_fd, &ev) < 0)
		return -errno;
	for (int i = 0; i < k->nlisten + k->nudp; i++) {
		bool udp = i >= k->nlisten;
		int fd = udp ? k->udp_fds[i - k->nlisten] : k->listen_fds[i];

		ev.data.u64 = udp ? TAG_UDP(i - k->nlisten) : TAG_LISTEN(i);
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
	}
	return 0;
}

static void destroy(void *loop)
{
	struct eloop *l = loop;
	struct conn *c;

	while ((c = core_any(&l->core)))
		close_conn(l, c, CLOSE_SHUTDOWN);
	core_destroy(&l->core);
	free(l->scratch);
	splicer_close(&l->splicer);
	if (l->epfd >= 0)
		close(l->epfd);
}

static void dispatch(struct eloop *l, const struct epoll_event *ev, bool *stop)
{
	uint64_t tag = ev->data.u64;
	struct conn *c;

	if (!(tag & TAG_SPECIAL)) {
		c = conn_table_find(&l->core.table, (uint32_t)tag,
				    (uint32_t)(tag >> 32));
		/* A connection closed earlier in this batch is stale. */
		if (c)
			handle_conn(l, c, ev->events);
	} else if (tag == TAG_CTL) {
		*stop = core_control(&l->core);
		/* A shut listener reports EPOLLHUP whatever it is asked. */
		for (int i = 0; l->core.draining && i < l->core.nlisten; i++)
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->core.listen_fds[i],
				  NULL);
	} else if (tag & TAG_UDP_BIT) {
		core_serve_udp(&l->core, (int)(tag & 0xffff));
	} else {
		handle_accept(l, l->core.listen_fds[tag & 0xffff]);
	}
}

/* Closes connections whose time ran out; resumes accepting when due. */
static void expire(struct eloop *l)
{
	enum close_reason why;
	struct conn *c;

	if (core_quiet(&l->core))
		return;
	/* Memory came back to those without a reason: they read again. */
	while ((c = core_due(&l->core, &why)))
		if (why != CLOSE_NONE || update_interest(l, c, true) < 0)
			close_conn(l, c, why != CLOSE_NONE ? why : CLOSE_ERROR);
	if (core_resume_due(&l->core))
		set_listening(l, EPOLLIN);
	/* The core's buffers are all there is to give back here. */
	core_trim_due(&l->core);
}

/* Serves until the stop request; returns 0 or -errno (epoll_wait). */
static int serve(void *loop)
{
	struct eloop *l = loop;
	struct epoll_event events[MAX_EVENTS];
	bool stop = false;
	int n;
	struct conn *c;

	n = core_given_fd(&l->core);
	if (n >= 0) {
		c = core_admit(&l->core, n, NULL, -1);
		if (c)
			add_conn(l, c);
	}

	while (!stop) {
		n = sys_epoll_wait(l->epfd, events, MAX_EVENTS,
				   core_timeout_ms(&l->core));
		if (n < 0 && errno != EINTR)
			return core_fail(&l->core, "epoll_wait", -errno);
		core_clock(&l->core);
		for (int i = 0; i < n; i++)
			dispatch(l, &events[i], &stop);
		expire(l);
	}
	return 0;
}

/* No probe: epoll is in every kernel echod can run on. */
const struct backend_ops backend_epoll = {
	.name = "epoll",
	.loop_size = sizeof(struct eloop),
	.init = init,
	.serve = serve,
	.destroy = destroy,
};
