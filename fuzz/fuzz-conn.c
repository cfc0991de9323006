// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-conn.c - the epoll backend's connection state machine, run whole
 * (init, serve, destroy, with the real core, queue and framing) against
 * a simulated kernel and simulated clients.
 *
 * The Makefile links this harness with --wrap for the calls listed in
 * FUZZ_CONN_WRAP, so that those calls, from any of echod's objects, come
 * here: descriptors at FAKE_FD and above are ours (the epoll set, one
 * listener, the worker's ctl eventfd, the clients' sockets), and the
 * rest go on to the kernel (the spare /dev/null, the splice pipe, and
 * libFuzzer's own files). Wrapping at link time, not an #include of
 * backend_epoll.c, because the core closes and shuts connections
 * (core.c) and the splicer moves their bytes (splice.c): a kernel
 * stood in for in one file alone would miss those.
 *
 * Input: two header bytes, then a tape. Byte 0: bit 0 line framing,
 * bits 1-3 --max-pending (1 KiB << n), bit 4 --memory 256 KiB, bits 5-7
 * --max-conns (0: none); byte 1: -n (0: none). The clients read the
 * tape from its front at each epoll_wait, acting until a byte says "run
 * a round" (op: bits 0-2 the action, 0 and 7 a round; 3-4 which client;
 * 5-7 a scale; then an argument byte where one is needed). The kernel
 * reads it from its back, a byte for each recv, send, splice and accept4
 * of echod's: how it answers (0 in full; short, EAGAIN, EINTR, a reset;
 * for a splice also EINVAL, or 0 at an urgent mark once the FIN is in).
 * Short answers and EAGAIN are what a real socket gives when bytes or
 * room arrive just after: each raises the edge that arrival would. Once
 * the two ends meet, every client shuts its sending side and reads all
 * that comes, the kernel answers in full, and echod must close every
 * connection within a few idle rounds.
 *
 * The properties: every byte echod sends is the next byte its client
 * sent (never out of order, invented, duplicated, or past the -n'th
 * message); nothing is sent after echod's FIN or on a closed descriptor;
 * a connection echod closes without a reset has had its client's FIN,
 * read all of it and echoed all that is owed; at the end every
 * descriptor echod was handed is closed once, the budget and the
 * connection count are back at zero, and memory is freed (LeakSanitizer).
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "../src/backend.h"
#include "../src/budget.h"
#include "../src/log.h"
#include "../src/options.h"
#include "../src/worker.h"
#include "fuzz.h"

enum {
	FAKE_FD = 1 << 24, /* above any descriptor the kernel hands out */
	EP_FD = FAKE_FD,
	LISTEN_FD,
	CTL_FD,
	CONN_FD = FAKE_FD + 16, /* the clients' sockets, lowest free first */
	CLIENTS = 4,
	MAX_SENT = 256 * 1024, /* bytes one client sends at most */
	IDLE_ROUNDS = 4, /* empty rounds before a hang is declared */
	FINISH_ROUNDS = 1 << 16,
	BIG_ROOM = 1 << 30, /* a client reading all that comes */
};

/* How the kernel answers one call (a byte from the tape's back). */
enum fault {
	FAULT_NONE,
	FAULT_SHORT,
	FAULT_AGAIN,
	FAULT_INTR,
	FAULT_RESET,
	FAULT_INVAL, /* splice only: this socket cannot splice */
	FAULT_MARK, /* splice only: it met an urgent mark, after the FIN: 0 */
};

/* A descriptor's place in the epoll set. */
struct reg {
	bool on;
	bool pending; /* a wakeup came since it was last reported */
	uint32_t events;
	uint64_t data;
};

/* One simulated client, and echod's side of its socket. */
struct client {
	bool used, queued, accepted, closed;
	bool refused; /* closed by echod before it was ever watched */
	bool fin, reset, err_pending, shut;
	int fd;
	uint64_t sent, rd; /* bytes the client sent; of them, echod read */
	uint64_t echoed, inflight, room; /* echod's sends; unread; the cap */
	uint64_t reads, lines, owed; /* for -n: what echod must echo */
	struct reg reg;
};

