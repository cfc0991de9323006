// SPDX-License-Identifier: BSD-2-Clause
/*
 * pace.c - open-loop pacing: every connection sends one message per
 * period (connections / --rate), whether or not the server keeps up.
 */
#include "loadgen.h"
#include "opts.h"
#include "pace.h"

void pace_init(struct pace *p, const struct lg_thread *th, uint32_t id)
{
	const struct bench_opts *o = th->lg->o;

	/* Closed loop has no schedule (and rate 0 would divide by zero). */
	if (o->rate <= 0)
		return;
	/* Spread the connections' phases evenly over one period. */
	p->due = th->lg->start + (uint64_t)((double)id * 1e9 / o->rate);
}

bool pace_next(struct pace *p, struct lg_thread *th, uint64_t now, uint64_t *t0,
	       uint64_t *wake)
{
	if (th->lg->o->rate <= 0) {
		*t0 = now;
		return lg_take(th, now);
	}
	if (p->due > now) {
		if (p->due < *wake)
			*wake = p->due;
		return false;
	}
	/*
	 * Latency runs from the due time, not from when the message could
	 * be sent: a stalled server cannot hide its stall behind the
	 * messages it kept us from sending (coordinated omission).
	 */
	if (!lg_take(th, p->due))
		return false;
	*t0 = p->due;
	p->due += th->lg->period;
	return true;
}
