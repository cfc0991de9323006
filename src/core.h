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
#include "compiler.h"
#include "conn.h"
#include "counter.h"
#include "deadline.h"
#include "outq.h"
#include "table.h"
#include "udp.h"
#include "wakeup.h"
#include "worker.h"

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
	/*
	 * Nothing timed is due before this (a lower bound: a deadline that
	 * moved later keeps it; whatever arms something sooner lowers it,
	 * core_wake_by); 0 while faults are held or memory awaited:
	 * core_quiet.
	 */
	uint64_t quiet_until;
	/* Connections with echoes waiting (CONN_QUEUED), linked by slot. */
	uint32_t queued_head; /* UINT32_MAX: none */
	uint64_t trim_at; /* when to give memory back; 0 = not planned */
	bool trim_more; /* the backend has memory to give back too */
	struct budget *budget; /* --memory, shared by every worker */
	size_t share; /* a read's fair share of it, as found at share_ms */
	uint64_t share_ms;
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
 * Adds what c moved since the last call to the worker's counters, so
 * that they grow with the work, not at close. One event never moves
 * 4 GiB, so the low 32 bits tell the difference.
 */
static inline void core_count_moved(struct core *k, struct conn *c)
{
	struct worker_stats *s = &k->w->stats;
	uint32_t in = (uint32_t)c->bytes_in, out = (uint32_t)c->bytes_out;
	uint32_t messages = (uint32_t)c->messages;

	/* An echo moves all three: adding 0 costs less than asking. */
	counter_add(&s->bytes_in, (uint32_t)(in - c->counted_in));
	counter_add(&s->bytes_out, (uint32_t)(out - c->counted_out));
	counter_add(&s->messages, (uint32_t)(messages - c->counted_messages));
	c->counted_in = in;
	c->counted_out = out;
	c->counted_messages = messages;
}

/*
 * core_settle's look at c's queue: its pause and queued state noted,
 * and, with nothing queued, the peer's FIN answered or ours sent after
 * the -n'th echo.
 */
enum close_reason core_settle_queue(struct core *k, struct conn *c,
				    bool queued);

/*
 * After c's bytes moved: counts them, sends our FIN once every echo owed
 * after -n is out, and, with touch, restarts the idle clock. Returns why c
 * must close now (CLOSE_EOF), or CLOSE_NONE. Inline: every event ends here.
 * Without touch: bytes that moved earlier than now (io_uring's send that
 * completed at submission, handled at a later wakeup), whose wakeup
 * touched the clock already.
 */
static ALWAYS_INLINE enum close_reason
core_settle_as(struct core *k, struct conn *c, bool touch)
{
	const uint32_t noted =
		CONN_PAUSED | CONN_QUEUED | CONN_PEER_EOF | CONN_LIMIT;
	bool queued = outq_bytes(&c->out) > 0;
	enum close_reason why;

	core_count_moved(k, c);
	/*
	 * An echo that all went out, no send in flight, nothing noted
	 * before: core_settle_queue would find nothing to do (an empty queue
	 * has room for a read, max_pending being at least the read unit).
	 */
	if (queued || (c->flags & noted) || c->out.flight == OUTQ_SENDING_BUF) {
		why = core_settle_queue(k, c, queued);
		if (why != CLOSE_NONE)
			return why;
	}
	if (touch)
		deadline_touch(&k->due, c, k->now_ms);
	return CLOSE_NONE;
}

static ALWAYS_INLINE enum close_reason core_settle(struct core *k,
						   struct conn *c)
{
	return core_settle_as(k, c, true);
}

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
size_t core_read_room_shared(struct core *k, struct conn *c, size_t room);

static inline size_t core_read_room(struct core *k, struct conn *c, size_t room)
{
	/*
	 * Nothing pooled, and the share found in this tick of the clock is
	 * at least twice this read: the read as asked, without the budget's
	 * shared counters and division. Only a budget spent by half of what
	 * was left, or a doubling of the connections, within the tick could
	 * have brought the share below it meanwhile.
	 */
	if (c->out.buf == NULL && !(c->flags & CONN_MEMWAIT) &&
	    k->share_ms == k->now_ms && room <= k->share / 2)
		return room;
	return core_read_room_shared(k, c, room);
}

/*
 * Whether core_read_room would let c read anything: the question a
 * backend asks when it decides what to wait for, after every event.
 * With nothing pooled the answer is yes without the budget's shared
 * counters and division, and without core_read_room's side effect.
 */
bool core_may_read(struct core *k, struct conn *c, size_t room);

/*
 * Whether this wakeup has nothing timed to do: no deadline, sweep, pause
 * end or trim before quiet_until (what core_timeout_ms last found, 0
 * while a fault is held or memory awaited), and a trim planned if there
 * is anything to trim. Most wakeups carry echoes alone: then this is all
 * the backend's look at the clock costs, and core_due, core_resume_due
 * and core_trim_due are not asked.
 */
static inline bool core_quiet(const struct core *k)
{
	return k->now_ms < k->quiet_until &&
	       (k->trim_at || !(k->pool.nfree || k->trim_more));
}

/*
 * Something timed was armed for at (ms: a deadline, a linger, a pause, a
 * trim, a sweep), which may come before what core_timeout_ms found last:
 * the sleep ends by then, and from then on the wakeups look at
 * everything again. What only moves later (an idle deadline touched)
 * needs nothing: it costs one early wakeup at most.
 */
static inline void core_wake_by(struct core *k, uint64_t at)
{
	if (at < k->quiet_until)
		k->quiet_until = at;
}

/*
 * Something was armed whose time is not in ms (a fault's wake-up), or
 * memory is awaited: the next wakeup and sleep look at everything.
 */
static inline void core_recheck(struct core *k)
{
	k->quiet_until = 0;
}

/*
 * The sleep until at (ms), -1 for UINT64_MAX (nothing timed): rounded up,
 * since the coarse clock ticks every few ms, and never past what
 * epoll_wait takes (an --idle-timeout may be a year).
 */
static inline int core_wait_ms(const struct core *k, uint64_t at)
{
	uint64_t ms = at > k->now_ms ? at - k->now_ms + 5 : 5;

	if (at == UINT64_MAX)
		return -1;
	return ms < INT32_MAX ? (int)ms : INT32_MAX;
}

/* core_timeout_ms's full look: every deadline and fault, quiet_until set. */
int core_timeout_recompute(struct core *k);

/*
 * Milliseconds until the next deadline or pause end; -1 if none. Called
 * before each sleep: what it finds is also when core_due next has
 * anything timed to do. While quiet, what it found last still holds
 * (rounded up: the coarse clock ticks every few ms).
 */
static inline int core_timeout_ms(struct core *k)
{
	/*
	 * After core_due's round (the backend's expire), which planned a
	 * trim if one was wanting: only the time is left to ask.
	 */
	if (k->now_ms >= k->quiet_until)
		return core_timeout_recompute(k);
	return core_wait_ms(k, k->quiet_until);
}

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
