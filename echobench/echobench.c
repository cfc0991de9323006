/*
 * echobench.c - main(): load generator for RFC 862 echo servers. Parses the
 * options, starts one event-loop thread per --threads, keeps the timeline
 * (warm-up, measurement, end), prints a progress line a second, gathers
 * the counters, CPU times and latencies, and reports. Exit status: 0 all
 * echoes correct, 1 a verification or run-time error, 2 a usage error.
 */
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "loadgen.h"
#include "options.h"
#include "pattern.h"
#include "probe.h"
#include "report.h"
#include "selftest.h"
#include "tcp.h"
#include "udp.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* What main samples at the start and end of the measured time. */
struct sample {
	uint64_t at; /* ns */
	struct cpu_sample client, server;
	bool server_ok;
};

/* The monitor's state: threads, snapshots for intervals, samples. */
struct monitor {
	const struct bench_opts *o;
	struct loadgen lg;
	struct lg_thread *th;
	struct hist *snap[2]; /* previous and current, for interval p99 */
	uint64_t prev_done, prev_bytes;
	struct interval *iv;
	size_t niv;
	struct sample begin, end;
	bool began, ended;
	bool tty;
};

static void take_sample(struct monitor *m, struct sample *s)
{
	s->at = now_ns();
	cpu_self(&s->client);
	s->server_ok =
		m->o->server_pid && !cpu_tree(m->o->server_pid, &s->server);
}

/* Connections go round-robin to threads; -n is shared the same way. */
static void start_threads(struct monitor *m)
{
	const struct bench_opts *o = m->o;
	const struct lg_ops *ops = o->udp ? &udp_ops : &tcp_ops;
	unsigned int t = o->threads;
	struct lg_thread *th;

	m->th = calloc(t, sizeof(*m->th));
	if (!m->th)
		err(1, "malloc");
	if (pthread_barrier_init(&m->lg.ready, NULL, t + 1) ||
	    pthread_barrier_init(&m->lg.go, NULL, t + 1))
		errx(1, "pthread_barrier_init failed");
	for (unsigned int i = 0; i < t; i++) {
		th = &m->th[i];
		th->id = (int)i;
		th->lg = &m->lg;
		th->first = i;
		th->nconns = (o->connections - i + t - 1) / t;
		th->limited = o->requests > 0;
		th->quota = o->requests / t + (i < o->requests % t);
		hist_init(&th->hist);
		errno = -lg_start(th, ops);
		if (errno)
			err(1, "pthread_create");
	}
}

/* Sets the timeline once every thread has connected, and releases them. */
static void release_threads(struct monitor *m)
{
	const struct bench_opts *o = m->o;
	struct loadgen *lg = &m->lg;

	pthread_barrier_wait(&lg->ready);
	lg->start = now_ns();
	lg->measure = lg->start + (uint64_t)(o->warmup * 1e9);
	lg->end = o->duration > 0 ? lg->measure + (uint64_t)(o->duration * 1e9)
				  : UINT64_MAX;
	if (o->rate > 0)
		lg->period = (uint64_t)(1e9 * o->connections / o->rate);
	if (!o->warmup) {
		take_sample(m, &m->begin);
		m->began = true;
	}
	pthread_barrier_wait(&lg->go);
}

