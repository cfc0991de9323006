// SPDX-License-Identifier: BSD-2-Clause
/*
 * runs.c - `echobench merge` and `echobench plot`: runs read back from
 * their --json documents or --hlog interval logs. Merge adds the runs'
 * histograms (never averages percentiles), so that load spread over
 * several hosts gives one result; plot draws several runs in one picture.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "results.h"
#include "runs.h"

/* One run as read back. */
struct run {
	const char *path;
	char label[96];
	struct hist *h;
	uint64_t requests;
	double start, end; /* its window, seconds since the epoch; 0 unknown */
	bool failed;
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	if (m) {
		char chunk[65536];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, m);
		fclose(m);
	}
	fclose(f);
	return buf;
}

/* A number member of a JSON document we wrote ourselves; def if absent. */
static double json_num(const char *doc, const char *key, double def)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\n  \"%s\": ", key);
	p = strstr(doc, pat);
	return p ? strtod(p + strlen(pat), NULL) : def;
}

static int load_json(struct run *r, char *doc)
{
	char *p = strstr(doc, "\n  \"histogram\": \""), *q;
	double s;

	if (!p)
		return -EINVAL;
	p += strlen("\n  \"histogram\": \"");
	q = strchr(p, '"');
	if (!q)
		return -EINVAL;
	*q = 0;
	r->requests = (uint64_t)json_num(doc, "requests", 0);
	r->start = json_num(doc, "window_start_unix", 0);
	s = json_num(doc, "seconds", 0);
	r->end = r->start ? r->start + s : s;
	r->failed = strstr(q + 1, "\n  \"failed\": true") != NULL;
	return hlog_decode(p, r->h);
}

static int load_hlog(struct run *r, char *doc)
{
	struct hlog_span span;
	FILE *f = fmemopen(doc, strlen(doc), "r");
	int n;

	if (!f)
		return -errno;
	n = hlog_read(f, r->h, &span);
	fclose(f);
	if (n < 0)
		return n;
	r->requests = r->h->total;
	r->start = span.first;
	r->end = span.end;
	return 0;
}

/* Reads a run; ends the program with one line if it cannot. */
static void load_run(struct run *r, const char *path)
{
	char *doc = slurp(path), *p;
	int e;

	r->path = path;
	r->h = malloc(sizeof(*r->h));
	if (!r->h)
		err(1, "malloc");
	hist_init(r->h);
	if (!doc)
		err(1, "%s", path);
	for (p = doc; *p == ' ' || *p == '\n' || *p == '\t'; p++)
		;
	e = *p == '{' ? load_json(r, p) : load_hlog(r, p);
	free(doc);
	if (e)
		errx(1, "%s: %s", path,
		     e == -EINVAL ? "not echobench JSON or an HdrHistogram log"
				  : strerror(-e));
	snprintf(r->label, sizeof(r->label), "%s", path);
	snprintf(r->label, sizeof(r->label), "%s", basename(r->label));
}

static const char merge_usage[] =
	"usage: echobench merge [--json] [--svg file] RUN...\n"
	"       echobench plot --svg file [--title text] RUN...\n"
	"RUN: a file written by echobench --json or --hlog\n";

struct tool_opts {
	bool json;
	const char *svg;
	const char *title;
};

static int parse(struct tool_opts *t, int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, 'j'},
		{"svg", required_argument, NULL, 'S'},
		{"title", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	memset(t, 0, sizeof(*t));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":jh", lo, NULL)) != -1) {
		if (ch == 'j')
			t->json = true;
		else if (ch == 'S')
			t->svg = optarg;
		else if (ch == 'T')
			t->title = optarg;
		else if (ch == 'h')
			exit(printf("%s", merge_usage) < 0);
		else if (ch == ':')
			errx(2, "option %s: needs a value", argv[optind - 1]);
		else
			errx(2, "option %s: unknown", argv[optind - 1]);
	}
	if (optind >= argc)
		errx(2, "%s: no RUN files", argv[0]);
	return optind;
}

/* The runs' histograms added up, and the span of their windows. */
static void combine(const struct run *runs, int n, struct hist *sum,
		    double *seconds, uint64_t *requests)
{
	double lo = 0, hi = 0, longest = 0;
	bool known = true;

	hist_init(sum);
	*requests = 0;
	for (int i = 0; i < n; i++) {
		hist_add(sum, runs[i].h);
		*requests += runs[i].requests;
		known &= runs[i].start > 0;
		if (!i || runs[i].start < lo)
			lo = runs[i].start;
		if (!i || runs[i].end > hi)
			hi = runs[i].end;
		if (runs[i].end - runs[i].start > longest)
			longest = runs[i].end - runs[i].start;
	}
	/* Runs at the same seconds share a window; else the longest one. */
	*seconds = known ? hi - lo : longest;
}

