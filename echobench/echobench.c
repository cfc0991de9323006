// SPDX-License-Identifier: BSD-2-Clause
/*
 * echobench.c - main(): load generator for RFC 862 echo servers. Parses the
 * options, starts one event-loop thread per --threads, keeps the timeline
 * (warm-up, measurement, end), prints a progress line a second, gathers
 * the counters, CPU times and latencies, and reports. Exit status: 0 all
 * echoes correct, 1 a verification or run-time error, 2 a usage error, 3
 * every echo correct but a --threshold broken.
 */
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "btls.h"
#include "cpu.h"
#include "hlog.h"
#include "loadgen.h"
#include "opts.h"
#include "pattern.h"
#include "probe.h"
#include "results.h"
#include "runs.h"
#include "selftest.h"
#include "tcp_client.h"
#include "threshold.h"
#include "udp_client.h"

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
	uint64_t last_tick; /* ns: where the last interval ended */
	struct interval *iv;
	size_t niv;
	struct sample begin, end;
	bool began, ended;
	double window_start; /* seconds since the epoch */
	FILE *hlog; /* --hlog, or NULL */
	struct hist *hlog_prev; /* the window before its last interval */
	double hlog_start,
		hlog_len; /* that last interval, written at the end */
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
	const struct lg_ops *ops = o->udp ? &udp_client_ops : &tcp_client_ops;
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
		hist_init(&th->hs_hist);
		errno = -lg_start(th, ops);
		if (errno)
			err(1, "pthread_create");
	}
}

/* The wall-clock time of a CLOCK_MONOTONIC instant, in seconds. */
static double unix_time_of(uint64_t mono)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 +
	       ((double)mono - (double)now_ns()) / 1e9;
}

static void sleep_until(uint64_t t);

/*
 * --start-at: the window begins at that wall-clock time, so that runs on
 * several hosts measure the same seconds; the warm-up before it is cut
 * short if connecting took longer. A time already past fails the run:
 * its window could not be the others'.
 */
static void start_at(struct monitor *m)
{
	struct loadgen *lg = &m->lg;
	double ahead = m->o->start_at - unix_time_of(lg->start);
	uint64_t warm = (uint64_t)(m->o->warmup * 1e9);

	if (ahead < 0)
		errx(1, "start-at %.3f: that time passed %.3f s ago",
		     m->o->start_at, -ahead);
	lg->measure = lg->start + (uint64_t)(ahead * 1e9);
	if (lg->measure - lg->start > warm)
		lg->start = lg->measure - warm;
	sleep_until(lg->start);
}

