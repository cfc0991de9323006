// SPDX-License-Identifier: BSD-2-Clause
/*
 * worker.h - a worker thread: its own listening sockets (one per address,
 * joined to the port's SO_REUSEPORT group), its own loop run by a backend
 * over the loop core (core.h), its own counters. Nothing but the
 * connection count is shared.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "access.h"
#include "budget.h"
#include "close_reason.h"
#include "options.h"
#include "udp.h"

struct backend_ops;
struct fault_registry;
struct tls_server;
struct report_row;

/* Connection lifetimes: bucket i counts those up to its bound. */
#define WORKER_LIFETIME_BOUNDS_MS                            \
	{                                                    \
		10, 100, 1000, 10000, 60000, 600000, 3600000 \
	}

enum {
	WORKER_NLIFETIMES = 8, /* the bounds above and one for longer */
};

/*
 * Counted by the worker's core (counter.h), the only writer; read live
 * by main's table and the metrics thread, and by main after the join.
 * bytes and messages grow as they are echoed (core_settle), open
 * connections' included.
 */
struct worker_stats {
	_Atomic uint64_t accepted;
	_Atomic uint64_t refused_by[REFUSE_NREASONS]; /* close_reason.h */
	_Atomic uint64_t closed;
	_Atomic uint64_t bytes_in;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t messages;
	_Atomic uint64_t pauses; /* reading stopped at --max-pending */
	_Atomic uint64_t mem_waits; /* reading stopped at --memory */
	_Atomic uint64_t closed_by[CLOSE_NREASONS]; /* close_reason.h */
	_Atomic uint64_t proxy[PROXY_NOUTCOMES]; /* close_reason.h */
	_Atomic uint64_t tls[TLS_NOUTCOMES]; /* close_reason.h */
	_Atomic uint64_t lifetimes[WORKER_NLIFETIMES];
	_Atomic uint64_t lifetime_ms; /* the sum over closed connections */
};

/* Every refusal s counted, whatever its reason. */
static inline uint64_t worker_refused(const struct worker_stats *s)
{
	uint64_t n = 0;

	for (int r = 0; r < REFUSE_NREASONS; r++)
		n += atomic_load_explicit(&s->refused_by[r],
					  memory_order_relaxed);
	return n;
}

/*
 * A worker's answer to WORKER_REPORT: the rows of its open connections,
 * handed over under lock (report.c asks, the worker answers).
 */
struct worker_reply {
	pthread_mutex_t lock;
	pthread_cond_t done;
	uint64_t asked, answered; /* request numbers */
	struct report_row *rows; /* malloc'd by the worker; taker frees */
	size_t nrows;
};

/*
 * One-connection mode (--inetd, systemd's Accept=yes): one worker serves
 * the connection echod was given, or inetd's datagram socket, and main
 * ends echod when that is over. All of the mode is here.
 */
struct worker_one {
	bool on; /* this mode: one worker, and the end when served */
	int fd; /* the given connection, taken by the worker's core; -1 */
	atomic_bool over; /* the given connection closed (or was refused) */
	_Atomic uint64_t last_datagram_ms; /* core_clock's time, for UDP */
};

/* Process-wide state every worker sees; owned by main(). */
struct worker_shared {
	atomic_uint conns; /* open connections, for --max-conns */
	struct budget memory; /* --memory, over every worker's data */
	unsigned int fd_budget; /* the most the descriptor limit allows */
	int fail_fd; /* eventfd a failing worker writes to wake main() */
	pthread_barrier_t started; /* every worker's set-up, and main, meet */
	struct access_sources sources; /* for --max-per-source */
	struct tls_server *tls; /* --tls-port (tls.h), or NULL */
	/* --fault, --control (fault.h); NULL when neither: no fault path. */
	struct fault_registry *faults;
	struct worker_one one;
	atomic_int serving; /* workers in their backend's serve: /readyz */
	atomic_bool draining; /* SIGTERM's grace: not ready for new clients */
};

/* What main asks of a worker (worker_ask), as bits. */
enum worker_request {
	WORKER_STOP = 1 << 0, /* close every connection and return */
	WORKER_REPORT = 1 << 1, /* fill reply with rows (report.h) */
	WORKER_DRAIN = 1 << 2, /* stop accepting; serve what is open */
};

/* Owned by main(); the thread only touches its own. */
struct worker {
	int id;
	const struct options *opts;
	const struct backend_ops *backend;
	struct worker_shared *shared;
	int listen_fds[OPTIONS_MAX_LISTEN]; /* TCP, one per address, then
					       --tls-port's */
	bool listen_tls[OPTIONS_MAX_LISTEN]; /* listen_fds[i] is TLS */
	int nlisten;
	int udp_fds[OPTIONS_MAX_BINDS]; /* UDP, one per address (-u) */
	int nudp;
	unsigned int port; /* the service port, for the UDP self-loop check */
	int ctl_fd; /* eventfd: readable when main asks something */
	atomic_uint requests; /* enum worker_request bits not yet taken */
	pthread_t thread;
	int result; /* the backend's return value */
	char why[256];
	struct worker_stats stats;
	struct udp_stats udp_stats; /* the core's UDP counters, live */
	struct worker_reply reply;
};

/*
 * Starts w's thread running its backend. Returns 0 or -errno. When the
 * backend fails, the thread writes to shared->fail_fd so main() stops
 * the others and exits 1.
 */
int worker_start(struct worker *w);

/*
 * For a backend that cannot go on: records "what: strerror" as the
 * reason worker_main logs, and returns err (a -errno).
 */
int worker_failed(struct worker *w, const char *what, int err);

/* Asks w's loop for req (enum worker_request); it answers on its thread. */
void worker_ask(struct worker *w, unsigned int req);

/*
 * For w's own loop, when ctl_fd is readable: takes and returns what was
 * asked since the last call.
 */
unsigned int worker_requests(struct worker *w);

/*
 * For w's own loop, after WORKER_REPORT: hands rows (malloc'd, n of
 * them; NULL when there was no memory) to whoever asked, who frees them.
 */
void worker_answer(struct worker *w, struct report_row *rows, size_t n);

/* Asks w to stop (it closes its connections) and waits for the thread. */
void worker_stop(struct worker *w);

#endif