static bool runs_failed(const struct run *runs, int n)
{
	for (int i = 0; i < n; i++)
		if (runs[i].failed)
			return true;
	return false;
}

static void merge_text(const struct run *runs, int n, const struct hist *sum,
		       double secs, uint64_t requests)
{
	printf("echobench merge: %d runs\n", n);
	for (int i = 0; i < n; i++)
		printf("  run        %s: %llu echoes, p99 %.1f us\n",
		       runs[i].label, (unsigned long long)runs[i].requests,
		       (double)hist_percentile(runs[i].h, 99) / 1e3);
	printf("  time       %.2f s, from the first window's start to the last one's end\n",
	       secs);
	printf("  echoes     %llu, %.1f echo/s\n", (unsigned long long)requests,
	       secs > 0 ? (double)requests / secs : 0);
	results_latency_text(stdout, sum);
}

static void merge_json(const struct run *runs, int n, const struct hist *sum,
		       double secs, uint64_t requests)
{
	printf("{\n  \"tool\": \"echobench merge\",\n  \"runs\": [");
	for (int i = 0; i < n; i++)
		printf("%s\n    {\"file\": \"%s\", \"requests\": %llu, \"p99_us\": %.3f, \"failed\": %s}",
		       i ? "," : "", runs[i].label,
		       (unsigned long long)runs[i].requests,
		       (double)hist_percentile(runs[i].h, 99) / 1e3,
		       runs[i].failed ? "true" : "false");
	printf("\n  ],\n  \"seconds\": %.3f,\n  \"requests\": %llu,\n", secs,
	       (unsigned long long)requests);
	printf("  \"requests_per_s\": %.1f,\n",
	       secs > 0 ? (double)requests / secs : 0);
	results_latency_json(stdout, sum);
	results_histogram_json(stdout, sum);
	printf("  \"failed\": %s\n}\n",
	       runs_failed(runs, n) ? "true" : "false");
}

/* Draws the series to path; exits with one line if it cannot. */
static void write_svg(const char *path, const char *title, const char *sub,
		      const struct plot_series *s, int n)
{
	FILE *f = fopen(path, "we");

	if (!f)
		err(1, "%s", path);
	plot_svg(f, title, sub, s, n);
	if (ferror(f) | fclose(f))
		errx(1, "%s: write failed", path);
}

static struct run *load_all(int argc, char **argv, int first)
{
	struct run *runs = calloc((size_t)(argc - first), sizeof(*runs));

	if (!runs)
		err(1, "malloc");
	for (int i = first; i < argc; i++)
		load_run(&runs[i - first], argv[i]);
	return runs;
}

int merge_main(int argc, char **argv)
{
	struct tool_opts t;
	struct run *runs;
	struct hist sum;
	struct plot_series s[2];
	char sub[64];
	double secs;
	uint64_t requests;
	int first = parse(&t, argc, argv), n = argc - first, status;

	runs = load_all(argc, argv, first);
	/* A run that failed verification fails the merged result too. */
	status = runs_failed(runs, n) ? 1 : 0;
	combine(runs, n, &sum, &secs, &requests);
	if (t.json)
		merge_json(runs, n, &sum, secs, requests);
	else
		merge_text(runs, n, &sum, secs, requests);
	if (t.svg) {
		s[0] = (struct plot_series){"merged", &sum};
		snprintf(sub, sizeof(sub), "%d runs, %llu echoes", n,
			 (unsigned long long)requests);
		write_svg(t.svg, t.title ? t.title : "echobench merge", sub, s,
			  1);
	}
	for (int i = 0; i < n; i++)
		free(runs[i].h);
	free(runs);
	return status;
}

int plot_main(int argc, char **argv)
{
	struct tool_opts t;
	struct run *runs;
	struct plot_series *s;
	int first = parse(&t, argc, argv), n = argc - first;

	if (!t.svg)
		errx(2, "plot: --svg FILE is needed");
	if (n > 8)
		errx(2, "plot: at most 8 runs in one picture");
	runs = load_all(argc, argv, first);
	s = calloc((size_t)n, sizeof(*s));
	if (!s)
		err(1, "malloc");
	for (int i = 0; i < n; i++)
		s[i] = (struct plot_series){runs[i].label, runs[i].h};
	write_svg(t.svg, t.title ? t.title : "echobench: latency by percentile",
		  "one curve per run", s, n);
	for (int i = 0; i < n; i++)
		free(runs[i].h);
	free(runs);
	free(s);
	return 0;
}