static bool all_finished(const struct monitor *m)
{
	for (unsigned int i = 0; i < m->o->threads; i++)
		if (!__atomic_load_n(&m->th[i].finished, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

/* Sums the live counters; errors of every kind when err is NULL. */
static void sum(const struct monitor *m, uint64_t *done, uint64_t *bytes,
		uint64_t *errors)
{
	*done = *bytes = *errors = 0;
	for (unsigned int i = 0; i < m->o->threads; i++) {
		*done += rd(&m->th[i].st.done);
		*bytes += rd(&m->th[i].st.bytes);
		for (int k = 0; k < ERR_FATAL_MAX; k++)
			*errors += rd(&m->th[i].st.err[k]);
	}
}

/* Closes one interval: counts since the last, p99 from the histograms. */
static void tick(struct monitor *m, uint64_t now)
{
	struct hist *tmp, delta;
	struct interval iv = {0};
	uint64_t done, bytes, errors;
	double secs;

	iv.start = m->niv ? m->iv[m->niv - 1].end : 0;
	iv.end = (double)(now - m->lg.start) / 1e9;
	secs = iv.end - iv.start;
	sum(m, &done, &bytes, &errors);
	hist_init(m->snap[1]);
	for (unsigned int i = 0; i < m->o->threads; i++)
		hist_add(m->snap[1], &m->th[i].hist);
	hist_sub(&delta, m->snap[1], m->snap[0]);
	iv.warmup = now <= m->lg.measure || !delta.total;
	iv.p99 = hist_percentile(&delta, 99);
	iv.rps = secs > 0 ? (double)(done - m->prev_done) / secs : 0;
	iv.mbps = secs > 0 ? (double)(bytes - m->prev_bytes) / secs / 1e6 : 0;
	iv.errors = errors;
	m->prev_done = done;
	m->prev_bytes = bytes;
	tmp = m->snap[0];
	m->snap[0] = m->snap[1];
	m->snap[1] = tmp;
	if (!(m->niv & (m->niv + 1))) {
		m->iv = realloc(m->iv, 2 * (m->niv + 1) * sizeof(*m->iv));
		if (!m->iv)
			err(1, "malloc");
	}
	m->iv[m->niv++] = iv;
	if (!m->o->quiet)
		report_progress(stderr, m->o, &iv, m->tty);
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000),
			      .tv_nsec = (long)(t % 1000000000)};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/*
 * Follows the run until every thread is done: progress each second, CPU
 * samples when the measured time begins and ends (SIGINT ends it early).
 */
static void follow(struct monitor *m)
{
	uint64_t next = m->lg.start + 1000000000, now, t;

	for (;;) {
		now = now_ns();
		if (interrupted)
			__atomic_store_n(&m->lg.stop, 1, __ATOMIC_RELAXED);
		if (!m->began && now >= m->lg.measure) {
			take_sample(m, &m->begin);
			m->began = true;
		}
		if (m->began && !m->ended &&
		    (now >= m->lg.end || interrupted)) {
			take_sample(m, &m->end);
			m->ended = true;
		}
		if (all_finished(m))
			break;
		if (now >= next) {
			tick(m, now);
			next += 1000000000;
		}
		t = now + 20000000; /* notice finished threads and signals */
		t = t < next ? t : next;
		t = !m->began && m->lg.measure < t ? m->lg.measure : t;
		t = !m->ended && m->lg.end < t ? m->lg.end : t;
		sleep_until(t);
	}
	if (!m->ended) {
		take_sample(m, &m->end);
		m->ended = true;
	}
	/* The last, partial second, unless it is only the drain. */
	if (m->end.at >= next - 1000000000 + 100000000)
		tick(m, m->end.at);
	if (m->niv && !m->o->quiet && m->tty)
		fputc('\n', stderr);
}

/* Sums the threads into r and prints each thread's first error. */
static void gather(struct monitor *m, struct result *r, struct hist *h)
{
	const struct bench_opts *o = m->o;
	uint64_t last = 0, end = m->end.at;
	struct lg_thread *th;

	memset(r, 0, sizeof(*r));
	r->o = o;
	r->hist = h;
	hist_init(h);
	for (unsigned int i = 0; i < o->threads; i++) {
		th = &m->th[i];
		lg_join(th);
		hist_add(h, &th->hist);
		r->requests += th->st.measured;
		r->bytes += th->st.measured_bytes;
		for (int k = 0; k < ERR_MAX; k++)
			r->err[k] += th->st.err[k];
		if (th->st.last_done > last)
			last = th->st.last_done;
		if (th->first_err[0])
			warnx("%s", th->first_err);
	}
	if (!m->began)
		m->begin = m->end;
	/* With -n the measured time ends at the last echo. */
	if (o->requests && !o->duration && last)
		end = last;
	r->seconds =
		end > m->lg.measure ? (double)(end - m->lg.measure) / 1e9 : 0;
	r->client.user_us = m->end.client.user_us - m->begin.client.user_us;
	r->client.sys_us = m->end.client.sys_us - m->begin.client.sys_us;
	r->have_server = m->begin.server_ok && m->end.server_ok;
	if (o->server_pid && !r->have_server)
		warnx("server-pid %d: could not read its CPU time",
		      (int)o->server_pid);
	if (r->have_server) {
		r->server.user_us =
			m->end.server.user_us - m->begin.server.user_us;
		r->server.sys_us =
			m->end.server.sys_us - m->begin.server.sys_us;
	}
	r->iv = m->iv;
	r->niv = m->niv;
}

/* Writes every report asked for; returns the exit status. */
static int report(const struct result *r)
{
	const struct bench_opts *o = r->o;
	int e, status = 0;

	if (o->json)
		report_json(stdout, r);
	else
		report_text(stdout, r);
	fflush(stdout);
	if (o->csv && (e = report_csv(o->csv, r)) < 0) {
		warnx("%s: %s", o->csv, strerror(-e));
		status = 1;
	}
	if (o->svg && (e = report_svg(o->svg, r)) < 0) {
		warnx("%s: %s", o->svg, strerror(-e));
		status = 1;
	}
	if (report_failures(r)) {
		warnx("%llu echoes failed verification or were cut short",
		      (unsigned long long)report_failures(r));
		status = 1;
	} else if (!r->requests) {
		warnx("no echo completed in the measured time");
		status = 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct monitor m = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	struct result r;
	struct hist *h;
	int status;

	opts_parse(&o, argc, argv);
	if (o.selftest_hist)
		return selftest_histogram(o.selftest_hist);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	probe_nofile(&o);
	probe_server(&o);
	pat_init();

	m.o = &o;
	m.lg.o = &o;
	m.tty = isatty(STDERR_FILENO);
	m.snap[0] = malloc(sizeof(struct hist));
	m.snap[1] = malloc(sizeof(struct hist));
	h = malloc(sizeof(*h));
	if (!m.snap[0] || !m.snap[1] || !h)
		err(1, "malloc");
	hist_init(m.snap[0]);
	start_threads(&m);
	release_threads(&m);
	follow(&m);
	gather(&m, &r, h);
	status = report(&r);
	free(m.snap[0]);
	free(m.snap[1]);
	free(m.iv);
	free(m.th);
	free(h);
	return status;
}