struct sim {
	bool on, finishing;
	const uint8_t *tape;
	size_t pos, end; /* the script from the front, faults from the back */
	struct worker *w;
	const struct options *o;
	struct client cl[CLIENTS];
	int fds[CLIENTS]; /* CONN_FD + i: which client, or -1 */
	int backlog[CLIENTS], nbacklog;
	bool ep_open, ep_closed, ctl_ready;
	struct reg listen, ctl;
	unsigned int idle, rounds, finish_rounds;
	unsigned long calls[4]; /* recv, send, splice in, splice out */
};

static struct sim sim;
/* Client i's stream is pattern[i * MAX_SENT...]: random, 1 in 32 '\n'. */
static uint8_t pattern[CLIENTS * MAX_SENT];
static uint8_t tmp[256 * 1024];

/* The wrapped calls, and the real ones behind them. */
int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __wrap_close(int fd);
int __real_close(int fd);
int __wrap_epoll_create1(int flags);
int __real_epoll_create1(int flags);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms);
int __real_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags);
ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
int __wrap_setsockopt(int fd, int level, int name, const void *v,
		      socklen_t len);
int __real_setsockopt(int fd, int level, int name, const void *v,
		      socklen_t len);
int __wrap_shutdown(int fd, int how);
int __real_shutdown(int fd, int how);
ssize_t __wrap_splice(int in, loff_t *in_off, int out, loff_t *out_off,
		      size_t len, unsigned int flags);
ssize_t __real_splice(int in, loff_t *in_off, int out, loff_t *out_off,
		      size_t len, unsigned int flags);

static unsigned int next_byte(void)
{
	return sim.pos < sim.end ? sim.tape[sim.pos++] : 0;
}

static unsigned int next_fault(void)
{
	return sim.pos < sim.end ? sim.tape[--sim.end] : 0;
}

static bool fake(int fd)
{
	return sim.on && fd >= FAKE_FD;
}

/* The client whose socket fd is; NULL for any other descriptor. */
static struct client *client_of(int fd)
{
	int i = fd - CONN_FD;

	if (!fake(fd) || fd < CONN_FD)
		return NULL;
	/* A descriptor echod closed, or never had. */
	fuzz_check(i < CLIENTS && sim.fds[i] >= 0);
	return &sim.cl[sim.fds[i]];
}

static const uint8_t *stream(const struct client *c)
{
	return pattern + (c - sim.cl) * MAX_SENT;
}

/*
 * The kernel's answer to a call that could move n bytes: *n shortened
 * for FAULT_SHORT. Out of tape, every answer is in full.
 */
static enum fault fault(size_t *n, bool splicing)
{
	unsigned int b = next_fault(), arg = b >> 3;

	switch (b & 7) {
	case 4:
		*n = *n * arg / 32 ? *n * arg / 32 : 1;
		return FAULT_SHORT;
	case 5:
		return FAULT_AGAIN;
	case 6:
		return FAULT_INTR;
	case 7:
		if (arg < 4)
			return FAULT_RESET;
		if (!splicing)
			return FAULT_NONE;
		if (arg < 8)
			return FAULT_INVAL;
		return arg < 12 ? FAULT_MARK : FAULT_NONE;
	default:
		return FAULT_NONE;
	}
}

/* The socket's readiness now, as the kernel's tcp_poll says it. */
static uint32_t ready(const struct client *c)
{
	uint32_t r = 0;

	if (c->reset)
		return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP |
		       (c->err_pending ? EPOLLERR : 0);
	if (c->sent > c->rd || c->fin)
		r |= EPOLLIN;
	if (c->fin)
		r |= EPOLLRDHUP;
	if (c->fin && c->shut)
		r |= EPOLLHUP;
	if (c->inflight < c->room || c->shut)
		r |= EPOLLOUT;
	return r;
}

