// SPDX-License-Identifier: BSD-2-Clause
/* metrics.c - the --metrics HTTP listener: GET /metrics, GET /connections. */
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "core.h"
#include "counter.h"
#include "http.h"
#include "metrics.h"
#include "number.h"
#include "report.h"
#include "worker.h"

/* One HTTP client: its request so far, then its answer being sent. */
struct client {
	int fd; /* -1: a free place */
	uint64_t until_ms; /* dropped then, done or not */
	size_t inlen;
	char in[METRICS_MAX_REQUEST];
	char *out; /* the whole answer, once the request is complete */
	size_t outlen, outoff;
	bool answered; /* all sent: what more comes is read and dropped */
};

/* Owned by main (metrics_start/metrics_stop); used by its thread only. */
struct metrics {
	int lfd, stop_fd;
	struct worker *workers;
	int nworkers;
	const char *backend;
	pthread_t thread;
	struct client clients[METRICS_MAX_CLIENTS];
};

int metrics_parse_addr(const char *text, union net_addr *a)
{
	const char *colon = strrchr(text, ':'), *errstr;
	char host[NET_ADDR_TEXT];
	size_t n;
	long long port;

	if (colon == NULL || colon == text)
		return -EINVAL;
	n = (size_t)(colon - text);
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	port = number_parse(colon + 1, 0, 65535, &errstr);
	if (errstr)
		return -EINVAL;
	return net_parse_addr(host, (unsigned int)port, a);
}

static void drop(struct client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Takes a new client; with every place taken the oldest makes room. */
static void take_client(struct metrics *m)
{
	struct client *c = NULL, *oldest = &m->clients[0];
	int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < METRICS_MAX_CLIENTS && c == NULL; i++) {
		if (m->clients[i].fd < 0)
			c = &m->clients[i];
		else if (m->clients[i].until_ms < oldest->until_ms)
			oldest = &m->clients[i];
	}
	if (c == NULL) {
		drop(oldest);
		c = oldest;
	}
	c->fd = fd;
	c->until_ms = core_now_ms() + METRICS_CLIENT_MS;
}

/* One counter or gauge family with a value per worker. */
static void per_worker(FILE *f, const struct metrics *m, const char *name,
		       const char *type, const char *help, size_t offset)
{
	const _Atomic uint64_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (int i = 0; i < m->nworkers; i++) {
		/* offset is offsetof() a counter: aligned as one. */
		v = (const void *)((const char *)&m->workers[i].stats + offset);
		fprintf(f, "%s{worker=\"%d\"} %llu\n", name, i,
			(unsigned long long)counter_get(v));
	}
}

/*
 * A counter family with a value per worker and per reason: the n
 * counters at offset in each worker's stats, labelled by label(r).
 */
static void by_reason(FILE *f, const struct metrics *m, const char *name,
		      const char *help, size_t offset, int n,
		      const char *(*label)(int))
{
	const _Atomic uint64_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int i = 0; i < m->nworkers; i++) {
		/* offset is offsetof() an array of counters: aligned as one. */
		v = (const void *)((const char *)&m->workers[i].stats + offset);
		for (int r = 0; r < n; r++)
			fprintf(f, "%s{worker=\"%d\",reason=\"%s\"} %llu\n",
				name, i, label(r),
				(unsigned long long)counter_get(&v[r]));
	}
}

static void connections(FILE *f, const struct metrics *m)
{
	const struct worker_stats *s;

	by_reason(f, m, "echod_connections_refused_total",
		  "TCP connections refused at once, by reason",
		  offsetof(struct worker_stats, refused_by), REFUSE_NREASONS,
		  refuse_reason_label);
	by_reason(f, m, "echod_connections_closed_total",
		  "TCP connections closed, by reason",
		  offsetof(struct worker_stats, closed_by), CLOSE_NREASONS,
		  close_reason_label);
	fputs("# HELP echod_connections_open TCP connections open now\n"
	      "# TYPE echod_connections_open gauge\n",
	      f);
	for (int i = 0; i < m->nworkers; i++) {
		s = &m->workers[i].stats;
		fprintf(f, "echod_connections_open{worker=\"%d\"} %llu\n", i,
			(unsigned long long)(counter_get(&s->accepted) -
					     counter_get(&s->closed)));
	}
}

