// SPDX-License-Identifier: BSD-2-Clause
/* threshold.h - --threshold: limits a run must keep, checked at its end. */
#ifndef ECHOBENCH_THRESHOLD_H
#define ECHOBENCH_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>

struct result;

enum {
	THRESHOLD_MAX = 16, /* --threshold options a run may carry */
};

enum threshold_metric {
	TH_P50,
	TH_P90,
	TH_P99,
	TH_P99_9,
	TH_P99_99,
	TH_MAX,
	TH_SHORTFALL, /* open loop: percent of the offered rate not reached */
	TH_LOSS, /* UDP: percent of datagrams lost */
	TH_ERRORS, /* errors of every kind, as the summary's errors line */
};

/* How a metric's values are given, measured and shown. */
enum threshold_kind {
	TK_LATENCY, /* ns */
	TK_PERCENT,
	TK_COUNT,
};

/* One --threshold; expr points into argv. */
struct threshold {
	const char *expr;
	enum threshold_metric metric;
	double limit; /* the measured value must be below it (errors: = 0) */
};

/* A threshold's outcome, as echobench.c judges it at the end of a run. */
struct verdict {
	double measured; /* in the metric's kind, like limit */
	bool ok;
};

/*
 * Parses "METRIC < LIMIT" or "errors = 0", spaces allowed around the
 * operator, into t. Returns 0, or -1 with why naming what is wrong.
 */
int threshold_parse(struct threshold *t, const char *expr, char *why,
		    size_t len);

const char *threshold_metric_name(enum threshold_metric m);
enum threshold_kind threshold_kind(enum threshold_metric m);

/* The percentile a latency metric names (50 for p50); 0 for the others. */
double threshold_percentile(enum threshold_metric m);

#endif