/* A wakeup with mask: queues c's item when it watches any of it. */
static void wake(struct client *c, uint32_t mask)
{
	if (c->reg.on && (mask & (c->reg.events | EPOLLERR | EPOLLHUP)))
		c->reg.pending = true;
}

static void reset(struct client *c)
{
	c->reset = c->err_pending = true;
	wake(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* What echod must echo of c: all it read, or up to the -n'th message. */
static uint64_t owed(const struct client *c)
{
	return c->owed < c->rd ? c->owed : c->rd;
}

/* echod read n more bytes of c: where the -n'th message ends, if here. */
static void note_read(struct client *c, size_t n)
{
	const uint8_t *p = stream(c) + c->rd, *end = p + n, *nl;
	uint64_t limit = sim.o->messages;

	if (limit == 0 || c->owed != UINT64_MAX) {
		c->rd += n;
		return;
	}
	if (sim.o->framing == FRAMING_RAW && ++c->reads == limit)
		c->owed = c->rd + n;
	while (sim.o->framing == FRAMING_LINE && p < end &&
	       (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if (++c->lines == limit) {
			c->owed = (uint64_t)(p - stream(c));
			break;
		}
	}
	c->rd += n;
}

/*
 * How many of n bytes echod's read of c gets (> 0), or -1 with errno;
 * the caller copies them and calls note_read.
 */
static ssize_t recv_allow(struct client *c, size_t n, bool splicing)
{
	size_t avail = c->sent - c->rd, want;

	if (c->err_pending) {
		c->err_pending = false;
		return fail(ECONNRESET);
	}
	if (c->reset || (avail == 0 && c->fin) || n == 0)
		return 0;
	if (avail == 0)
		return fail(EAGAIN);
	want = n < avail ? n : avail;
	n = want;
	switch (fault(&n, splicing)) {
	case FAULT_AGAIN:
		wake(c, EPOLLIN);
		return fail(EAGAIN);
	case FAULT_INTR:
		return fail(EINTR);
	case FAULT_RESET:
		reset(c);
		c->err_pending = false;
		return fail(ECONNRESET);
	case FAULT_INVAL:
		return fail(EINVAL);
	case FAULT_MARK:
		/* splice reads nothing at the mark; the rest waits, unread. */
		if (c->fin)
			return 0;
		break;
	default:
		break;
	}
	/* Cut short, the rest "arrives" just after: its own edge. */
	if (n < want)
		wake(c, EPOLLIN);
	return (ssize_t)n;
}

/* How many of n bytes echod's send to c may move, or -1 with errno. */
static ssize_t send_allow(struct client *c, size_t n)
{
	size_t room = c->inflight < c->room ? c->room - c->inflight : 0;

	/* Nothing goes after our own FIN: the kernel would say EPIPE. */
	fuzz_check(!c->shut);
	if (c->err_pending) {
		c->err_pending = false;
		return fail(ECONNRESET);
	}
	if (c->reset)
		return fail(EPIPE);
	if (room == 0)
		return fail(EAGAIN);
	n = n < room ? n : room;
	switch (fault(&n, false)) {
	case FAULT_AGAIN:
		wake(c, EPOLLOUT);
		return fail(EAGAIN);
	case FAULT_INTR:
		return fail(EINTR);
	case FAULT_RESET:
		reset(c);
		c->err_pending = false;
		return fail(ECONNRESET);
	case FAULT_SHORT:
		wake(c, EPOLLOUT);
		break;
	default:
		break;
	}
	return (ssize_t)n;
}

/* The property: what echod sends c is the next of what c sent. */
static void take_echo(struct client *c, const void *data, size_t n)
{
	fuzz_check(c->echoed + n <= owed(c));
	fuzz_check(memcmp(data, stream(c) + c->echoed, n) == 0);
	c->echoed += n;
	c->inflight += n;
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags)
{
	struct client *c = client_of(fd);
	ssize_t got;

	if (c == NULL)
		return __real_recv(fd, buf, n, flags);
	sim.calls[0]++;
	if (flags & MSG_PEEK) {
		/* A peek says what waits: no fault drawn, nothing read. */
		uint64_t avail = c->sent - c->rd;

		if (c->reset)
			return fail(ECONNRESET);
		got = (ssize_t)(avail < n ? avail : n);
		memcpy(buf, stream(c) + c->rd, (size_t)got);
		return got;
	}
	got = recv_allow(c, n, false);
	if (got > 0) {
		memcpy(buf, stream(c) + c->rd, (size_t)got);
		note_read(c, (size_t)got);
	}
	return got;
}

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags)
{
	struct client *c = client_of(fd);
	ssize_t moved;

	if (c == NULL)
		return __real_send(fd, buf, n, flags);
	sim.calls[1]++;
	moved = send_allow(c, n);
	if (moved > 0)
		take_echo(c, buf, (size_t)moved);
	return moved;
}

/* Socket to pipe: the bytes go into the real pipe, as far as it has room. */
static ssize_t splice_in(struct client *c, int pipe_fd, size_t len)
{
	int held = 0, size = fcntl(pipe_fd, F_GETPIPE_SZ);
	ssize_t n;

	fuzz_check(size > 0 && ioctl(pipe_fd, FIONREAD, &held) == 0);
	if (len > (size_t)(size - held))
		len = (size_t)(size - held);
	if (len > sizeof(tmp))
		len = sizeof(tmp);
	if (len == 0)
		return fail(EAGAIN);
	n = recv_allow(c, len, true);
	if (n <= 0)
		return n;
	fuzz_check(write(pipe_fd, stream(c) + c->rd, (size_t)n) == n);
	note_read(c, (size_t)n);
	return n;
}

/* Pipe to socket: the bytes come out of the real pipe, and are checked. */
static ssize_t splice_out(struct client *c, int pipe_fd, size_t len)
{
	ssize_t n = send_allow(c, len < sizeof(tmp) ? len : sizeof(tmp));

	if (n <= 0)
		return n;
	n = __real_read(pipe_fd, tmp, (size_t)n);
	/* echod asks only for bytes it put in the pipe. */
	fuzz_check(n > 0);
	take_echo(c, tmp, (size_t)n);
	return n;
}

ssize_t __wrap_splice(int in, loff_t *in_off, int out, loff_t *out_off,
		      size_t len, unsigned int flags)
{
	struct client *c;

	if ((c = client_of(in)) != NULL) {
		sim.calls[2]++;
		return splice_in(c, out, len);
	}
	if ((c = client_of(out)) != NULL) {
		sim.calls[3]++;
		return splice_out(c, in, len);
	}
	fuzz_check(!fake(in) && !fake(out));
	return __real_splice(in, in_off, out, out_off, len, flags);
}

int __wrap_shutdown(int fd, int how)
{
	struct client *c = client_of(fd);

	if (c == NULL)
		return __real_shutdown(fd, how);
	fuzz_check(how == SHUT_WR);
	c->shut = true;
	wake(c, EPOLLOUT | EPOLLHUP);
	return 0;
}

int __wrap_setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
	if (client_of(fd) == NULL)
		return __real_setsockopt(fd, level, name, v, len);
	return 0;
}

/* echod closed c's socket: the end of its story, which must add up. */
static void closed(struct client *c)
{
	fuzz_check(!c->closed);
	c->closed = true;
	c->reg.on = false;
	sim.fds[c->fd - CONN_FD] = -1;
	c->refused = c->reg.events == 0; /* never watched */
	if (c->reset || c->refused)
		return;
	/* Healthy, it closes only once the client is done and all is back. */
	fuzz_check(c->fin);
	fuzz_check(c->rd == c->sent);
	fuzz_check(c->echoed == owed(c));
}

int __wrap_close(int fd)
{
	struct client *c = client_of(fd);

	if (c != NULL) {
		closed(c);
		return 0;
	}
	if (!fake(fd))
		return __real_close(fd);
	/* The listener and the ctl eventfd are main's to close. */
	fuzz_check(fd == EP_FD && sim.ep_open && !sim.ep_closed);
	sim.ep_closed = true;
	return 0;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	uint64_t one = 1;

	if (!fake(fd))
		return __real_read(fd, buf, n);
	fuzz_check(fd == CTL_FD && n == sizeof(one));
	if (!sim.ctl_ready)
		return fail(EAGAIN);
	sim.ctl_ready = false;
	memcpy(buf, &one, sizeof(one));
	return sizeof(one);
}

int __wrap_epoll_create1(int flags)
{
	if (!sim.on)
		return __real_epoll_create1(flags);
	fuzz_check(!sim.ep_open);
	sim.ep_open = true;
	return EP_FD;
}

/* The epoll item of fd, which must be ours. */
static struct reg *reg_of(int fd)
{
	struct client *c = client_of(fd);

	if (c)
		return &c->reg;
	fuzz_check(fd == LISTEN_FD || fd == CTL_FD);
	return fd == LISTEN_FD ? &sim.listen : &sim.ctl;
}

static uint32_t reg_ready(int fd)
{
	struct client *c = client_of(fd);

	if (c)
		return ready(c);
	if (fd == LISTEN_FD)
		return sim.nbacklog ? EPOLLIN : 0;
	return sim.ctl_ready ? EPOLLIN : 0;
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct reg *r;

	if (!fake(epfd))
		return __real_epoll_ctl(epfd, op, fd, ev);
	fuzz_check(epfd == EP_FD && fake(fd));
	r = reg_of(fd);
	if (op == EPOLL_CTL_DEL) {
		fuzz_check(r->on);
		r->on = false;
		return 0;
	}
	fuzz_check(r->on == (op == EPOLL_CTL_MOD));
	r->on = true;
	r->events = ev->events;
	r->data = ev->data.u64;
	/* Adding or modifying polls the file: an event if it is ready. */
	if (reg_ready(fd) & (r->events | EPOLLERR | EPOLLHUP))
		r->pending = true;
	return 0;
}

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct sockaddr_in peer = {.sin_family = AF_INET};
	struct client *c;
	int i = 0;

	if (!fake(fd))
		return __real_accept4(fd, sa, len, flags);
	fuzz_check(fd == LISTEN_FD);
	if (sim.nbacklog == 0)
		return fail(EAGAIN);
	/* Refusing (net_refuse_waiting) accepts blocking: no fault there. */
	if (flags & SOCK_NONBLOCK) {
		switch (next_fault() % 16) {
		case 13:
			return fail(EINTR);
		case 14:
			return fail(EMFILE);
		case 15:
			/* The client went before it was accepted. */
			sim.cl[sim.backlog[0]].queued = false;
			sim.cl[sim.backlog[0]].refused = true;
			memmove(sim.backlog, sim.backlog + 1,
				--sim.nbacklog * sizeof(int));
			return fail(ECONNABORTED);
		}
	}
	c = &sim.cl[sim.backlog[0]];
	memmove(sim.backlog, sim.backlog + 1, --sim.nbacklog * sizeof(int));
	while (sim.fds[i] >= 0)
		i++;
	sim.fds[i] = (int)(c - sim.cl);
	c->queued = false;
	c->accepted = true;
	c->fd = CONN_FD + i;
	peer.sin_port = htons((uint16_t)(40000 + i));
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (sa) {
		memcpy(sa, &peer, sizeof(peer));
		*len = sizeof(peer);
	}
	return c->fd;
}

