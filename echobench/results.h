// SPDX-License-Identifier: BSD-2-Clause
/* results.h - progress lines, the summary, JSON, CSV and SVG output. */
#ifndef ECHOBENCH_RESULTS_H
#define ECHOBENCH_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cpu.h"
#include "hist.h"
#include "loadgen.h"
#include "threshold.h"

struct bench_opts;

/*
 * One second of the run, as the progress line showed it. The warm-up is
 * an interval of its own, so every other one lies inside the window and
 * its echoes add up to the summary's.
 */
struct interval {
	double start, end; /* seconds since the load began */
	bool warmup;
	uint64_t
		echoes; /* completed in it (the window's only, after warm-up) */
	uint64_t bytes;
	double rps;
	double mbps;
	uint64_t p99; /* ns; 0 in warm-up or when no echo completed */
	uint64_t errors;
};

/* Everything the reports show; filled by main after the threads end. */
struct result {
	const struct bench_opts *o;
	struct hist *hist; /* measured latencies of all threads */
	uint64_t requests; /* measured echoes */
	uint64_t answered; /* echoes of the whole run, warm-up and drain too */
	uint64_t bytes;
	double seconds; /* measured time: the window's length */
	double window_start; /* when the window began, seconds since the epoch
			      */
	uint64_t err[ERR_MAX];
	uint64_t corrupt_bytes; /* bytes that differ in the ERR_MISMATCH echoes
				 */
	uint64_t expected_closes; /* --expect-close: closes where expected */
	/* --tls: handshakes done in the window, and over the whole run */
	uint64_t handshakes, resumed, handshakes_all, resumed_all;
	struct hist *hs_hist; /* latency of the window's handshakes */
	const char *tls_version; /* of the first handshake, or NULL */
	bool have_server;
	struct cpu_sample client; /* over the measured time */
	struct cpu_sample server;
	const struct interval *iv;
	size_t niv;
	struct verdict verdict[THRESHOLD_MAX]; /* one per o->thresholds */
	unsigned int broken; /* thresholds the run did not keep */
};

/* Prints one progress line; on a terminal it rewrites the last one. */
void results_progress(FILE *f, const struct bench_opts *o,
		      const struct interval *iv, bool tty);
void results_text(FILE *f, const struct result *r);
/* The summary's latency line, and its JSON members (for merge too). */
void results_latency_text(FILE *f, const struct hist *h);
void results_latency_json(FILE *f, const struct hist *h);
void results_histogram_json(FILE *f, const struct hist *h);
void results_json(FILE *f, const struct result *r);
/*
 * Write the percentile distribution and its plot to a stream main opened
 * before the run; main checks for write errors when it closes it.
 */
void results_csv(FILE *f, const struct result *r);
void results_svg(FILE *f, const struct result *r);

/* One curve of a latency plot, and its name in the legend. */
struct plot_series {
	const char *label;
	const struct hist *h;
};

/*
 * Latency by percentile, logarithmic latency axis, one curve per series
 * (at most 8) with a legend: for one run, or runs compared (plot, merge).
 */
void plot_svg(FILE *f, const char *title, const char *subtitle,
	      const struct plot_series *s, int n);

/*
 * One line per threshold the run broke: the threshold as given, the value
 * measured and the limit.
 */
void results_broken(FILE *f, const struct result *r);

/* Nonzero when an error of a failing kind was counted. */
uint64_t results_failures(const struct result *r);

#endif