/* Sets the timeline once every thread has connected, and releases them. */
static void release_threads(struct monitor *m)
{
	const struct bench_opts *o = m->o;
	struct loadgen *lg = &m->lg;

	pthread_barrier_wait(&lg->ready);
	lg->start = now_ns();
	lg->measure = lg->start + (uint64_t)(o->warmup * 1e9);
	if (o->start_at > 0)
		start_at(m);
	lg->end = o->duration > 0 ? lg->measure + (uint64_t)(o->duration * 1e9)
				  : UINT64_MAX;
	if (o->rate > 0)
		lg->period = (uint64_t)(1e9 * o->connections / o->rate);
	m->window_start = unix_time_of(lg->measure);
	if (m->hlog)
		hlog_header(m->hlog, m->window_start);
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

/*
 * Sums the live counters: echoes and bytes of the window, or when warm is
 * set those outside it (the warm-up's, as the window has not begun).
 */
static void sum(const struct monitor *m, bool warm, uint64_t *done,
		uint64_t *bytes, uint64_t *errors)
{
	const struct lg_stats *st;
	uint64_t all = 0, all_bytes = 0;

	*done = *bytes = *errors = 0;
	for (unsigned int i = 0; i < m->o->threads; i++) {
		st = &m->th[i].st;
		*done += rd(&st->measured);
		*bytes += rd(&st->measured_bytes);
		all += rd(&st->done);
		all_bytes += rd(&st->bytes);
		for (int k = 0; k < ERR_FATAL_MAX; k++)
			*errors += rd(&st->err[k]);
	}
	if (warm) {
		*done = all - *done;
		*bytes = all_bytes - *bytes;
	}
}

static void push_interval(struct monitor *m, const struct interval *iv)
{
	if (!(m->niv & (m->niv + 1))) {
		m->iv = realloc(m->iv, 2 * (m->niv + 1) * sizeof(*m->iv));
		if (!m->iv)
			err(1, "malloc");
	}
	m->iv[m->niv++] = *iv;
}

/*
 * Writes an interval's histogram to --hlog. The last of a timed window is
 * written only once the threads are done (hlog_finish), as echoes that
 * completed just before the window's end may be counted a moment after:
 * then the log's intervals add up to the summary exactly.
 */
static void hlog_tick(struct monitor *m, const struct hist *delta, double start,
		      double secs, uint64_t t)
{
	double at = start - m->o->warmup;

	if (!m->hlog)
		return;
	if (t < m->lg.end) {
		if (hlog_interval(m->hlog, at, secs, delta))
			err(1, "malloc");
		return;
	}
	memcpy(m->hlog_prev, m->snap[0], sizeof(*m->hlog_prev));
	m->hlog_start = at;
	m->hlog_len = secs;
}

static void hlog_finish(struct monitor *m, const struct hist *h)
{
	struct hist d;

	if (!m->hlog || m->hlog_len <= 0)
		return;
	hist_sub(&d, h, m->hlog_prev);
	if (hlog_interval(m->hlog, m->hlog_start, m->hlog_len, &d))
		err(1, "malloc");
}

/*
 * Closes one interval at now: counts since the last, p99 from the window's
 * histograms. The warm-up interval ends exactly where the window begins
 * and the last exactly where it ends, as lg_done splits echoes there.
 */
static void tick(struct monitor *m, uint64_t now, bool warm)
{
	struct hist *tmp, delta;
	struct interval iv = {0};
	uint64_t done, bytes, errors, t;
	double secs;

	t = warm ? m->lg.measure : now < m->lg.end ? now : m->lg.end;
	iv.start = m->niv ? m->iv[m->niv - 1].end : 0;
	iv.end = (double)(t - m->lg.start) / 1e9;
	secs = iv.end - iv.start;
	sum(m, warm, &done, &bytes, &errors);
	if (!warm && m->niv && m->iv[m->niv - 1].warmup)
		m->prev_done = m->prev_bytes = 0;
	hist_init(m->snap[1]);
	for (unsigned int i = 0; i < m->o->threads; i++)
		hist_add(m->snap[1], &m->th[i].hist);
	hist_sub(&delta, m->snap[1], m->snap[0]);
	iv.warmup = warm;
	iv.p99 = warm ? 0 : hist_percentile(&delta, 99);
	iv.echoes = done - m->prev_done;
	iv.bytes = bytes - m->prev_bytes;
	iv.rps = secs > 0 ? (double)iv.echoes / secs : 0;
	iv.mbps = secs > 0 ? (double)iv.bytes / secs / 1e6 : 0;
	iv.errors = errors;
	m->prev_done = done;
	m->prev_bytes = bytes;
	/*
	 * The window's histograms only hold the window's echoes: those that
	 * came between its start and the warm-up's tick go to the first
	 * measured interval, so the warm-up keeps the empty snapshot.
	 */
	if (!warm) {
		hlog_tick(m, &delta, iv.start, secs, t);
		tmp = m->snap[0];
		m->snap[0] = m->snap[1];
		m->snap[1] = tmp;
	}
	m->last_tick = t;
	push_interval(m, &iv);
	if (!m->o->quiet)
		results_progress(stderr, m->o, &iv, m->tty);
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000),
			      .tv_nsec = (long)(t % 1000000000)};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Takes the CPU samples when the window begins and ends. */
static void sample_window(struct monitor *m, uint64_t now)
{
	if (!m->began && now >= m->lg.measure) {
		take_sample(m, &m->begin);
		m->began = true;
	}
	if (m->began && !m->ended && (now >= m->lg.end || interrupted)) {
		take_sample(m, &m->end);
		m->ended = true;
	}
}

/*
 * Follows the run until every thread is done: the warm-up as one interval,
 * then progress each second of the window, CPU samples when it begins and
 * ends (SIGINT ends it early). No interval follows the window's end: what
 * completes in the drain is outside it.
 */
