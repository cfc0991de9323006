// SPDX-License-Identifier: BSD-2-Clause
/*
 * wakeup.h - a worker's one timer for times that differ per connection
 * (a held echo's, a paced send's): a binary min-heap in which each
 * sleeper has at most one entry, found through the position it keeps,
 * so moving its time is O(log n) and the heap never holds more entries
 * than sleepers.
 */
#ifndef ECHOD_WAKEUP_H
#define ECHOD_WAKEUP_H

#include <stdint.h>

#define WAKEUP_NONE UINT32_MAX /* a sleeper's position when not in it */

struct wakeup {
	uint64_t at;
	uint32_t *pos; /* the sleeper's own record of where it is */
	void *who;
};

struct wakeups {
	struct wakeup *e;
	uint32_t n, cap;
};

/*
 * Sets who's time to at (its position in *pos, WAKEUP_NONE when it has
 * none), or takes it out when at is 0. Returns 0 or -ENOMEM.
 */
int wakeup_set(struct wakeups *h, uint32_t *pos, void *who, uint64_t at);

/* The earliest time, or 0 when nobody sleeps. */
static inline uint64_t wakeup_next(const struct wakeups *h)
{
	return h->n ? h->e[0].at : 0;
}

/* Takes out and returns the first sleeper due at now, or NULL. */
void *wakeup_pop(struct wakeups *h, uint64_t now);

void wakeup_destroy(struct wakeups *h);

#endif
