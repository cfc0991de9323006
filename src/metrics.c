// SPDX-License-Identifier: BSD-2-Clause
/*
 * metrics.c - the --metrics HTTP listener's answers: GET /metrics,
 * /connections, /healthz, /readyz (httpd.c serves them).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "core.h"
#include "counter.h"
#include "fault.h"
#include "http.h"
#include "httpd.h"
#include "metrics.h"
#include "report.h"
#include "worker.h"

/* Owned by main (metrics_open, metrics_stop); read by its thread. */
struct metrics {
	struct httpd *httpd;
	struct worker *workers;
	int nworkers;
	const char *backend;
	struct fault_registry *faults; /* NULL: no fault series */
};

int metrics_parse_addr(const char *text, union net_addr *a)
{
	return httpd_parse_addr(text, a);
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
	by_reason(
		f, m, "echod_proxy_headers_total",
		"TCP connections by what came of their PROXY header (--proxy-protocol)",
		offsetof(struct worker_stats, proxy), PROXY_NOUTCOMES,
		proxy_outcome_label);
	by_reason(f, m, "echod_tls_handshakes_total",
		  "TLS handshakes (--tls-port), by what came of them",
		  offsetof(struct worker_stats, tls), TLS_NOUTCOMES,
		  tls_outcome_label);
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

/* A label's value: a backslash and a quote escaped (the text format). */
static void label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		fputc(*v, f);
	}
}

/*
 * Each fault of the current set (--fault, --control) and its
 * activations. The set is held while it is read, so a change on the
 * control listener cannot free it under us.
 */
static void faults(FILE *f, struct fault_registry *r)
{
	struct fault_set *s = fault_acquire(r);

	fputs("# HELP echod_faults_total Activations of each fault of the current set (connections or datagrams it acted on)\n"
	      "# TYPE echod_faults_total counter\n",
	      f);
	for (unsigned int i = 0; i < s->n; i++) {
		fprintf(f, "echod_faults_total{type=\"%s\",name=\"",
			fault_type_name(s->f[i].type));
		label_value(f, s->f[i].name);
		fprintf(f, "\"} %llu\n",
			(unsigned long long)fault_activations(s, i));
	}
	fault_release(s);
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
	if (m->faults)
		faults(f, m->faults);
}

/* Every worker is in its loop, and echod is not draining. */
static bool ready(const struct metrics *m)
{
	const struct worker_shared *sh = m->workers[0].shared;

	return atomic_load(&sh->serving) == m->nworkers &&
	       !atomic_load(&sh->draining);
}

/*
 * The answer to a GET or HEAD of r's path: its body, content type and
 * status (404 for a path not ours). /healthz: the process answers at
 * all; /readyz: 503 while a worker is not serving or echod drains.
 */
static void handle(void *arg, const struct http_request *r, const char *in,
		   size_t inlen, struct httpd_reply *out)
{
	const char *path = r->path;
	struct metrics *m = arg;
	struct report rep;
	FILE *f;

	(void)in, (void)inlen; /* GET and HEAD only: no body */
	if (strcmp(path, "/metrics") && strcmp(path, "/connections") &&
	    strcmp(path, "/healthz") && strcmp(path, "/readyz"))
		f = NULL;
	else
		f = open_memstream(&out->body, &out->len);
	if (f == NULL) {
		out->status = 404;
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		out->type = "text/plain; version=0.0.4; charset=utf-8";
		write_metrics(f, m);
	} else if (strcmp(path, "/connections") == 0) {
		out->type = "application/json";
		/* Blocks this thread only, at most REPORT_DEADLINE_MS. */
		report_collect(&rep, m->workers, m->nworkers, true);
		report_json(f, &rep);
		report_free(&rep);
	} else if (strcmp(path, "/readyz") == 0 && !ready(m)) {
		out->status = 503;
		fputs("not ready\n", f);
	} else {
		fputs("ok\n", f);
	}
	fclose(f);
}

struct metrics *metrics_open(const union net_addr *a, union net_addr *bound,
			     int *fd, int *err)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*err = -ENOMEM;
	if (m == NULL)
		return NULL;
	m->httpd = httpd_open(a, bound, fd, err);
	if (m->httpd == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

int metrics_start(struct metrics *m, struct worker *workers, int n,
		  const char *backend, struct fault_registry *faults)
{
	const struct httpd_config c = {
		.methods = HTTP_GET | HTTP_HEAD,
		.allow = "GET, HEAD",
		.max_head = METRICS_MAX_REQUEST,
		.max_body = 0,
		.handle_cb = handle,
		.arg = m,
	};
	int err;

	m->workers = workers;
	m->nworkers = n;
	m->backend = backend;
	m->faults = faults;
	err = httpd_start(m->httpd, &c);
	if (err < 0)
		free(m);
	return err;
}

void metrics_stop(struct metrics *m)
{
	httpd_stop(m->httpd);
	free(m);
}
