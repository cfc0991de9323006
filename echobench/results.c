// SPDX-License-Identifier: BSD-2-Clause
/* results.c - progress lines, the text summary and the JSON document. */
#include <stdio.h>
#include <stdlib.h>

#include "hlog.h"
#include "opts.h"
#include "results.h"
#include "threshold.h"

#ifndef ECHOD_VERSION
#define ECHOD_VERSION "0.0.0"
#endif

static const double pcts[] = {50, 90, 99, 99.9, 99.99};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9", "p99.99"};
static const char *const pct_keys[] = {"p50", "p90", "p99", "p99_9", "p99_99"};

enum {
	NPCT = sizeof(pcts) / sizeof(pcts[0])
};

/* A latency with a unit chosen for it: "850 ns", "12.3 us", "1.20 ms". */
static const char *lat(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	return buf;
}

/* A threshold's limit or measured value, in the unit its kind is shown in. */
static const char *th_value(char *buf, size_t len, enum threshold_metric m,
			    double v)
{
	switch (threshold_kind(m)) {
	case TK_LATENCY:
		return lat(buf, len, (uint64_t)v);
	case TK_PERCENT:
		snprintf(buf, len, "%.2f %%", v);
		return buf;
	case TK_COUNT:
		break;
	}
	snprintf(buf, len, "%.0f", v);
	return buf;
}

static const char *unit(const struct bench_opts *o)
{
	return o->mode == MODE_CHURN ? "conn/s" : "echo/s";
}

void results_progress(FILE *f, const struct bench_opts *o,
		      const struct interval *iv, bool tty)
{
	char p99[40], v[24];

	if (iv->warmup)
		snprintf(p99, sizeof(p99), "warm-up");
	else if (!iv->echoes)
		snprintf(p99, sizeof(p99), "p99 -");
	else
		snprintf(p99, sizeof(p99), "p99 %s",
			 lat(v, sizeof(v), iv->p99));
	fprintf(f,
		"%s%6.2f-%.2f s  %10.0f %s  %9.2f MB/s  %-14s  errors %llu%s",
		tty ? "\r\033[K" : "", iv->start, iv->end, iv->rps, unit(o),
		iv->mbps, p99, (unsigned long long)iv->errors, tty ? "" : "\n");
	fflush(f);
}

uint64_t results_failures(const struct result *r)
{
	uint64_t n = 0;

	for (int k = 0; k < ERR_FATAL_MAX; k++)
		n += r->err[k];
	return n;
}

static double per_s(const struct result *r, double v)
{
	return r->seconds > 0 ? v / r->seconds : 0;
}

static double per_req(const struct result *r, uint64_t us)
{
	return r->requests ? (double)us / (double)r->requests : 0;
}

/*
 * An open-loop run whose window completed fewer echoes than were offered,
 * by more than 5 %: the server (or this client) could not keep up, and
 * the rate it reached is what the summary shows.
 */
static bool short_of_offer(const struct result *r)
{
	return r->o->rate > 0 &&
	       per_s(r, (double)r->requests) < 0.95 * r->o->rate;
}

static void text_config(FILE *f, const struct bench_opts *o)
{
	const char *what = o->udp		   ? "socket"
			   : o->mode == MODE_CHURN ? "slot"
						   : "connection";

	fprintf(f, "echobench: %s %s to %s: %u %s%s, %zu B, depth %u, ",
		o->udp	 ? "udp"
		: o->tls ? "tls"
			 : "tcp",
		opts_mode_name(o->mode), o->target, o->connections, what,
		o->connections == 1 ? "" : "s", o->size, o->depth);
	if (o->rate > 0)
		fprintf(f, "open loop at %.0f msg/s, ", o->rate);
	else
		fprintf(f, "closed loop, ");
	fprintf(f, "%u thread%s\n", o->threads, o->threads == 1 ? "" : "s");
}

static void text_errors(FILE *f, const struct result *r)
{
	const char *sep = "";

	fprintf(f, "  errors     ");
	for (int k = 0; k < ERR_MAX; k++) {
		if (!r->err[k])
			continue;
		fprintf(f, "%s%s %llu", sep, err_names[k],
			(unsigned long long)r->err[k]);
		if (k == ERR_MISMATCH)
			fprintf(f, " (%llu bytes corrupted)",
				(unsigned long long)r->corrupt_bytes);
		sep = ", ";
	}
	fprintf(f, "%s\n", *sep ? "" : "none");
}

