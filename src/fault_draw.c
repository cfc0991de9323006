// SPDX-License-Identifier: BSD-2-Clause
/* fault_draw.c - the clock and latency's distributions (fault_draw.h). */
#include <math.h>
#include <time.h>

#include "fault_draw.h"

uint64_t fault_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t fault_draw_delay(uint64_t *rng, uint64_t delay_ns, uint64_t jitter_ns,
			  enum fault_dist dist)
{
	double d = (double)delay_ns, j = (double)jitter_ns;
	const double most = 3600e9;

	if (j > 0) {
		switch (dist) {
		case FAULT_DIST_UNIFORM:
			d += (2.0 * fault_unit(rng) - 1.0) * j;
			break;
		case FAULT_DIST_NORMAL:
			d += j * sqrt(-2.0 * log(fault_unit(rng))) *
			     cos(2.0 * M_PI * fault_unit(rng));
			break;
		case FAULT_DIST_PARETO:
			d += j * (1.0 / sqrt(fault_unit(rng)) - 1.0);
			break;
		}
	}
	if (d < 0)
		return 0;
	return d > most ? (uint64_t)most : (uint64_t)d;
}
