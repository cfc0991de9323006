// SPDX-License-Identifier: BSD-2-Clause
/*
 * pace.h - open-loop pacing (--rate), shared by the TCP and UDP loops: when
 * each connection's next message is due, and the time its latency is
 * measured from.
 */
#ifndef ECHOBENCH_PACE_H
#define ECHOBENCH_PACE_H

#include <stdbool.h>
#include <stdint.h>

struct lg_thread;

/* One connection's schedule; lives in the loop's connection struct. */
struct pace {
	uint64_t due; /* open loop: when the next message is due (ns) */
};

/*
 * Places connection id's first message at its phase of the first period.
 * Call after the start barrier, when the timeline is set.
 */
void pace_init(struct pace *p, const struct lg_thread *th, uint32_t id);

/*
 * Whether a connection may start its next message at now, -n quota
 * permitting. On true, *t0 is the time its latency runs from (now in
 * closed loop, the due time in open loop) and the schedule has moved one
 * period on. On false in open loop before the due time, *wake is lowered
 * to that time so that the caller's loop wakes for it.
 */
bool pace_next(struct pace *p, struct lg_thread *th, uint64_t now, uint64_t *t0,
	       uint64_t *wake);

#endif
