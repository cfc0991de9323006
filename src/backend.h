/*
 * backend.h - the interface that makes epoll and io_uring interchangeable.
 *
 * A backend runs one worker's whole loop: readiness (epoll) and completion
 * (io_uring) models differ too much to share a "watch this fd" layer, so
 * the cut is at "serve this worker's listeners until told to stop". What
 * they share lives in conn.c (framing, pending bytes, limits) and net.c.
 */
#ifndef ECHOD_BACKEND_H
#define ECHOD_BACKEND_H

#include <stddef.h>

struct worker;

struct backend_ops {
	const char *name;
	/*
	 * Returns 0 when this process can use the backend here, or -errno
	 * with a one-line reason in why ("kernel.io_uring_disabled is 2").
	 */
	int (*probe)(char *why, size_t len);
	/*
	 * Serves w's listeners until w->stop_fd becomes readable, then
	 * closes every connection it owns. Returns 0, or -errno with a
	 * reason in w->why when the worker cannot go on.
	 */
	int (*run)(struct worker *w);
};

extern const struct backend_ops backend_epoll;
#ifdef HAVE_LIBURING
extern const struct backend_ops backend_uring;
#endif

/* Every backend compiled in, best first; NULL-terminated. */
extern const struct backend_ops *const backend_table[];

/*
 * Picks the backend named by --backend ("auto" takes the first whose
 * probe succeeds). Returns it, or NULL with the reason in why. *note
 * gets a line saying why auto chose as it did, or "" when there is none.
 */
const struct backend_ops *backend_select(const char *name, char *why,
					 size_t len, char *note,
					 size_t notelen);

#endif