/* An item's event for this round, or 0 (edge-triggered: once a wakeup). */
static uint32_t report(struct reg *r, uint32_t now)
{
	uint32_t ev;

	if (!r->on)
		return 0;
	ev = now & (r->events | EPOLLERR | EPOLLHUP);
	if (r->events & EPOLLET) {
		if (!r->pending)
			return 0;
		r->pending = false;
	}
	return ev;
}

/* The i'th item of the set, in gather's order; -1 when there is none. */
static int item_fd(unsigned int i)
{
	if (i == CLIENTS)
		return LISTEN_FD;
	if (i == CLIENTS + 1)
		return CTL_FD;
	return sim.fds[i] >= 0 ? CONN_FD + (int)i : -1;
}

/* This round's events, from item first on (the tape varies the order). */
static int gather(struct epoll_event *out, int max, unsigned int first)
{
	struct reg *r;
	uint32_t ev;
	int n = 0, fd;

	for (unsigned int k = 0; k < CLIENTS + 2 && n < max; k++) {
		fd = item_fd((first + k) % (CLIENTS + 2));
		if (fd < 0)
			continue;
		r = reg_of(fd);
		ev = report(r, reg_ready(fd));
		if (ev) {
			out[n].events = ev;
			out[n++].data.u64 = r->data;
		}
	}
	return n;
}

