// SPDX-License-Identifier: BSD-2-Clause
/*
 * bare_client.c - the reference client of `make bench`: what an echo load
 * costs when a client does nothing but the system calls. One thread, one
 * epoll set, closed loop at depth 1: each connection sends a message, reads
 * as many bytes back, sends again. No check of the bytes, no histogram, no
 * pacing; it prints one JSON line with its echoes and its CPU time per echo
 * over the measured seconds, so that echobench's own cost can be shown as a
 * ratio to this floor (bench/run.sh).
 *
 * usage: bare-client [-c connections] [-s size] [-D seconds] [-w seconds]
 *                    ADDRESS:PORT          (an IPv4 literal, or [IPv6]:PORT)
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One connection: how much of the current message is sent and received. */
struct bconn {
	int fd;
	size_t sent, got;
};

struct bare {
	struct bconn *c;
	unsigned int n;
	size_t size;
	unsigned char *buf; /* the message sent, and the receive buffer */
	unsigned char *rx;
	int epfd;
	uint64_t echoes;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of this process so far, user and system, in microseconds. */
static void cpu_us(uint64_t *user, uint64_t *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (uint64_t)ru.ru_utime.tv_sec * 1000000 +
		(uint64_t)ru.ru_utime.tv_usec;
	*sys = (uint64_t)ru.ru_stime.tv_sec * 1000000 +
	       (uint64_t)ru.ru_stime.tv_usec;
}

/* HOST:PORT with a numeric host; 0 or -EINVAL. */
static int parse_addr(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;
	long port;

	if (!colon)
		return -EINVAL;
	port = strtol(colon + 1, NULL, 10);
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host) || port <= 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/*
 * Blocking connect and blocking sends: a message of a few hundred bytes
 * always fits the socket buffer, so a send never waits and never costs an
 * EAGAIN round; reads are non-blocking, one per readiness.
 */
static int open_conn(struct bare *b, unsigned int i,
		     const struct sockaddr_storage *ss, socklen_t len)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
	int one = 1, fd;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		return -errno;
	}
	b->c[i].fd = fd;
	return 0;
}

/* Sends what is left of the message; 0, or -errno when the peer is gone. */
static int push(struct bare *b, struct bconn *c)
{
	ssize_t n;

	while (c->sent < b->size) {
		n = send(c->fd, b->buf + c->sent, b->size - c->sent,
			 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c->sent += (size_t)n;
	}
	return 0;
}

/* One readable connection: read, and start the next message when whole. */
static int pull(struct bare *b, struct bconn *c)
{
	ssize_t n;

	n = recv(c->fd, b->rx, b->size - c->got, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->got += (size_t)n;
	if (c->got < b->size)
		return 0;
	b->echoes++;
	c->got = c->sent = 0;
	return push(b, c);
}

/* Runs the loop until end (ns); 0 or -errno. */
static int run(struct bare *b, uint64_t end)
{
	struct epoll_event ev[256];
	int n, e;

	while (now_ns() < end) {
		n = epoll_wait(b->epfd, ev, 256, 100);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			e = pull(b, &b->c[ev[i].data.u32]);
			if (e)
				return e;
		}
	}
	return 0;
}

static unsigned long arg(const char *name, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > max)
		errx(2, "%s %s: invalid", name, s);
	return v;
}

static double real(const char *name, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v < 0 || v > 3600)
		errx(2, "%s %s: invalid", name, s);
	return v;
}

static int bare_setup(struct bare *b, const char *target)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int e;

	if (parse_addr(target, &ss, &len))
		errx(2, "%s: not ADDRESS:PORT with a numeric address", target);
	b->c = calloc(b->n, sizeof(*b->c));
	b->buf = malloc(b->size);
	b->rx = malloc(b->size);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!b->c || !b->buf || !b->rx || b->epfd < 0)
		err(1, "setup");
	memset(b->buf, 'x', b->size);
	for (unsigned int i = 0; i < b->n; i++) {
		e = open_conn(b, i, &ss, len);
		if (e)
			return e;
	}
	for (unsigned int i = 0; i < b->n; i++) {
		e = push(b, &b->c[i]);
		if (e)
			return e;
	}
	return 0;
}

static void bare_free(struct bare *b)
{
	for (unsigned int i = 0; b->c && i < b->n; i++)
		if (b->c[i].fd > 0)
			close(b->c[i].fd);
	if (b->epfd >= 0)
		close(b->epfd);
	free(b->c);
	free(b->buf);
	free(b->rx);
}

int main(int argc, char **argv)
{
	struct bare b = {.n = 50, .size = 64, .epfd = -1};
	double secs = 2, warm = 1;
	uint64_t t0, n0, t1, u0, s0, u1, s1;
	double per;
	int ch, e;

	while ((ch = getopt(argc, argv, "c:s:D:w:")) != -1) {
		if (ch == 'c')
			b.n = (unsigned int)arg("connections", optarg, 100000);
		else if (ch == 's')
			b.size = arg("size", optarg, 1 << 20);
		else if (ch == 'D')
			secs = real("duration", optarg);
		else if (ch == 'w')
			warm = real("warmup", optarg);
		else
			errx(2,
			     "usage: bare-client [-c n] [-s size] [-D s] [-w s] ADDRESS:PORT");
	}
	if (optind != argc - 1)
		errx(2,
		     "usage: bare-client [-c n] [-s size] [-D s] [-w s] ADDRESS:PORT");
	e = bare_setup(&b, argv[optind]);
	if (!e)
		e = run(&b, now_ns() + (uint64_t)(warm * 1e9));
	t0 = now_ns();
	cpu_us(&u0, &s0);
	n0 = b.echoes;
	if (!e)
		e = run(&b, t0 + (uint64_t)(secs * 1e9));
	t1 = now_ns();
	cpu_us(&u1, &s1);
	bare_free(&b);
	if (e)
		errx(1, "%s: %s", argv[optind], strerror(-e));
	n0 = b.echoes - n0;
	per = n0 ? 1.0 / (double)n0 : 0;
	printf("{\"echoes\": %llu, \"seconds\": %.3f, \"requests_per_s\": %.1f, ",
	       (unsigned long long)n0, (double)(t1 - t0) / 1e9,
	       (double)n0 / ((double)(t1 - t0) / 1e9));
	printf("\"cpu_us_per_echo\": %.3f, \"user\": %.3f, \"sys\": %.3f}\n",
	       (double)(u1 - u0 + s1 - s0) * per, (double)(u1 - u0) * per,
	       (double)(s1 - s0) * per);
	return 0;
}
