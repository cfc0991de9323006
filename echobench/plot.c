// SPDX-License-Identifier: BSD-2-Clause
/*
 * plot.c - the latency distribution as CSV (HdrHistogram's percentile
 * table) and as an SVG plot of latency by percentile, readable in a browser.
 */
#include <math.h>
#include <stdio.h>

#include "opts.h"
#include "results.h"

void results_csv(FILE *f, const struct result *r)
{
	const struct hist *h = r->hist;
	uint64_t seen = 0;
	double q;

	fprintf(f, "latency_us,percentile,count,inverse_1_minus_p\n");
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (!h->count[i])
			continue;
		seen += h->count[i];
		q = (double)seen / (double)h->total;
		fprintf(f, "%.3f,%.6f,%llu,",
			(double)hist_bucket_value(i) / 1e3, 100 * q,
			(unsigned long long)seen);
		if (seen == h->total)
			fprintf(f, "inf\n");
		else
			fprintf(f, "%.3f\n", 1 / (1 - q));
	}
}

/* The drawing area inside the SVG, in pixels. */
enum {
	W = 900,
	H = 540,
	LEFT = 80,
	RIGHT = 50,
	TOP = 70,
	BOTTOM = 60,
	PW = W - LEFT - RIGHT,
	PH = H - TOP - BOTTOM,
	MAX_SERIES = 8,
};

static const char *const colors[MAX_SERIES] = {"#c03", "#06c", "#090", "#c60",
					       "#639", "#099", "#960", "#333"};

/*
 * Where a latency lies: the y axis is logarithmic, a decade of microseconds
 * per step, so that p50 and p99.9 stay apart however large the maximum.
 */
struct yaxis {
	double lo, hi; /* log10 of microseconds at the bottom and top */
};

static double ypos(const struct yaxis *y, double us)
{
	double v = log10(fmax(us, 1e-3));

	return TOP + PH - PH * (v - y->lo) / (y->hi - y->lo);
}

/* A latency label for a gridline: "1 us", "10 ms", "1 s". */
static void us_label(char *buf, size_t len, double us)
{
	if (us < 1000)
		snprintf(buf, len, "%g us", us);
	else if (us < 1e6)
		snprintf(buf, len, "%g ms", us / 1e3);
	else
		snprintf(buf, len, "%g s", us / 1e6);
}

static void xaxis(FILE *f, double xmax)
{
	static const char *const xl[] = {
		"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
	double x;

	for (int i = 0; i <= (int)xmax && i < 7; i++) {
		x = LEFT + PW * i / xmax;
		fprintf(f,
			"<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n",
			x, TOP, x, TOP + PH);
		/* The last label ends at its line: nothing past the edge. */
		fprintf(f, "<text x='%.1f' y='%d' text-anchor='%s'>%s</text>\n",
			x, TOP + PH + 18, i == (int)xmax ? "end" : "middle",
			xl[i]);
	}
	fprintf(f,
		"<text x='%d' y='%d' text-anchor='middle'>percentile</text>\n",
		LEFT + PW / 2, H - 14);
}

static void axes(FILE *f, double xmax, const struct yaxis *y)
{
	char label[32];
	double yy;

	fprintf(f,
		"<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#888'/>\n",
		LEFT, TOP, PW, PH);
	xaxis(f, xmax);
	for (int d = (int)y->lo; d <= (int)y->hi; d++) {
		for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
			yy = ypos(y, m * pow(10, d));
			if (yy < TOP - 0.5 || (m > 1 && d == (int)y->hi))
				continue;
			fprintf(f,
				"<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='%s'/>\n",
				LEFT, yy, LEFT + PW, yy,
				m == 1 ? "#ccc" : "#eee");
			us_label(label, sizeof(label), m * pow(10, d));
			fprintf(f,
				"<text x='%d' y='%.1f' text-anchor='end'%s>%s</text>\n",
				LEFT - 6, yy + 4,
				m == 1 ? "" : " fill='#888' font-size='10'",
				label);
		}
	}
	fprintf(f,
		"<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>latency (log scale)</text>\n",
		TOP + PH / 2, TOP + PH / 2);
}

