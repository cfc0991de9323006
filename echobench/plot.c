/*
 * plot.c - the latency distribution as CSV (HdrHistogram's percentile
 * table) and as an SVG plot of latency by percentile, readable in a browser.
 */
#include <math.h>
#include <stdio.h>

#include "options.h"
#include "report.h"

void report_csv(FILE *f, const struct result *r)
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
	W = 800,
	H = 480,
	LEFT = 80,
	RIGHT = 20,
	TOP = 50,
	BOTTOM = 50,
	PW = W - LEFT - RIGHT,
	PH = H - TOP - BOTTOM,
};

/* The smallest 1, 2 or 5 times a power of ten at or above v. */
static double nice(double v)
{
	double p = pow(10, floor(log10(v)));

	if (v <= p)
		return p;
	if (v <= 2 * p)
		return 2 * p;
	if (v <= 5 * p)
		return 5 * p;
	return 10 * p;
}

static void axes(FILE *f, double xmax, double ymax)
{
	static const char *const xl[] = {
		"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
	double x, y;

	fprintf(f,
		"<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#888'/>\n",
		LEFT, TOP, PW, PH);
	for (int i = 0; i <= (int)xmax && i < 7; i++) {
		x = LEFT + PW * i / xmax;
		fprintf(f,
			"<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n",
			x, TOP, x, TOP + PH);
		fprintf(f,
			"<text x='%.1f' y='%d' text-anchor='middle'>%s</text>\n",
			x, TOP + PH + 18, xl[i]);
	}
	for (int i = 0; i <= 5; i++) {
		y = TOP + PH - PH * i / 5.0;
		fprintf(f,
			"<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n",
			LEFT, y, LEFT + PW, y);
		fprintf(f,
			"<text x='%d' y='%.1f' text-anchor='end'>%g</text>\n",
			LEFT - 6, y + 4, ymax * i / 5);
	}
	fprintf(f,
		"<text x='%d' y='%d' text-anchor='middle'>percentile</text>\n",
		LEFT + PW / 2, H - 10);
	fprintf(f,
		"<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>latency (us)</text>\n",
		TOP + PH / 2, TOP + PH / 2);
}

static void title(FILE *f, const struct result *r)
{
	const struct bench_opts *o = r->o;

	fprintf(f,
		"<text x='%d' y='24' font-size='15'>echobench %s %s %s: %u conn, %zu B, depth %u, ",
		LEFT, o->udp ? "udp" : "tcp", opts_mode_name(o->mode),
		o->target, o->connections, o->size, o->depth);
	if (o->rate > 0)
		fprintf(f, "%.0f msg/s offered", o->rate);
	else
		fprintf(f, "closed loop");
	fprintf(f, ", %llu echoes</text>\n", (unsigned long long)r->requests);
}

/* A step curve: each bucket holds from the previous percentile to its own. */
static void curve(FILE *f, const struct hist *h, double xmax, double ymax)
{
	uint64_t seen = 0;
	double x = 0, y, q;

	fprintf(f,
		"<polyline fill='none' stroke='#c03' stroke-width='2' points='");
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (!h->count[i])
			continue;
		y = TOP + PH - PH * (double)hist_bucket_value(i) / 1e3 / ymax;
		fprintf(f, "%.1f,%.1f ", LEFT + PW * x / xmax, y);
		seen += h->count[i];
		q = (double)seen / (double)h->total;
		x = seen == h->total ? xmax : fmin(xmax, -log10(1 - q));
		fprintf(f, "%.1f,%.1f ", LEFT + PW * x / xmax, y);
	}
	fprintf(f, "'/>\n");
}

void report_svg(FILE *f, const struct result *r)
{
	const struct hist *h = r->hist;
	double xmax, ymax;

	/* Enough decades to show the rarest percentile measured, up to 6. */
	xmax = h->total > 1 ? ceil(log10((double)h->total)) : 1;
	xmax = fmax(2, fmin(6, xmax));
	ymax = nice(h->total ? fmax(1e-3, (double)h->max / 1e3) : 1);
	fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n");
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif' font-size='12'>\n",
		W, H, W, H);
	fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
	title(f, r);
	axes(f, xmax, ymax);
	if (h->total)
		curve(f, h, xmax, ymax);
	fprintf(f, "</svg>\n");
}
