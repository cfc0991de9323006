// SPDX-License-Identifier: BSD-2-Clause
/* loadgen.h - lg_: event-loop threads, their counters, and the timeline. */
#ifndef ECHOBENCH_LOADGEN_H
#define ECHOBENCH_LOADGEN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "hist.h"

struct bench_opts;
struct ssl_ctx_st;

/*
 * What can go wrong with an echo. The first group fails the run (exit
 * status 1); the second is how UDP behaves and is only counted.
 */
enum err_kind {
	ERR_MISMATCH, /* an echo has bytes that differ from those sent */
	ERR_SHORT, /* fewer bytes came back than were sent */
	ERR_EXCESS, /* more bytes came back than were sent (duplicates) */
	ERR_CLOSED, /* the server closed or reset a connection early, or
		     * not where --expect-close said */
	ERR_CONNECT, /* a connection could not be set up */
	ERR_TLS, /* --tls: a handshake or a session failed (certificate...) */
	ERR_FATAL_MAX, /* kinds below fail the run */
	ERR_LOST = ERR_FATAL_MAX, /* UDP: no echo within --timeout */
	ERR_REORDER, /* UDP: echo overtook an earlier one */
	ERR_DUP, /* UDP: the same datagram echoed twice */
	ERR_LATE, /* UDP: echo after it was counted lost */
	ERR_MAX,
};

extern const char *const err_names[ERR_MAX];

/*
 * The run's timeline, owned by main: written before the threads are released
 * from the start barrier and read-only afterwards, except stop.
 */
struct loadgen {
	const struct bench_opts *o;
	uint64_t start; /* ns, CLOCK_MONOTONIC: load begins */
	uint64_t measure; /* ns: warm-up ends, statistics begin */
	uint64_t end; /* ns: no new messages after; UINT64_MAX with -n */
	uint64_t period; /* open loop: ns between one connection's messages */
	int stop; /* set (atomically) by main on SIGINT */
	pthread_barrier_t ready; /* threads have connected */
	pthread_barrier_t go; /* main has set the timeline */
	struct ssl_ctx_st
		*tls; /* --tls: the client context (btls.h), or NULL */
};

/*
 * Counters one thread writes with relaxed atomic stores and main reads
 * with relaxed loads, each a whole value (see hist.h).
 */
struct lg_stats {
	uint64_t done; /* echoes completed, warm-up and drain included */
	uint64_t bytes; /* bytes of those echoes */
	uint64_t measured; /* echoes completed in the window (lg_done) */
	uint64_t measured_bytes;
	uint64_t last_done; /* ns of the last measured completion */
	uint64_t err[ERR_MAX];
	uint64_t corrupt_bytes; /* bytes of the ERR_MISMATCH echoes that differ
				 */
	uint64_t expected_closes; /* --expect-close: closes where expected */
	uint64_t handshakes; /* --tls: completed in the window */
	uint64_t resumed; /* of those, resumed sessions */
	uint64_t handshakes_all; /* completed in the whole run */
	uint64_t resumed_all;
};

struct lg_thread;

/*
 * A transport's client loop (tcp_client.c, udp_client.c), run by each
 * thread: it opens its connections, waits at both barriers of struct
 * loadgen, loads until lg_stopping() and drains. The thread module reaches the
 * transports only through this table, so calls go one way: transports into
 * loadgen.c.
 */
struct lg_ops {
	void (*run)(struct lg_thread *th);
};

/* One thread and its share of the connections; owned by main. */
struct lg_thread {
	int id;
	struct loadgen *lg;
	const struct lg_ops *ops; /* set by lg_start */
	uint32_t first; /* global id of its first connection */
	uint32_t nconns;
	bool limited; /* -n: at most quota measured messages */
	uint64_t quota;
	struct hist hist; /* latency of measured echoes */
	struct hist hs_hist; /* --tls: latency of the window's handshakes */
	const char *tls_version; /* --tls: of the first handshake, or NULL */
	struct lg_stats st;
	bool finished; /* set (atomically) when the thread is done */
	char first_err[160]; /* description of its first error */
	pthread_t tid;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rd(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Single-writer increment: see struct lg_stats. */
static inline void inc(uint64_t *p, uint64_t by)
{
	__atomic_store_n(p, *p + by, __ATOMIC_RELAXED);
}

/* Counts an error and keeps the first description; threads only. */
void lg_error(struct lg_thread *th, enum err_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Records one completed echo sent (or due) at t0 and done at now. It is
 * measured when it completes inside the window [measure, end): a server
 * that falls behind then shows as fewer echoes, never as a window that
 * holds no echo at all. With -n the window is the N messages sent after
 * the warm-up instead, so that exactly N are measured.
 */
void lg_done(struct lg_thread *th, uint64_t t0, uint64_t now, size_t bytes);

/*
 * Records a TLS handshake begun at t0 (its ClientHello) and done at now,
 * resumed or full; in the window's count and histogram if done inside it.
 */
void lg_handshake(struct lg_thread *th, uint64_t t0, uint64_t now,
		  bool resumed);

/* True once the load should stop: end time passed or main said stop. */
bool lg_stopping(const struct lg_thread *th, uint64_t now);

/*
 * Waits in epoll until an event or the deadline (ns, CLOCK_MONOTONIC),
 * with sub-millisecond precision. Returns the number of events, 0 on a
 * timeout or a signal; other failures end the program with one line, as
 * a loop without its epoll set cannot go on.
 */
struct epoll_event;
int lg_wait(int epfd, struct epoll_event *ev, int n, uint64_t deadline);

/*
 * Binds a socket about to connect to its --source address (connection id
 * round robin over them); 0, or -errno. Nothing to do without --source.
 */
int lg_bind_source(int fd, const struct bench_opts *o, uint32_t id);

/* Takes one message from the -n quota if it would be measured. */
bool lg_take(struct lg_thread *th, uint64_t t0);

/*
 * Gives back what lg_take took for a message sent at t0 that will never
 * complete, as one cut short by an expected close, so that -n still
 * measures N echoes.
 */
void lg_untake(struct lg_thread *th, uint64_t t0);

/*
 * lg_start runs ops->run(th) on a new thread (ops must outlive it) and
 * returns 0 or -errno; lg_join waits for that thread to end.
 */
int lg_start(struct lg_thread *th, const struct lg_ops *ops);
void lg_join(struct lg_thread *th);

#endif
