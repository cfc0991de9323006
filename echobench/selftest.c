// SPDX-License-Identifier: BSD-2-Clause
/*
 * selftest.c - the hidden --selftest-histogram FILE: records the numbers in
 * FILE (nanoseconds, one per line) and prints the percentiles the reports
 * use, so that tests/echobench.t can compare them with a sorted list.
 */
#include <err.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "hist.h"
#include "selftest.h"

int selftest_histogram(const char *path)
{
	static const double p[] = {0,  1,  10,	 25,	50, 75,
				   90, 99, 99.9, 99.99, 100};
	struct hist *h = malloc(sizeof(*h));
	unsigned long long v;
	FILE *f = fopen(path, "re");

	if (!f)
		err(1, "%s", path);
	if (!h)
		err(1, "malloc");
	hist_init(h);
	while (fscanf(f, "%llu", &v) == 1)
		hist_record(h, v);
	fclose(f);
	printf("count %" PRIu64 "\n", h->total);
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		printf("p%g %" PRIu64 "\n", p[i], hist_percentile(h, p[i]));
	free(h);
	return 0;
}