/* A step curve: each bucket holds from the previous percentile to its own. */
static void curve(FILE *f, const struct hist *h, double xmax,
		  const struct yaxis *ya, const char *color)
{
	uint64_t seen = 0;
	double x = 0, y, q;

	fprintf(f,
		"<polyline fill='none' stroke='%s' stroke-width='2' points='",
		color);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (!h->count[i])
			continue;
		y = ypos(ya, (double)hist_bucket_value(i) / 1e3);
		fprintf(f, "%.1f,%.1f ", LEFT + PW * x / xmax, y);
		seen += h->count[i];
		q = (double)seen / (double)h->total;
		x = seen == h->total ? xmax : fmin(xmax, -log10(1 - q));
		fprintf(f, "%.1f,%.1f ", LEFT + PW * x / xmax, y);
	}
	fprintf(f, "'/>\n");
}

/* Text with the characters XML reserves escaped. */
static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '\'')
			fputs("&apos;", f);
		else
			fputc(*s, f);
	}
}

static void legend(FILE *f, const struct plot_series *s, int n)
{
	char a[24], b[24];

	for (int i = 0; i < n; i++) {
		fprintf(f,
			"<g class='legend'><line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='3'/>",
			LEFT + 12, TOP + 16 + 18 * i, LEFT + 36,
			TOP + 16 + 18 * i, colors[i]);
		fprintf(f, "<text x='%d' y='%d'>", LEFT + 42,
			TOP + 20 + 18 * i);
		xml_text(f, s[i].label);
		us_label(a, sizeof(a),
			 round((double)hist_percentile(s[i].h, 50) / 1e2) / 10);
		us_label(b, sizeof(b),
			 round((double)hist_percentile(s[i].h, 99) / 1e2) / 10);
		fprintf(f, " (p50 %s, p99 %s)</text></g>\n", a, b);
	}
}

/* Axes that hold every series: decades of microseconds, percentiles. */
static void bounds(const struct plot_series *s, int n, double *xmax,
		   struct yaxis *y)
{
	uint64_t total = 0, lo = UINT64_MAX, hi = 1;

	for (int i = 0; i < n; i++) {
		if (!s[i].h->total)
			continue;
		total = s[i].h->total > total ? s[i].h->total : total;
		lo = s[i].h->min < lo ? s[i].h->min : lo;
		hi = s[i].h->max > hi ? s[i].h->max : hi;
	}
	/* Enough decades to show the rarest percentile measured, up to 6. */
	*xmax = total > 1 ? ceil(log10((double)total)) : 1;
	*xmax = fmax(2, fmin(6, *xmax));
	y->lo = lo == UINT64_MAX ? 0 : floor(log10(fmax(1e-3, lo / 1e3)));
	y->hi = ceil(log10(fmax(1e-3, hi / 1e3)));
	if (y->hi <= y->lo)
		y->hi = y->lo + 1;
}

void plot_svg(FILE *f, const char *title, const char *subtitle,
	      const struct plot_series *s, int n)
{
	struct yaxis y;
	double xmax;

	n = n > MAX_SERIES ? MAX_SERIES : n;
	bounds(s, n, &xmax, &y);
	fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n");
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif' font-size='12'>\n",
		W, H, W, H);
	fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
	fprintf(f, "<text x='%d' y='24' font-size='15'>", LEFT);
	xml_text(f, title);
	fprintf(f, "</text>\n<text x='%d' y='46' fill='#444'>", LEFT);
	xml_text(f, subtitle);
	fprintf(f, "</text>\n");
	axes(f, xmax, &y);
	for (int i = 0; i < n; i++)
		if (s[i].h->total)
			curve(f, s[i].h, xmax, &y, colors[i]);
	legend(f, s, n);
	fprintf(f, "</svg>\n");
}

void results_svg(FILE *f, const struct result *r)
{
	const struct bench_opts *o = r->o;
	struct plot_series s = {.label = o->target, .h = r->hist};
	char title[200], sub[200];
	int k;

	snprintf(title, sizeof(title), "echobench %s %s %s",
		 o->udp ? "udp" : "tcp", opts_mode_name(o->mode), o->target);
	k = snprintf(sub, sizeof(sub), "%u conn, %zu B, depth %u, ",
		     o->connections, o->size, o->depth);
	if (o->rate > 0)
		k += snprintf(sub + k, sizeof(sub) - (size_t)k,
			      "%.0f msg/s offered", o->rate);
	else
		k += snprintf(sub + k, sizeof(sub) - (size_t)k, "closed loop");
	snprintf(sub + k, sizeof(sub) - (size_t)k, ", %llu echoes in %.2f s",
		 (unsigned long long)r->requests, r->seconds);
	plot_svg(f, title, sub, &s, 1);
}