/* Lifetimes of closed connections, summed over workers. */
static void lifetimes(FILE *f, const struct metrics *m)
{
	static const uint64_t bounds[] = WORKER_LIFETIME_BOUNDS_MS;
	uint64_t sum = 0, count = 0;

	fputs("# HELP echod_connection_lifetime_seconds How long closed TCP connections lived\n"
	      "# TYPE echod_connection_lifetime_seconds histogram\n",
	      f);
	for (int b = 0; b < WORKER_NLIFETIMES; b++) {
		for (int i = 0; i < m->nworkers; i++)
			count += counter_get(&m->workers[i].stats.lifetimes[b]);
		if (b < WORKER_NLIFETIMES - 1)
			fprintf(f,
				"echod_connection_lifetime_seconds_bucket{le=\"%g\"} %llu\n",
				(double)bounds[b] / 1000,
				(unsigned long long)count);
	}
	for (int i = 0; i < m->nworkers; i++)
		sum += counter_get(&m->workers[i].stats.lifetime_ms);
	fprintf(f,
		"echod_connection_lifetime_seconds_bucket{le=\"+Inf\"} %llu\n"
		"echod_connection_lifetime_seconds_sum %.3f\n"
		"echod_connection_lifetime_seconds_count %llu\n",
		(unsigned long long)count, (double)sum / 1000,
		(unsigned long long)count);
}

static void udp_counters(FILE *f, const struct metrics *m)
{
	const struct udp_stats *u;

	fputs("# HELP echod_udp_datagrams_total UDP datagrams, by verdict (echo, or why dropped)\n"
	      "# TYPE echod_udp_datagrams_total counter\n",
	      f);
	for (int i = 0; i < m->nworkers; i++) {
		u = &m->workers[i].udp_stats;
		for (int v = 0; v < UDP_NVERDICTS; v++)
			fprintf(f,
				"echod_udp_datagrams_total{worker=\"%d\",verdict=\"%s\"} %llu\n",
				i, udp_verdict_label(v),
				(unsigned long long)counter_get(
					v == UDP_ECHO ? &u->echoed
						      : &u->dropped[v]));
	}
	fputs("# HELP echod_udp_received_bytes_total Bytes of every UDP datagram received\n"
	      "# TYPE echod_udp_received_bytes_total counter\n",
	      f);
	for (int i = 0; i < m->nworkers; i++)
		fprintf(f,
			"echod_udp_received_bytes_total{worker=\"%d\"} %llu\n",
			i,
			(unsigned long long)counter_get(
				&m->workers[i].udp_stats.bytes_in));
	fputs("# HELP echod_udp_sent_bytes_total Bytes of UDP datagrams echoed\n"
	      "# TYPE echod_udp_sent_bytes_total counter\n",
	      f);
	for (int i = 0; i < m->nworkers; i++)
		fprintf(f, "echod_udp_sent_bytes_total{worker=\"%d\"} %llu\n",
			i,
			(unsigned long long)counter_get(
				&m->workers[i].udp_stats.bytes));
}

/* The --memory budget: process-wide gauges. */
static void memory(FILE *f, const struct metrics *m)
{
	const struct budget *b = &m->workers[0].shared->memory;

	fprintf(f,
		"# HELP echod_memory_bytes Bytes held for connections' data (send buffers, io_uring receive buffers)\n"
		"# TYPE echod_memory_bytes gauge\n"
		"echod_memory_bytes %zu\n"
		"# HELP echod_memory_budget_bytes The --memory budget (0: no limit)\n"
		"# TYPE echod_memory_budget_bytes gauge\n"
		"echod_memory_budget_bytes %zu\n",
		budget_used(b), b->limit);
}

#define STAT(field) offsetof(struct worker_stats, field)

