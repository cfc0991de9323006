// SPDX-License-Identifier: BSD-2-Clause
/*
 * threshold.c - --threshold: parsing "p99 < 5ms", "shortfall < 5%",
 * "loss < 1%" or "errors = 0", and measuring a finished run against them.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "threshold.h"

static const struct {
	const char *name;
	enum threshold_kind kind;
	double pct; /* the percentile, for latencies other than max */
} metrics[] = {
	[TH_P50] = {"p50", TK_LATENCY, 50},
	[TH_P90] = {"p90", TK_LATENCY, 90},
	[TH_P99] = {"p99", TK_LATENCY, 99},
	[TH_P99_9] = {"p99.9", TK_LATENCY, 99.9},
	[TH_P99_99] = {"p99.99", TK_LATENCY, 99.99},
	[TH_MAX] = {"max", TK_LATENCY, 0},
	[TH_SHORTFALL] = {"shortfall", TK_PERCENT, 0},
	[TH_LOSS] = {"loss", TK_PERCENT, 0},
	[TH_ERRORS] = {"errors", TK_COUNT, 0},
};

enum {
	NMETRICS = sizeof(metrics) / sizeof(metrics[0])
};

static const struct {
	const char *name;
	double ns;
} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};

const char *threshold_metric_name(enum threshold_metric m)
{
	return metrics[m].name;
}

enum threshold_kind threshold_kind(enum threshold_metric m)
{
	return metrics[m].kind;
}

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* The metric named by the len bytes at s; -1 if none is. */
static int find_metric(const char *s, size_t len)
{
	for (int i = 0; i < NMETRICS; i++)
		if (strlen(metrics[i].name) == len &&
		    !strncmp(s, metrics[i].name, len))
			return i;
	return -1;
}

/* Scales a latency by its unit (ns, us, ms, s) to ns; -1 if none fits. */
static int scale_latency(double *v, const char *unit)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(unit, units[i].name)) {
			*v *= units[i].ns;
			return 0;
		}
	}
	return -1;
}

/*
 * The limit after the operator: a latency with its unit, a percentage
 * with or without "%", or the count 0. Returns 0, or -1 with why.
 */
static int parse_limit(struct threshold *t, const char *s, char *why,
		       size_t len)
{
	enum threshold_kind kind = metrics[t->metric].kind;
	const char *rest;
	char unit[8];
	char *end;
	size_t n;

	t->limit = strtod(s, &end);
	if (end == s || !isfinite(t->limit)) {
		snprintf(why, len, "limit is not a number");
		return -1;
	}
	rest = skip_space(end);
	n = strlen(rest);
	while (n && isspace((unsigned char)rest[n - 1]))
		n--;
	snprintf(unit, sizeof(unit), "%.*s", (int)n, rest);
	if (kind == TK_LATENCY &&
	    (n >= sizeof(unit) || scale_latency(&t->limit, unit))) {
		snprintf(why, len, "latency needs a unit: ns, us, ms or s");
		return -1;
	}
	if (kind == TK_PERCENT && n && strcmp(unit, "%")) {
		snprintf(why, len, "%s is a percentage",
			 metrics[t->metric].name);
		return -1;
	}
	if (kind == TK_COUNT && (n || t->limit != 0)) {
		snprintf(why, len, "errors takes = 0 only");
		return -1;
	}
	if (kind != TK_COUNT && t->limit <= 0) {
		snprintf(why, len, "limit must be above 0");
		return -1;
	}
	return 0;
}

int threshold_parse(struct threshold *t, const char *expr, char *why,
		    size_t len)
{
	const char *s = skip_space(expr), *name = s;
	int m;
	char op;

	while (isalnum((unsigned char)*s) || *s == '.')
		s++;
	m = find_metric(name, (size_t)(s - name));
	if (m < 0) {
		snprintf(
			why, len,
			"unknown metric: p50, p90, p99, p99.9, p99.99, max, shortfall, loss or errors");
		return -1;
	}
	t->expr = expr;
	t->metric = (enum threshold_metric)m;
	s = skip_space(s);
	op = *s;
	if (op != '<' && op != '=') {
		snprintf(why, len, "no operator: METRIC < LIMIT or errors = 0");
		return -1;
	}
	if ((op == '=') != (t->metric == TH_ERRORS) || s[1] == '=') {
		snprintf(why, len, "%s takes %s", metrics[m].name,
			 t->metric == TH_ERRORS ? "= 0 only" : "< only");
		return -1;
	}
	return parse_limit(t, skip_space(s + 1), why, len);
}

double threshold_percentile(enum threshold_metric m)
{
	return metrics[m].pct;
}
