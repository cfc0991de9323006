// SPDX-License-Identifier: BSD-2-Clause
/*
 * core.h - the loop core: everything a worker's event loop is, whichever
 * backend turns kernel events into calls on it. It owns the worker's
 * connections from admission to close (slot table, deadline lists,
 * pooled send buffers, counters), the spare descriptor and the accept
 * pause for when descriptors run out, the UDP state, and the clock.
 *
 * A backend only watches descriptors or completes requests: it asks the
 * core to admit each accepted descriptor, tells it of bytes moved, asks
 * it after each event whether a connection is done, retires and frees
 * connections through it, and sleeps no longer than core_timeout_ms.
 * A new policy at accept or close, or a new per-connection column, is an
 * edit here and in no backend.
 */
#ifndef ECHOD_CORE_H
#define ECHOD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "close_reason.h"
#include "deadline.h"
#include "outq.h"
#include "table.h"
#include "udp.h"
#include "wakeup.h"

struct budget;
struct conn;
struct options;
struct worker;
struct worker_one;
union net_addr;

enum {
	CORE_ACCEPTS_PER_WAKEUP = 64, /* so a connect flood cannot starve */
	CORE_ACCEPT_PAUSE_MS = 100, /* out of descriptors, spare gone too */
	CORE_POOL_CACHE = 64, /* pooled send buffers kept for reuse */
	/* Descriptors a worker holds besides its connections: its loop, its
	   ctl eventfd, its spare, one accepted while refusing, a probe, and
	   the splice pipe (two). */
	CORE_FDS_PER_WORKER = 8,
	CORE_FDS_SLACK = 16, /* for the process (logging, /proc reads...) */
	CORE_SWEEP_MS = 1000, /* --send-timeout and --max-lifetime checks */
	CORE_TRIM_MS = 1000, /* spare memory unused this long goes back */
	CORE_MEM_RETRY_MS = 20, /* waiting for memory another worker frees */
	CORE_FAULT_READS = 4, /* reads per event of a connection with faults */
	CORE_TLS_HANDSHAKE_MS = 10000, /* a TLS client's time to say hello */
	CORE_TLS_READS = 64, /* TLS reads per event: until nothing is held */
	CORE_TLS_ROUNDS = 4, /* reads after the sends made room, per event */
};

/* What a backend does after an accept failed (core_accept_failed). */
enum core_accept {
	CORE_ACCEPT_GO_ON, /* that client only: accept the next one */
	CORE_ACCEPT_EMPTIED, /* out of descriptors, waiting clients refused */
	CORE_ACCEPT_PAUSED, /* stop watching the listeners until resumed */
};

/*
 * One worker's loop core; lives in the backend's loop state. It is the
 * backend's one way to the worker: what the backend serves (listeners,
 * UDP sockets, main's channel) is here, copied from the worker by
 * core_init, and a backend that cannot go on says so with core_fail.
 */