static void write_metrics(FILE *f, const struct metrics *m)
{
	fprintf(f,
		"# HELP echod_build_info echod's version and the backend in use\n"
		"# TYPE echod_build_info gauge\n"
		"echod_build_info{version=\"%s\",backend=\"%s\"} 1\n",
		ECHOD_VERSION, m->backend);
	per_worker(f, m, "echod_connections_accepted_total", "counter",
		   "TCP connections accepted", STAT(accepted));
	connections(f, m);
	per_worker(f, m, "echod_messages_total", "counter",
		   "Messages echoed over TCP, as they are echoed",
		   STAT(messages));
	per_worker(f, m, "echod_received_bytes_total", "counter",
		   "Bytes received over TCP, as they are read", STAT(bytes_in));
	per_worker(f, m, "echod_sent_bytes_total", "counter",
		   "Bytes echoed over TCP, as they are sent", STAT(bytes_out));
	per_worker(f, m, "echod_backpressure_pauses_total", "counter",
		   "Times a connection's reading stopped at --max-pending",
		   STAT(pauses));
	per_worker(f, m, "echod_memory_waits_total", "counter",
		   "Times a connection's reading waited for --memory",
		   STAT(mem_waits));
	memory(f, m);
	lifetimes(f, m);
	udp_counters(f, m);
}

/* Every worker is in its loop, and echod is not draining. */
static bool ready(const struct metrics *m)
{
	const struct worker_shared *sh = m->workers[0].shared;

	return atomic_load(&sh->serving) == m->nworkers &&
	       !atomic_load(&sh->draining);
}

/*
 * The answer to a GET of path: its body (malloc'd; NULL for 404), with
 * its content type and status. /healthz: the process answers at all;
 * /readyz: 503 while a worker is not serving or echod drains.
 */
static char *body_for(struct metrics *m, const char *path, const char **type,
		      const char **status, size_t *len)
{
	struct report r;
	char *body = NULL;
	FILE *f;

	if (strcmp(path, "/metrics") && strcmp(path, "/connections") &&
	    strcmp(path, "/healthz") && strcmp(path, "/readyz"))
		return NULL;
	f = open_memstream(&body, len);
	if (f == NULL)
		return NULL;
	if (strcmp(path, "/metrics") == 0) {
		*type = "text/plain; version=0.0.4; charset=utf-8";
		write_metrics(f, m);
	} else if (strcmp(path, "/connections") == 0) {
		*type = "application/json";
		/* Blocks this thread only, at most REPORT_DEADLINE_MS. */
		report_collect(&r, m->workers, m->nworkers, true);
		report_json(f, &r);
		report_free(&r);
	} else if (strcmp(path, "/readyz") == 0 && !ready(m)) {
		*status = "503 Service Unavailable";
		fputs("not ready\n", f);
	} else {
		fputs("ok\n", f);
	}
	fclose(f);
	return body;
}

/* Builds c's answer to the request in c->in (complete, or too long). */
/* The status line's words for what http_parse_request refused. */
static const char *refusal(int code)
{
	switch (code) {
	case 405:
		return "405 Method Not Allowed";
	case 414:
		return "414 URI Too Long";
	case 431:
		return "431 Request Header Fields Too Large";
	case 505:
		return "505 HTTP Version Not Supported";
	default:
		return "400 Bad Request";
	}
}