static struct client *pick(unsigned int op)
{
	struct client *c = &sim.cl[(op >> 3) % CLIENTS];

	return c->used && !c->closed ? c : NULL;
}

static void client_connect(unsigned int scale)
{
	struct client *c = NULL;

	for (int i = 0; i < CLIENTS && c == NULL; i++)
		if (!sim.cl[i].used)
			c = &sim.cl[i];
	if (c == NULL)
		return;
	c->used = c->queued = true;
	c->room = 64ull << (2 * scale);
	c->owed = UINT64_MAX;
	sim.backlog[sim.nbacklog++] = (int)(c - sim.cl);
}

static void client_send(struct client *c, uint64_t n)
{
	if (c->fin || c->reset)
		return;
	if (n > MAX_SENT - c->sent)
		n = MAX_SENT - c->sent;
	c->sent += n;
	if (n)
		wake(c, EPOLLIN);
}

static void client_read(struct client *c, uint64_t n)
{
	if (c->reset || c->inflight == 0)
		return;
	c->inflight -= n < c->inflight ? n : c->inflight;
	wake(c, EPOLLOUT);
}

static void client_fin(struct client *c)
{
	if (c->fin || c->reset)
		return;
	c->fin = true;
	wake(c, EPOLLIN | EPOLLRDHUP | (c->shut ? EPOLLHUP : 0));
}

