// SPDX-License-Identifier: BSD-2-Clause
/*
 * hlog.h - HdrHistogram interoperability: histograms in its compressed V2
 * encoding (base64), and its interval log format, written and read.
 */
#ifndef ECHOBENCH_HLOG_H
#define ECHOBENCH_HLOG_H

#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/*
 * h as a compressed V2 histogram of nanoseconds (3 significant digits,
 * 1 ns to 1 hour), base64, in a string the caller frees; NULL if out of
 * memory. Each of our buckets is given at its midpoint, which is within
 * 0.4 % of every value in it (hist.h).
 */
char *hlog_encode(const struct hist *h);

/*
 * Adds a base64 compressed V2 histogram (from echobench or any other
 * HdrHistogram writer, values taken as nanoseconds) into h; 0 or -EINVAL
 * when it is not one, -ENOMEM.
 */
int hlog_decode(const char *b64, struct hist *h);

/* The interval log's header, for a window that began at unix_start. */
void hlog_header(FILE *f, double unix_start);

/*
 * One interval line: start (seconds since the header's StartTime), length,
 * and its histogram; 0 or -ENOMEM.
 */
int hlog_interval(FILE *f, double start, double len, const struct hist *h);

/* The time an interval log covers, in seconds since the epoch (0: none). */
struct hlog_span {
	double start; /* StartTime (or BaseTime) */
	double first, end; /* the first interval's start, the last's end */
};

/*
 * Adds every interval of an interval log into h and returns how many there
 * were, or -EINVAL (a line that is not a histogram) or -ENOMEM.
 */
int hlog_read(FILE *f, struct hist *h, struct hlog_span *span);

#endif
