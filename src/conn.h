// SPDX-License-Identifier: BSD-2-Clause
/*
 * conn.h - a connection as every backend sees it: who it is (slot,
 * generation, descriptor, peer), how far its framing has got, its queue
 * of bytes to send back, its place on a deadline list, and room behind
 * it for the backend's own state (conn_priv).
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "options.h"
#include "outq.h"

struct fault_conn;
struct tls_conn;
struct options;
struct report_row;

enum conn_flags {
	CONN_LIMIT = 1 << 0, /* -n reached: echo what is owed, then FIN */
	CONN_PEER_EOF = 1 << 1, /* the peer shut its sending side */
	CONN_SHUT_WR = 1 << 2, /* we sent our FIN; input is discarded */
	CONN_LINGER = 1 << 3, /* on the linger list, not the idle list */
	CONN_CLOSING = 1 << 4, /* closed for the core; the backend is ending
				  what the kernel still holds of it */
	CONN_PAUSED = 1 << 5, /* reading stopped at --max-pending */
	CONN_SOURCE = 1 << 6, /* holds a --max-per-source place */
	CONN_QUEUED =
		1 << 7, /* echoes wait in its queue (counted by the core) */
	CONN_MEMWAIT = 1 << 8, /* not reading until --memory has room for it */
	CONN_MEMQ = 1 << 9, /* has an entry in the core's memory queue */
	CONN_PROXY_WAIT = 1 << 10, /* its PROXY header, or none, is awaited */
	CONN_BALANCER = 1 << 11, /* from a --proxy-from balancer */
	CONN_VIA = 1 << 12, /* peer is the client a PROXY header named */
	CONN_TLS_UP = 1 << 13, /* its TLS handshake is done */
	CONN_SERVED = 1 << 14, /* the core serves it: conn_core_served */
};

/*
 * Generations are 31 bits wide, so that (generation, slot) fits the
 * tags backends hand the kernel (epoll data, io_uring user_data) with
 * room to spare for their own bits.
 */
#define CONN_GEN_BITS 31
#define CONN_GEN_MASK ((1u << CONN_GEN_BITS) - 1)

/*
 * Owned by the worker's conn_table (one allocation per slot, reused);
 * opened by core_admit and freed by core_free. The backend's own state
 * follows it in the same allocation.
 */
struct conn {
	struct conn *prev, *next; /* idle or linger list */
	struct outq out;
	uint32_t flags;
	uint32_t slot; /* index in the worker's conn_table */
	uint32_t gen; /* tells a reused slot from its past */
	int fd;
	uint64_t last_ms; /* last activity, or when lingering started */
	uint64_t born_ms; /* when admitted */
	uint64_t sent_ms; /* when the peer last took an echo, or had none due */
	uint32_t sent_seen; /* bytes_out's low bits then (the core's sweep) */
	uint32_t qprev, qnext; /* slots on the core's queued list */
	/* The low bits of the three below already in the worker's counters. */
	uint32_t counted_in, counted_out, counted_messages;
	uint64_t messages, bytes_in, bytes_out;
	union net_addr peer;
	union net_addr via; /* the balancer, with CONN_VIA */
	struct fault_conn
		*fault; /* --fault, --control, TLS: the core's state */
	struct tls_conn *tls; /* on a --tls-port listener: its session */
	uint32_t wake_pos; /* in the core's wakeups, or WAKEUP_NONE */
	uint32_t proxy_poll_ms; /* a header's start came: look again then */
};

/*
 * Whether the core reads and sends for c (core_serve_io), the backend
 * only watching its socket: it has faults, is TLS, or its PROXY header
 * is due. A flag, since the backends ask after every event.
 */
static inline bool conn_core_served(const struct conn *c)
{
	return c->flags & CONN_SERVED;
}

/* Sets CONN_SERVED from what c has, after its faults, TLS or header changed. */
static inline void conn_note_served(struct conn *c)
{
	bool served = c->fault != NULL || c->tls != NULL ||
		      (c->flags & CONN_PROXY_WAIT);

	c->flags = served ? c->flags | CONN_SERVED : c->flags & ~CONN_SERVED;
}

/* The backend's state for c, core_init's priv_size bytes, zeroed at admit. */
static inline void *conn_priv(struct conn *c)
{
	return c + 1;
}

/*
 * Counts the messages in data[0, n) that the peer sent and returns how
 * many of its bytes are to be echoed: all of them, or, when this data
 * completes the -n'th message, those up to and including its end (the
 * rest is discarded and CONN_LIMIT set). Bytes after the limit return 0.
 * Raw framing never reads data (a backend that splices passes NULL).
 */
size_t conn_consume_framed(const struct options *o, struct conn *c,
			   const char *data, size_t n);

static inline size_t conn_consume(const struct options *o, struct conn *c,
				  const char *data, size_t n)
{
	/* Raw bytes without -n, as most are: a message per read, all echoed. */
	if (o->framing == FRAMING_RAW && !o->messages) {
		c->bytes_in += n;
		c->messages++;
		return n;
	}
	return conn_consume_framed(o, c, data, n);
}

/*
 * Fills row with c as the live table shows it (all but the worker's
 * number): counts, age at now_ms, and the kernel's view of its socket.
 * Only c's worker may call it: it alone touches c and its descriptor.
 */
void conn_describe(struct conn *c, uint64_t now_ms, struct report_row *row);

#endif