struct core {
	struct worker *w; /* for the core's own calls; never a backend's */
	const struct options *o;
	const int *listen_fds; /* TCP listeners, one per address */
	const bool *listen_tls; /* listen_fds[i] serves TLS (--tls-port) */
	int nlisten;
	const int *udp_fds; /* UDP sockets (-u), one per address */
	int nudp;
	int ctl_fd; /* readable when main asks something: core_control */
	uint64_t now_ms; /* CLOCK_MONOTONIC_COARSE, once per wakeup */
	struct conn_table table;
	struct deadlines due; /* every open connection, by deadline */
	struct outq_pool pool;
	struct udp_worker udp;
	size_t read_unit; /* the backend reads only with this much room */
	int spare_fd; /* given up to refuse clients when out of fds */
	uint64_t paused_until; /* accepting paused until then; 0 = not */
	uint64_t sweep_at; /* the next --send-timeout/--max-lifetime check */
	struct conn *sweep_next; /* where the check goes on; NULL: done */
	bool sweep_due; /* the check runs in this wakeup */
	uint64_t quiet_until; /* nothing timed is due before: core_due */
	/* Connections with echoes waiting (CONN_QUEUED), linked by slot. */
	uint32_t queued_head; /* UINT32_MAX: none */
	uint64_t trim_at; /* when to give memory back; 0 = not planned */
	bool trim_more; /* the backend has memory to give back too */
	struct budget *budget; /* --memory, shared by every worker */
	uint64_t *memq; /* waiting for memory, first come first served: */
	uint32_t memq_cap, memq_head, memq_n; /* (gen << 32 | slot) */
	unsigned int nmemwait; /* connections with CONN_MEMWAIT */
	bool exhausted; /* in an out-of-descriptors episode */
	bool draining; /* told to stop accepting (SIGTERM's grace) */
	struct worker_one *one; /* one-connection mode, or NULL */
	uint64_t log_next_ms; /* refusals are logged at most once a second */
	uint64_t log_missed;
	struct fault_registry *faults; /* NULL: no connection has faults */
	struct tls_server *tls; /* --tls-port, or NULL */
	struct wakeups wakeups; /* of connections with faults, by time */
};

/*
 * Sets up k for worker w (the backend's init hands w on unopened):
 * priv_size bytes of backend state per connection (conn_priv), pooled
 * send buffers of pool_size bytes. Returns 0 or -errno; core_destroy is
 * safe either way.
 */
int core_init(struct core *k, struct worker *w, size_t priv_size,
	      size_t pool_size);

/*
 * For a backend that cannot go on: records "what: strerror(-err)" as
 * the reason the worker's failure is logged with, and returns err.
 */
int core_fail(struct core *k, const char *what, int err);

/*
 * Frees everything, closing the descriptors of connections the backend
 * could not free (a ring torn down with requests in flight); the
 * backend has retired every connection before.
 */
void core_destroy(struct core *k);

/* CLOCK_MONOTONIC_COARSE in ms: the workers' clock, for main too. */
uint64_t core_now_ms(void);

void core_clock(struct core *k);

/*
 * Admits descriptor fd, accepted on listener lfd from peer (NULL if not
 * known): takes a --max-conns place, a slot, the deadline clock.
 * Returns the connection, or NULL after closing fd (refused, counted).
 * Access policies belong here.
 */
struct conn *core_admit(struct core *k, int fd, const union net_addr *peer,
			int lfd);

/*
 * How many connections the process can hold under its descriptor limit,
 * given what is open now and what workers will hold besides
 * connections; 0 for no limit. main() calls it once every listening
 * socket is open. Admission counts against it, so that the descriptor
 * limit is met as a count and refused without a spare descriptor.
 */
unsigned int core_fd_budget(int workers);

/*
 * The connection the worker was given (--inetd, Accept=yes), for the
 * backend to admit once at start like an accepted one; or -1. When it
 * is over (or refused), the core tells main (worker_one.over).
 */
int core_given_fd(struct core *k);

/* accept on lfd failed with errno err: counts, refuses, maybe pauses. */
enum core_accept core_accept_failed(struct core *k, int lfd, int err);

/* Accepting is paused (CORE_ACCEPT_PAUSED) and not yet resumed. */
static inline bool core_paused(const struct core *k)
{
	return k->paused_until != 0;
}

/*
 * Once per wakeup: ends a pause whose time is up; returns true when it
 * did, and the backend watches its listeners again.
 */
bool core_resume_due(struct core *k);

/*
 * After c's bytes moved: sends our FIN once every echo owed after -n is
 * out, and restarts the idle clock. Returns why c must close now
 * (CLOSE_EOF), or CLOSE_NONE.
 */
enum close_reason core_settle(struct core *k, struct conn *c);