/*
 * The clients act on the tape until it says to run a round; returns
 * false for a round that epoll_wait cuts short (EINTR).
 */
static bool script(unsigned int *first)
{
	while (sim.pos < sim.end) {
		unsigned int op = next_byte(), scale = op >> 5;
		struct client *c = pick(op);

		switch (op & 7) {
		case 1:
			client_connect(scale);
			break;
		case 2:
			if (c)
				client_send(c, (1 + next_byte()) << scale);
			break;
		case 3:
			if (c)
				client_read(c, (1 + next_byte()) << scale);
			break;
		case 4:
			if (c)
				client_fin(c);
			break;
		case 5:
			if (c && !c->reset)
				reset(c);
			break;
		case 6:
			return false;
		default:
			*first = op >> 3;
			return true;
		}
	}
	sim.finishing = true;
	return true;
}

/* At the end: every client is done sending and reads all that comes. */
static bool finish(void)
{
	bool done = sim.nbacklog == 0;

	for (int i = 0; i < CLIENTS; i++) {
		struct client *c = &sim.cl[i];

		if (!c->used || c->closed || c->refused)
			continue;
		done = false;
		if (c->reset)
			continue;
		client_fin(c);
		c->room = BIG_ROOM;
		client_read(c, c->inflight);
	}
	return done;
}

