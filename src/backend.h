// SPDX-License-Identifier: BSD-2-Clause
/*
 * backend.h - the interface that makes epoll and io_uring interchangeable.
 *
 * A backend runs one worker's whole loop: readiness (epoll) and completion
 * (io_uring) models differ too much to share a "watch this fd" layer, so
 * the cut is at "serve this worker's listeners until told to stop". What
 * they share is the loop core (core.h): connections from admission to
 * close, deadlines, the queue of bytes to send back (outq.h), and UDP.
 */
#ifndef ECHOD_BACKEND_H
#define ECHOD_BACKEND_H

#include <stddef.h>

struct options;
struct worker;

struct backend_ops {
	const char *name;
	/*
	 * Why auto prefers this one, for --list-backends; NULL when it is
	 * only the fallback. The order of backend_table is that preference.
	 */
	const char *preferred_for;
	/*
	 * Returns 0 when this process can use the backend here, or -errno
	 * with a one-line reason in why ("kernel.io_uring_disabled is 2").
	 * NULL: always usable. Called through backend_probe.
	 */
	int (*probe)(char *why, size_t len);
	/* The size of the loop state the worker allocates, zeroed. */
	size_t loop_size;
	/*
	 * Sets up the loop for worker w, run with options o; returns 0 or
	 * -errno. w is for core_init alone: a backend sees the worker
	 * through its core (core.h) and never opens struct worker.
	 */
	int (*init)(void *loop, struct worker *w, const struct options *o);
	/*
	 * Serves the core's listeners until core_control says stop, then
	 * closes every connection it owns. Returns 0, or -errno with a
	 * reason recorded by core_fail when the worker cannot go on.
	 */
	int (*serve)(void *loop);
	/* Frees what init set up, whether it succeeded or not. */
	void (*destroy)(void *loop);
};

extern const struct backend_ops backend_epoll;
/* Without liburing, a stand-in whose probe says so. */
extern const struct backend_ops backend_uring;

/* Every backend compiled in, best first; NULL-terminated. */
extern const struct backend_ops *const backend_table[];

/* b's probe, or 0 when it has none. */
int backend_probe(const struct backend_ops *b, char *why, size_t len);

/*
 * Picks the backend named by --backend ("auto" takes the first whose
 * probe succeeds). Returns it, or NULL with the reason in why. *note
 * gets a line saying why auto chose as it did, or "" when there is none.
 */
const struct backend_ops *backend_select(const char *name, char *why,
					 size_t len, char *note,
					 size_t notelen);

#endif