/*
 * Once per wakeup, until NULL: the next connection the backend must act
 * on. First those to close, with why: whose idle or linger time ran out,
 * or, once a second, whose peer took none of its echoes for
 * --send-timeout or which lived --max-lifetime. Then, with *why
 * CLOSE_NONE, those that waited for memory and now have some charged
 * for them: the backend brings their reading back (EPOLLIN, a receive).
 * The caller deals with each before asking again.
 */
struct conn *core_due(struct core *k, enum close_reason *why);

/*
 * True once a second while the core keeps spare send buffers or the
 * backend said it has memory to give back (trim_more): the core has
 * unmapped the spares that went unused for that second (all of them
 * once the worker has no connection, or while the budget is pressed),
 * and the backend gives back what of its own is idle, then sets
 * trim_more again if some remains. So memory follows the load down.
 */
bool core_trim_due(struct core *k);

/*
 * The backends' hook before they read from c or arm its receive, given
 * room, what --max-pending allows. Returns how many bytes c may read
 * now, under --memory:
 *  - with nothing in its pooled buffer, reads go to the backend's own
 *    buffer (epoll's scratch, io_uring's ring) and are echoed at once:
 *    always allowed, so that readers progress whatever non-readers
 *    hold, but only BUDGET_SMALL_READ while memory is tight, since what
 *    the peer does not take is then queued past the budget;
 *  - with bytes in its pooled buffer, only into pages charged to the
 *    budget first; when there are none, 0: c waits, first come first
 *    served, until core_due hands it back.
 */
size_t core_read_room(struct core *k, struct conn *c, size_t room);

/*
 * Whether core_read_room would let c read anything: the question a
 * backend asks when it decides what to wait for, after every event.
 * With nothing pooled the answer is yes without the budget's shared
 * counters and division, and without core_read_room's side effect.
 */
bool core_may_read(struct core *k, struct conn *c, size_t room);

/*
 * Milliseconds until the next deadline or pause end; -1 if none. Called
 * before each sleep: what it finds is also when core_due next has
 * anything timed to do.
 */
int core_timeout_ms(struct core *k);

/*
 * Ends c for the core, once: counts it, logs it (-v), takes it off its
 * deadline list and marks it CONN_CLOSING. The backend then ends what
 * the kernel still holds of c and calls core_free.
 */
void core_retire(struct core *k, struct conn *c, enum close_reason why);

/* Closes c's descriptor, gives back its place, slot and send buffer. */
void core_free(struct core *k, struct conn *c);

/* Any open (not retired) connection, for closing them all; or NULL. */
static inline struct conn *core_any(const struct core *k)
{
	return deadline_any(&k->due);
}

/* How many connections are open (not retired) on this worker. */
static inline unsigned int core_count(const struct core *k)
{
	return k->due.idle.count + k->due.linger.count;
}

/*
 * When the worker's ctl_fd is readable: does what main asked of it
 * (worker_ask: the table's rows, a drain, or stop) and returns true when
 * that was to stop. After a drain request, k->draining is set and
 * accepting is paused for good: the backend stops watching listeners.
 */
bool core_control(struct core *k);

/*
 * A connection with faults (c->fault, --fault or --control) is served
 * by the core, not by the backend's own reads and sends: the backend
 * only tells it when c's socket is readable or writable, and watches for
 * what core_serve_wants says, re-armed after every call (edge-triggered
 * watching must see the socket again). Held echoes wake c through
 * core_due. Returns why c must close now, or CLOSE_NONE (then the
 * backend calls core_settle as after any event).
 */
enum close_reason core_serve_io(struct core *k, struct conn *c, bool readable,
				bool writable);

enum core_want {
	CORE_WANT_READ = 1 << 0,
	CORE_WANT_WRITE = 1 << 1,
};

/* What c's socket must be watched for: enum core_want bits. */
unsigned int core_serve_wants(const struct core *k, const struct conn *c);

/* Serves what waits on the worker's i'th UDP socket (level-triggered). */
void core_serve_udp(struct core *k, int i);

#endif