int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms)
{
	unsigned int first = 0;
	int n;

	if (!fake(epfd))
		return __real_epoll_wait(epfd, ev, max, ms);
	fuzz_check(epfd == EP_FD && sim.ep_open && !sim.ep_closed);
	if (!sim.finishing && !script(&first))
		return fail(EINTR);
	if (sim.finishing && finish()) {
		/* All served: main asks the worker to stop (worker_ask). */
		atomic_fetch_or(&sim.w->requests, WORKER_STOP);
		sim.ctl_ready = true;
	}
	n = gather(ev, max, first);
	sim.rounds++;
	if (sim.finishing) {
		sim.idle = n ? 0 : sim.idle + 1;
		/* A connection echod neither serves nor closes: a hang. */
		fuzz_check(sim.idle <= IDLE_ROUNDS);
		fuzz_check(++sim.finish_rounds <= FINISH_ROUNDS);
	}
	return n;
}

static void make_pattern(void)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(pattern); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pattern[i] = (x & 31) == 0 ? '\n' : (uint8_t)(x >> 24);
		if ((x & 31) != 0 && pattern[i] == '\n')
			pattern[i] = 'n';
	}
}

static void set_options(struct options *o, const uint8_t *h)
{
	memset(o, 0, sizeof(*o));
	o->tcp = true;
	o->framing = h[0] & 1 ? FRAMING_LINE : FRAMING_RAW;
	o->max_pending = (size_t)1024 << (h[0] >> 1 & 7);
	o->memory = h[0] & 16 ? OPTIONS_MIN_MEMORY : 0;
	o->max_conns = h[0] >> 5;
	o->messages = h[1];
	o->linger = OPTIONS_DEFAULT_LINGER;
	o->backlog = OPTIONS_DEFAULT_BACKLOG;
}

/* One run of the backend, as a worker thread runs it (run_backend). */
static void run(struct worker *w)
{
	const struct backend_ops *b = &backend_epoll;
	void *loop = calloc(1, b->loop_size);

	fuzz_check(loop != NULL);
	fuzz_check(b->init(loop, w, w->opts) == 0);
	fuzz_check(b->serve(loop) == 0);
	b->destroy(loop);
	free(loop);
}

/* With FUZZ_CONN_TRACE set, what a run did: to see what an input does. */
static void trace(void)
{
	fprintf(stderr,
		"rounds %u, recv %lu, send %lu, splice %lu in %lu out\n",
		sim.rounds, sim.calls[0], sim.calls[1], sim.calls[2],
		sim.calls[3]);
	for (int i = 0; i < CLIENTS; i++) {
		const struct client *c = &sim.cl[i];

		if (c->used)
			fprintf(stderr,
				"client %d: sent %llu, read %llu, echoed %llu%s%s\n",
				i, (unsigned long long)c->sent,
				(unsigned long long)c->rd,
				(unsigned long long)c->echoed,
				c->reset ? ", reset" : "",
				c->refused ? ", refused" : "");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct worker_shared shared;
	static struct worker w;
	static struct options o;
	static bool once;

	if (size < 2)
		return 0;
	if (!once) {
		once = true;
		make_pattern();
		/* Refusals and pauses are the point, not news. */
		log_level = LOG_ERROR;
	}
	set_options(&o, data);
	memset(&shared, 0, sizeof(shared));
	budget_init(&shared.memory, o.memory);
	memset(&w, 0, sizeof(w));
	w.opts = &o;
	w.shared = &shared;
	w.listen_fds[0] = LISTEN_FD;
	w.nlisten = 1;
	w.ctl_fd = CTL_FD;
	memset(&sim, 0, sizeof(sim));
	memset(sim.fds, -1, sizeof(sim.fds));
	sim.tape = data + 2;
	sim.end = size - 2;
	sim.w = &w;
	sim.o = &o;
	sim.on = true;
	run(&w);
	sim.on = false;
	if (getenv("FUZZ_CONN_TRACE"))
		trace();
	fuzz_check(sim.ep_closed && sim.nbacklog == 0);
	for (int i = 0; i < CLIENTS; i++)
		fuzz_check(!sim.cl[i].used || sim.cl[i].closed ||
			   sim.cl[i].refused);
	fuzz_check(atomic_load(&shared.conns) == 0);
	fuzz_check(budget_used(&shared.memory) == 0);
	return 0;
}