/* One line of percentiles, after its label (10 columns). */
static void latency_line(FILE *f, const char *label, const struct hist *h)
{
	char a[32];

	fprintf(f, "  %-10s", label);
	for (int i = 0; i < NPCT; i++)
		fprintf(f, " %s %s,", pct_names[i],
			lat(a, sizeof(a), hist_percentile(h, pcts[i])));
	fprintf(f, " max %s", lat(a, sizeof(a), h->total ? h->max : 0));
	fprintf(f, " (mean %s)\n",
		lat(a, sizeof(a), h->total ? h->sum / h->total : 0));
}

void results_latency_text(FILE *f, const struct hist *h)
{
	latency_line(f, "latency", h);
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

/*
 * --tls: the window's handshakes, their rate, how many resumed and their
 * latency (churn makes them; the other modes' come before the window).
 */
static void text_tls(FILE *f, const struct result *r)
{
	fprintf(f,
		"  tls        %s, %llu handshakes, %.1f/s, %llu resumed (%.1f %%)",
		r->tls_version ? r->tls_version : "no handshake",
		(unsigned long long)r->handshakes,
		per_s(r, (double)r->handshakes), (unsigned long long)r->resumed,
		share(r->resumed, r->handshakes));
	if (r->handshakes_all > r->handshakes)
		fprintf(f, "; %llu more outside the window",
			(unsigned long long)(r->handshakes_all -
					     r->handshakes));
	fprintf(f, "\n");
	if (r->handshakes)
		latency_line(f, "handshake", r->hs_hist);
}

static void text_thresholds(FILE *f, const struct result *r)
{
	const struct threshold *t;
	char v[32];

	for (unsigned int i = 0; i < r->o->nthresholds; i++) {
		t = &r->o->thresholds[i];
		fprintf(f, "  threshold  %s: %s %s, %s\n", t->expr,
			threshold_metric_name(t->metric),
			th_value(v, sizeof(v), t->metric,
				 r->verdict[i].measured),
			r->verdict[i].ok ? "kept" : "broken");
	}
}

void results_broken(FILE *f, const struct result *r)
{
	const struct threshold *t;
	char v[32], l[32];

	for (unsigned int i = 0; i < r->o->nthresholds; i++) {
		t = &r->o->thresholds[i];
		if (r->verdict[i].ok)
			continue;
		fprintf(f, "echobench: threshold %s broken: %s was %s%s%s\n",
			t->expr, threshold_metric_name(t->metric),
			th_value(v, sizeof(v), t->metric,
				 r->verdict[i].measured),
			t->metric == TH_ERRORS ? "" : ", limit ",
			t->metric == TH_ERRORS
				? ""
				: th_value(l, sizeof(l), t->metric, t->limit));
	}
}

void results_text(FILE *f, const struct result *r)
{
	const struct bench_opts *o = r->o;

	text_config(f, o);
	fprintf(f, "  time       %.2f s measured after %.2f s warm-up\n",
		r->seconds, o->warmup);
	fprintf(f, "  echoes     %llu, %.1f %s, %.2f MB/s each way\n",
		(unsigned long long)r->requests, per_s(r, (double)r->requests),
		unit(o), per_s(r, (double)r->bytes) / 1e6);
	if (short_of_offer(r))
		fprintf(f,
			"  shortfall  offered %.0f %s, achieved %.0f (%.1f %%): fell behind; latency counts from each message's due time\n",
			o->rate, unit(o), per_s(r, (double)r->requests),
			100 * per_s(r, (double)r->requests) / o->rate);
	results_latency_text(f, r->hist);
	if (o->tls)
		text_tls(f, r);
	fprintf(f, "  client cpu %.2f us/echo (user %.2f, sys %.2f)\n",
		per_req(r, r->client.user_us + r->client.sys_us),
		per_req(r, r->client.user_us), per_req(r, r->client.sys_us));
	if (r->have_server)
		fprintf(f, "  server cpu %.2f us/echo (user %.2f, sys %.2f)\n",
			per_req(r, r->server.user_us + r->server.sys_us),
			per_req(r, r->server.user_us),
			per_req(r, r->server.sys_us));
	if (o->expect_close)
		fprintf(f,
			"  closes     %llu expected closes, after %llu bytes each\n",
			(unsigned long long)r->expected_closes,
			(unsigned long long)o->expect_close);
	text_errors(f, r);
	text_thresholds(f, r);
}

/* A JSON string; the target and thresholds are the user's text. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_cpu(FILE *f, const struct result *r, const char *name,
		     const struct cpu_sample *c)
{
	fprintf(f,
		"    \"%s\": {\"user\": %.3f, \"sys\": %.3f, \"total\": %.3f}",
		name, per_req(r, c->user_us), per_req(r, c->sys_us),
		per_req(r, c->user_us + c->sys_us));
}

static void json_config(FILE *f, const struct bench_opts *o)
{
	fprintf(f, "{\n  \"tool\": \"echobench\",\n  \"version\": \"%s\",\n",
		ECHOD_VERSION);
	fprintf(f, "  \"target\": ");
	json_str(f, o->target);
	fprintf(f, ",\n  \"proto\": \"%s\",\n  \"mode\": \"%s\",\n",
		o->udp ? "udp" : "tcp", opts_mode_name(o->mode));
	fprintf(f,
		"  \"connections\": %u,\n  \"size\": %zu,\n  \"depth\": %u,\n",
		o->connections, o->size, o->depth);
	fprintf(f, "  \"threads\": %u,\n  \"rate\": ", o->threads);
	if (o->rate > 0)
		fprintf(f, "%.3f,\n", o->rate);
	else
		fprintf(f, "null,\n");
	fprintf(f, "  \"warmup_s\": %.3f,\n", o->warmup);
}

/* A histogram's percentiles in microseconds, as the member key. */
static void latency_json(FILE *f, const char *key, const struct hist *h)
{
	fprintf(f, "\"%s\": {\"min\": %.3f, \"mean\": %.3f", key,
		h->total ? (double)h->min / 1e3 : 0,
		h->total ? (double)h->sum / (double)h->total / 1e3 : 0);
	for (int i = 0; i < NPCT; i++)
		fprintf(f, ", \"%s\": %.3f", pct_keys[i],
			(double)hist_percentile(h, pcts[i]) / 1e3);
	fprintf(f, ", \"max\": %.3f}", h->total ? (double)h->max / 1e3 : 0);
}

void results_latency_json(FILE *f, const struct hist *h)
{
	fprintf(f, "  ");
	latency_json(f, "latency_us", h);
	fprintf(f, ",\n");
}

/* --tls: as text_tls, or null without it. */
static void json_tls(FILE *f, const struct result *r)
{
	fprintf(f, "  \"tls\": ");
	if (!r->o->tls) {
		fprintf(f, "null,\n");
		return;
	}
	fprintf(f, "{\"version\": ");
	if (r->tls_version)
		json_str(f, r->tls_version);
	else
		fprintf(f, "null");
	fprintf(f,
		", \"verified\": %s, \"handshakes\": %llu, \"handshakes_per_s\": %.1f, \"resumed\": %llu, \"handshakes_all\": %llu, \"resumed_all\": %llu,\n    ",
		r->o->tls_ca ? "true" : "false",
		(unsigned long long)r->handshakes,
		per_s(r, (double)r->handshakes), (unsigned long long)r->resumed,
		(unsigned long long)r->handshakes_all,
		(unsigned long long)r->resumed_all);
	latency_json(f, "handshake_latency_us", r->hs_hist);
	fprintf(f, "},\n");
}

/* The window's histogram, for echobench merge and HdrHistogram's tools. */
void results_histogram_json(FILE *f, const struct hist *h)
{
	char *s = hlog_encode(h);

	fprintf(f, "  \"histogram\": ");
	if (s)
		fprintf(f, "\"%s\",\n", s);
	else
		fprintf(f, "null,\n");
	free(s);
}

static void json_intervals(FILE *f, const struct result *r)
{
	const struct interval *iv;

	fprintf(f, "  \"intervals\": [");
	for (size_t i = 0; i < r->niv; i++) {
		iv = &r->iv[i];
		fprintf(f,
			"%s\n    {\"start\": %.3f, \"end\": %.3f, \"warmup\": %s, \"requests_per_s\": %.1f, \"mb_per_s\": %.3f, \"p99_us\": ",
			i ? "," : "", iv->start, iv->end,
			iv->warmup ? "true" : "false", iv->rps, iv->mbps);
		if (iv->warmup || !iv->echoes)
			fprintf(f, "null");
		else
			fprintf(f, "%.3f", (double)iv->p99 / 1e3);
		fprintf(f, ", \"echoes\": %llu, \"errors\": %llu}",
			(unsigned long long)iv->echoes,
			(unsigned long long)iv->errors);
	}
	fprintf(f, "%s]\n}\n", r->niv ? "\n  " : "");
}

/* A threshold's value in JSON: latencies in us, as latency_us. */
static double json_value(enum threshold_metric m, double v)
{
	return threshold_kind(m) == TK_LATENCY ? v / 1e3 : v;
}

static void json_thresholds(FILE *f, const struct result *r)
{
	static const char *const kind_units[] = {
		[TK_LATENCY] = "us", [TK_PERCENT] = "%", [TK_COUNT] = "count"};
	const struct threshold *t;

	fprintf(f, "  \"thresholds\": [");
	for (unsigned int i = 0; i < r->o->nthresholds; i++) {
		t = &r->o->thresholds[i];
		fprintf(f, "%s\n    {\"expr\": ", i ? "," : "");
		json_str(f, t->expr);
		fprintf(f,
			", \"metric\": \"%s\", \"unit\": \"%s\", \"limit\": %.3f, \"measured\": %.3f, \"ok\": %s}",
			threshold_metric_name(t->metric),
			kind_units[threshold_kind(t->metric)],
			json_value(t->metric, t->limit),
			json_value(t->metric, r->verdict[i].measured),
			r->verdict[i].ok ? "true" : "false");
	}
	fprintf(f, "%s],\n", r->o->nthresholds ? "\n  " : "");
}

/* --expect-close: where the server was to close, and how often it did. */
static void json_closes(FILE *f, const struct result *r)
{
	fprintf(f, "  \"expect_close_bytes\": ");
	if (r->o->expect_close)
		fprintf(f, "%llu,\n", (unsigned long long)r->o->expect_close);
	else
		fprintf(f, "null,\n");
	fprintf(f, "  \"expected_closes\": %llu,\n",
		(unsigned long long)r->expected_closes);
}

void results_json(FILE *f, const struct result *r)
{
	json_config(f, r->o);
	fprintf(f, "  \"window_start_unix\": %.3f,\n", r->window_start);
	fprintf(f, "  \"seconds\": %.3f,\n  \"requests\": %llu,\n", r->seconds,
		(unsigned long long)r->requests);
	fprintf(f, "  \"bytes\": %llu,\n  \"requests_per_s\": %.1f,\n",
		(unsigned long long)r->bytes, per_s(r, (double)r->requests));
	fprintf(f, "  \"mb_per_s\": %.3f,\n", per_s(r, (double)r->bytes) / 1e6);
	if (r->o->rate > 0)
		fprintf(f, "  \"offered_per_s\": %.3f,\n", r->o->rate);
	else
		fprintf(f, "  \"offered_per_s\": null,\n");
	fprintf(f, "  \"achieved_per_s\": %.1f,\n  \"shortfall\": %s,\n",
		per_s(r, (double)r->requests),
		short_of_offer(r) ? "true" : "false");
	results_latency_json(f, r->hist);
	results_histogram_json(f, r->hist);
	json_tls(f, r);
	fprintf(f, "  \"errors\": {");
	for (int k = 0; k < ERR_MAX; k++)
		fprintf(f, "%s\"%s\": %llu", k ? ", " : "", err_names[k],
			(unsigned long long)r->err[k]);
	fprintf(f, "},\n  \"corrupted_bytes\": %llu,\n",
		(unsigned long long)r->corrupt_bytes);
	json_closes(f, r);
	fprintf(f, "  \"failed\": %s,\n",
		results_failures(r) ? "true" : "false");
	fprintf(f, "  \"cpu_us_per_request\": {\n");
	json_cpu(f, r, "client", &r->client);
	if (r->have_server) {
		fprintf(f, ",\n");
		json_cpu(f, r, "server", &r->server);
	}
	fprintf(f, "\n  },\n");
	json_thresholds(f, r);
	json_intervals(f, r);
}
