// SPDX-License-Identifier: BSD-2-Clause
/*
 * deadline.h - a worker's open connections in the order their deadlines
 * come: idle ones by last activity (--idle-timeout), lingering ones
 * (after our FIN, --linger) by when they started to linger. Each open
 * connection is on exactly one list, so both lists together are also
 * the worker's set of open connections.
 */
#ifndef ECHOD_DEADLINE_H
#define ECHOD_DEADLINE_H

#include <stdint.h>

#include "close_reason.h"

struct conn;

struct conn_list {
	struct conn *head, *tail;
	unsigned int count;
};

struct deadlines {
	struct conn_list idle;
	struct conn_list linger;
	uint64_t idle_ms, linger_ms; /* 0: no idle timeout */
};

/* Puts a new connection on the idle list, active as of now_ms. */
void deadline_add(struct deadlines *d, struct conn *c, uint64_t now_ms);

/* Takes c off whichever list it is on. */
void deadline_remove(struct deadlines *d, struct conn *c);

/* Records activity on c (O(1), at most once a ms). */
void deadline_touch(struct deadlines *d, struct conn *c, uint64_t now_ms);

/* Moves c to the linger list, its deadline running from now_ms. */
void deadline_linger(struct deadlines *d, struct conn *c, uint64_t now_ms);

/*
 * The next connection whose time ran out by now_ms, with the reason in
 * *why, or NULL. The caller closes it (taking it off its list) before
 * asking again.
 */
struct conn *deadline_expired(const struct deadlines *d, uint64_t now_ms,
			      enum close_reason *why);

/* When the next deadline comes; UINT64_MAX if never. */
uint64_t deadline_next(const struct deadlines *d);

/* Any open connection (for closing them all), or NULL. */
static inline struct conn *deadline_any(const struct deadlines *d)
{
	return d->idle.head ? d->idle.head : d->linger.head;
}

#endif