static void follow(struct monitor *m)
{
	uint64_t next, now, t;
	bool warm = m->lg.measure > m->lg.start;

	next = warm ? m->lg.measure : m->lg.start + 1000000000;
	m->last_tick = m->lg.start;
	for (;;) {
		now = now_ns();
		if (interrupted)
			__atomic_store_n(&m->lg.stop, 1, __ATOMIC_RELAXED);
		sample_window(m, now);
		if (all_finished(m))
			break;
		if (now >= next && m->last_tick < m->lg.end) {
			tick(m, now, warm);
			next = (warm ? m->lg.measure : next) + 1000000000;
			warm = false;
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
	if (m->last_tick < m->lg.end && m->end.at >= m->last_tick + 100000000)
		tick(m, m->end.at, warm);
	if (m->niv && !m->o->quiet && m->tty)
		fputc('\n', stderr);
}

/*
 * Echoes that completed just before the window's end but were counted
 * after the last tick read the counters belong to the last interval, so
 * that the intervals add up to the summary exactly.
 */
static void settle_intervals(struct monitor *m, const struct result *r)
{
	struct interval *iv = m->niv ? &m->iv[m->niv - 1] : NULL;
	uint64_t n = 0, b = 0;
	double secs;

	if (!iv || iv->warmup)
		return;
	for (size_t i = 0; i < m->niv; i++) {
		n += m->iv[i].warmup ? 0 : m->iv[i].echoes;
		b += m->iv[i].warmup ? 0 : m->iv[i].bytes;
	}
	if (n >= r->requests)
		return;
	iv->echoes += r->requests - n;
	iv->bytes += r->bytes - b;
	secs = iv->end - iv->start;
	iv->rps = secs > 0 ? (double)iv->echoes / secs : 0;
	iv->mbps = secs > 0 ? (double)iv->bytes / secs / 1e6 : 0;
}

/* --tls: the threads' handshake counts and latencies. */
static void gather_tls(const struct lg_thread *th, struct result *r)
{
	r->handshakes += th->st.handshakes;
	r->resumed += th->st.resumed;
	r->handshakes_all += th->st.handshakes_all;
	r->resumed_all += th->st.resumed_all;
	hist_add(r->hs_hist, &th->hs_hist);
	if (!r->tls_version)
		r->tls_version = th->tls_version;
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
	r->hs_hist = h + 1;
	hist_init(h);
	hist_init(r->hs_hist);
	for (unsigned int i = 0; i < o->threads; i++) {
		th = &m->th[i];
		lg_join(th);
		hist_add(h, &th->hist);
		r->requests += th->st.measured;
		r->answered += th->st.done;
		r->bytes += th->st.measured_bytes;
		for (int k = 0; k < ERR_MAX; k++)
			r->err[k] += th->st.err[k];
		r->corrupt_bytes += th->st.corrupt_bytes;
		r->expected_closes += th->st.expected_closes;
		gather_tls(th, r);
		if (th->st.last_done > last)
			last = th->st.last_done;
		if (th->first_err[0])
			warnx("%s", th->first_err);
	}
	if (!m->began)
		m->begin = m->end;
	/* The window ends at its end; with -n at the last echo. */
	if (end > m->lg.end)
		end = m->lg.end;
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
	settle_intervals(m, r);
	hlog_finish(m, h);
	r->window_start = m->window_start;
	r->iv = m->iv;
	r->niv = m->niv;
}

/*
 * The files asked for are opened before the run, so that a path that
 * cannot be written fails at once, not after the whole run; "-" is
 * standard output.
 */
struct outputs {
	FILE *csv, *svg, *hlog;
};

static FILE *open_output(const char *path)
{
	FILE *f;

	if (!path)
		return NULL;
	if (!strcmp(path, "-"))
		return stdout;
	f = fopen(path, "we");
	if (!f)
		err(1, "%s", path);
	return f;
}

/* Flushes or closes one output; false (after one line) if writing failed. */
static bool close_output(FILE *f, const char *path)
{
	bool bad;

	if (!f)
		return true;
	bad = ferror(f) != 0;
	bad |= (f == stdout ? fflush(f) : fclose(f)) != 0;
	if (bad)
		warnx("%s: write failed", path);
	return !bad;
}

static double per_cent(double part, double whole)
{
	return whole > 0 ? 100 * part / whole : 0;
}

/* The value a threshold is held to, in the unit of its limit. */
static double measure(const struct threshold *t, const struct result *r)
{
	const struct hist *h = r->hist;
	double achieved, errors = 0;

	switch (threshold_kind(t->metric)) {
	case TK_LATENCY:
		if (t->metric == TH_MAX)
			return h->total ? (double)h->max : 0;
		return (double)hist_percentile(h,
					       threshold_percentile(t->metric));
	case TK_COUNT:
		for (int k = 0; k < ERR_MAX; k++)
			errors += (double)r->err[k];
		return errors;
	case TK_PERCENT:
		break;
	}
	if (t->metric == TH_LOSS)
		return per_cent((double)r->err[ERR_LOST],
				(double)(r->answered + r->err[ERR_LOST]));
	achieved = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
	return achieved < r->o->rate
		       ? per_cent(r->o->rate - achieved, r->o->rate)
		       : 0;
}

/*
 * Measures each of the run's thresholds into v (one per threshold of
 * r->o) and returns how many were broken.
 */
static unsigned int judge_thresholds(const struct result *r, struct verdict *v)
{
	const struct bench_opts *o = r->o;
	const struct threshold *t;
	unsigned int broken = 0;

	for (unsigned int i = 0; i < o->nthresholds; i++) {
		t = &o->thresholds[i];
		v[i].measured = measure(t, r);
		v[i].ok = t->metric == TH_ERRORS ? v[i].measured == 0
						 : v[i].measured < t->limit;
		broken += !v[i].ok;
	}
	return broken;
}

/*
 * Judges the thresholds, then writes every report asked for; returns the
 * exit status. Standard output holds one document: when --csv, --svg or
 * --hlog is "-", the text summary goes to standard error. A run whose
 * echoes were all cut short by expected closes (--expect-close below the
 * message size) completed none, and did what it was told.
 */
static int report(struct result *r, const struct outputs *out)
{
	const struct bench_opts *o = r->o;
	bool taken =
		out->csv == stdout || out->svg == stdout || out->hlog == stdout;
	int status = 0;

	r->broken = judge_thresholds(r, r->verdict);
	if (o->json)
		results_json(stdout, r);
	else
		results_text(taken ? stderr : stdout, r);
	fflush(stdout);
	if (out->csv)
		results_csv(out->csv, r);
	if (!close_output(out->csv, o->csv))
		status = 1;
	if (out->svg)
		results_svg(out->svg, r);
	if (!close_output(out->svg, o->svg))
		status = 1;
	if (!close_output(out->hlog, o->hlog))
		status = 1;
	results_broken(stderr, r);
	if (results_failures(r)) {
		warnx("%llu echoes failed verification or were cut short",
		      (unsigned long long)results_failures(r));
		status = 1;
	} else if (!r->requests && !r->expected_closes) {
		warnx("no echo completed in the measured time");
		status = 1;
	} else if (r->broken && !status) {
		status = 3;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct monitor m = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	struct result r;
	struct outputs out;
	struct hist *h;
	int status;

	if (argc > 1 && !strcmp(argv[1], "merge"))
		return merge_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "plot"))
		return plot_main(argc - 1, argv + 1);
	opts_parse(&o, argc, argv);
	if (o.selftest_hist)
		return selftest_histogram(o.selftest_hist);
	m.lg.tls = btls_ctx_new(&o);
	out.csv = open_output(o.csv);
	out.svg = open_output(o.svg);
	out.hlog = open_output(o.hlog);
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
	m.hlog_prev = malloc(sizeof(struct hist));
	m.hlog = out.hlog;
	h = malloc(2 * sizeof(*h)); /* the echoes', the handshakes' */
	if (!m.snap[0] || !m.snap[1] || !m.hlog_prev || !h)
		err(1, "malloc");
	hist_init(m.snap[0]);
	start_threads(&m);
	release_threads(&m);
	follow(&m);
	gather(&m, &r, h);
	status = report(&r, &out);
	free(m.snap[0]);
	free(m.snap[1]);
	free(m.hlog_prev);
	free(m.iv);
	free(m.th);
	free(h);
	btls_ctx_free(m.lg.tls);
	return status;
}