static void answer(struct metrics *m, struct client *c, bool complete)
{
	const char *status = "200 OK", *type = "text/plain", *extra = "";
	struct http_request req;
	char *body = NULL;
	size_t len = 0;
	int code;
	bool head;
	FILE *f;

	code = http_parse_request(c->in, c->inlen, complete, &req);
	head = code == 0 && req.head;
	if (code) {
		status = refusal(code);
		if (code == 405)
			extra = "Allow: GET, HEAD\r\n";
	} else {
		body = body_for(m, req.path, &type, &status, &len);
		if (body == NULL)
			status = "404 Not Found";
	}
	f = open_memstream(&c->out, &c->outlen);
	if (f == NULL) {
		free(body);
		return;
	}
	fprintf(f,
		"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		status, type, body ? len : strlen(status) + 1, extra);
	/* HEAD: the headers GET would have, Content-Length included. */
	if (body && !head)
		fwrite(body, 1, len, f);
	else if (!head)
		fprintf(f, "%s\n", status);
	fclose(f);
	free(body);
}

/* c is readable: reads what came; answers once the headers are in. */
static void handle_read(struct metrics *m, struct client *c)
{
	size_t room = sizeof(c->in) - 1 - c->inlen;
	ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	if (c->answered)
		return;
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	/* memmem: a NUL in the request must not hide its end. */
	if (memmem(c->in, c->inlen, "\r\n\r\n", 4) ||
	    memmem(c->in, c->inlen, "\n\n", 2))
		answer(m, c, true);
	else if (c->inlen == sizeof(c->in) - 1)
		answer(m, c, false);
}

/* c's answer is being sent: sends what the socket takes. */
static void handle_write(struct client *c)
{
	ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		drop(c);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen)
		return;
	/*
	 * A close with unread request bytes (an oversized header cut at
	 * 431) would reset the connection, and the client might lose the
	 * answer: our FIN first, then read until the client's, within the
	 * client's time (METRICS_CLIENT_MS from its connect).
	 */
	shutdown(c->fd, SHUT_WR);
	free(c->out);
	c->out = NULL;
	c->answered = true;
	c->inlen = 0;
}

/* The poll set: stop_fd, the listener, then each client in place. */
static int poll_set(struct metrics *m, struct pollfd *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	struct client *c;

	p[0] = (struct pollfd){.fd = m->stop_fd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
	for (int i = 0; i < METRICS_MAX_CLIENTS; i++) {
		c = &m->clients[i];
		p[i + 2] = (struct pollfd){.fd = c->fd,
					   .events = c->out ? POLLOUT : POLLIN};
		if (c->fd >= 0 && c->until_ms < next)
			next = c->until_ms;
	}
	if (next == UINT64_MAX)
		return -1;
	return next > now ? (int)(next - now) : 0;
}

static void *metrics_main(void *arg)
{
	struct pollfd p[METRICS_MAX_CLIENTS + 2];
	struct metrics *m = arg;
	struct client *c;
	uint64_t now;

	for (;;) {
		if (poll(p, 2 + METRICS_MAX_CLIENTS,
			 poll_set(m, p, core_now_ms())) < 0 &&
		    errno != EINTR)
			break;
		if (p[0].revents)
			break;
		now = core_now_ms();
		for (int i = 0; i < METRICS_MAX_CLIENTS; i++) {
			c = &m->clients[i];
			if (c->fd >= 0 && p[i + 2].revents)
				c->out ? handle_write(c) : handle_read(m, c);
			if (c->fd >= 0 && c->until_ms <= now)
				drop(c);
		}
		if (p[1].revents & POLLIN)
			take_client(m);
	}
	return NULL;
}

static void metrics_free(struct metrics *m)
{
	if (m->lfd >= 0)
		close(m->lfd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	free(m);
}

struct metrics *metrics_open(const union net_addr *a, union net_addr *bound,
			     int *fd, int *err)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*err = -ENOMEM;
	if (m == NULL)
		return NULL;
	for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
		m->clients[i].fd = -1;
	m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*err = m->stop_fd < 0 ? -errno : 0;
	m->lfd = net_listen_tcp(a, 64, 0, bound);
	if (m->lfd < 0)
		*err = m->lfd;
	if (*err == 0) {
		*fd = m->lfd;
		return m;
	}
	metrics_free(m);
	return NULL;
}

int metrics_start(struct metrics *m, struct worker *workers, int n,
		  const char *backend)
{
	int err;

	m->workers = workers;
	m->nworkers = n;
	m->backend = backend;
	err = -pthread_create(&m->thread, NULL, metrics_main, m);
	if (err < 0)
		metrics_free(m);
	return err;
}

void metrics_stop(struct metrics *m)
{
	if (eventfd_write(m->stop_fd, 1) == 0)
		pthread_join(m->thread, NULL);
	for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			drop(&m->clients[i]);
	metrics_free(m);
}
