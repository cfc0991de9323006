// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault_conn.h - what the faults a TCP connection carries do to it: which
 * it took when it opened, when each held echo may go, how much of it may
 * go now, which bits to flip, and when it ends. The core does the reads
 * and asks here; the sends are made here, from the connection's queue.
 *
 * Only connections of a process given --fault or --control have one;
 * the others never reach this file.
 */
#ifndef ECHOD_FAULT_CONN_H
#define ECHOD_FAULT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault.h"
#include "fault_draw.h"

struct conn;
struct outq_pool;

enum {
	/*
	 * Held echoes, each with its own time to go; a peer that sends
	 * more pieces than this within one delay waits (backpressure)
	 * until the first goes.
	 */
	FAULT_MARKS = 64,
	FAULT_NAMES = 64, /* the names it carries, for the log and table */
};

/* One held echo: the queue's bytes up to end may go at at_ns. */
struct fault_mark {
	uint64_t end; /* fault_conn.queued after it */
	uint64_t at_ns;
};

/* What a connection does, from the faults that applied to it. */
struct fault_params {
	uint32_t on; /* bit (1 << enum fault_type) for each it carries */
	int8_t index[FAULT_NTYPES]; /* its fault in the set it was given */
	uint64_t delay_ns, jitter_ns; /* latency */
	enum fault_dist dist;
	uint64_t rate; /* bandwidth */
	uint64_t slice, slice_ns; /* slicer */
	uint64_t limit; /* limit-data */
	bool limit_rst;
	uint64_t timeout_ns; /* timeout: 0 = held open, silent */
	uint64_t reset_ns; /* reset-peer */
	uint64_t slow_close_ns;
	uint64_t stall_after;
	double corrupt_p;
};

/* How a connection ends, when a fault ends it. */
enum fault_end {
	FAULT_GO_ON,
	FAULT_END_FIN, /* close as for the peer's FIN */
	FAULT_END_RST, /* reset: SO_LINGER 0, then close */
	FAULT_END_SHUT, /* limit-data's FIN: ours now, the peer's awaited */
};

/* One connection's state; allocated at admit, freed with it. */
struct fault_conn {
	struct fault_params p;
	uint64_t version; /* of the set its live faults came from */
	uint64_t ordinal;
	uint64_t rng;
	uint64_t born_ns;
	uint64_t queued; /* bytes put in its queue since it opened */
	uint64_t taken; /* bytes read since it opened (stall) */
	uint64_t released; /* bytes of queued that may go (latency) */
	uint64_t corrupt_at; /* the next byte of queued to flip */
	struct fault_mark marks[FAULT_MARKS];
	unsigned int mark_head, nmarks;
	uint64_t paid_ns; /* bandwidth: what went is paid for until then */
	uint64_t slice_at_ns; /* slicer: the next piece not before */
	uint64_t eof_ns; /* slow-close: the peer's FIN came then; 0: not */
	uint64_t wake_ns; /* when it asked to be woken; 0: never */
	bool blocked; /* the socket took less than offered: wait for it */
	unsigned int tls_want; /* over TLS: what the last step waits for */
	char names[FAULT_NAMES]; /* "latency,corrupt" */
	uint8_t fixed_names; /* names' length before the live types' */
};

/*
 * The faults of s that apply to the ordinal'th connection, from peer,
 * into a new state, their activations counted; with s NULL, none (a TLS
 * connection the core serves without faults). Returns NULL when out of
 * memory.
 */
struct fault_conn *fault_conn_new(const struct fault_set *s, uint64_t ordinal,
				  const union net_addr *peer, uint64_t now_ns);
void fault_conn_free(struct fault_conn *f);

/*
 * After the set changed (version): takes the live types (latency,
 * bandwidth, corrupt) from s instead, for the next echo on.
 */
void fault_conn_refresh(struct fault_conn *f, const struct fault_set *s,
			const union net_addr *peer);

/* How much of room the connection may read now: 0 while it must not. */
size_t fault_conn_read_room(const struct fault_conn *f, size_t room);

/* Whether what it reads is dropped (timeout: nothing is echoed). */
static inline bool fault_conn_silent(const struct fault_conn *f)
{
	return f->p.on & (1u << FAULT_TIMEOUT);
}

/*
 * n bytes were read (taken counts them); echo of them, at buf, go into
 * the queue: flips their bits (corrupt) and holds them (latency).
 */
void fault_conn_took(struct fault_conn *f, char *buf, size_t n, size_t echo,
		     uint64_t now_ns);

/*
 * How bytes go to c's peer: send(2), or TLS. Returns the bytes taken,
 * -EAGAIN when the socket must be ready first, or another -errno.
 */
typedef ssize_t (*fault_writer)(struct conn *c, const void *buf, size_t n);

/*
 * Sends what of c's queue may go now, through write. Returns 0, or
 * -errno when the connection must close; *blocked tells that the socket
 * took less than offered (wait for it to be writable).
 */
int fault_conn_send(struct fault_conn *f, struct outq_pool *pool,
		    struct conn *c, uint64_t now_ns, bool *blocked,
		    fault_writer write);

/*
 * Whether a fault ends c now (reset-peer's or timeout's time, the
 * limit-data bytes sent, slow-close's delay after the peer's FIN).
 */
enum fault_end fault_conn_end(struct fault_conn *f, const struct conn *c,
			      uint64_t now_ns);

/* The peer's FIN came: returns true when c must act on it only later. */
bool fault_conn_eof(struct fault_conn *f, uint64_t now_ns);

/*
 * When c next needs a look without an event; 0: only on events. While
 * blocked, the times of its sends are not: writability comes first.
 */
uint64_t fault_conn_next_ns(const struct fault_conn *f, const struct conn *c);

#endif
