// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault_udp.h - the faults that act on datagrams (latency, corrupt, loss,
 * duplicate, reorder): judged for each answer before it is sent, which
 * may flip its bits, drop it, or hold a copy to send later, from the
 * worker's own queue of held answers.
 */
#ifndef ECHOD_FAULT_UDP_H
#define ECHOD_FAULT_UDP_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct fault_registry;

enum {
	/* Held answers per worker, at most; more are dropped, as sends. */
	FAULT_UDP_HELD_MAX = 4096,
	FAULT_UDP_HELD_BYTES = 4 << 20,
	FAULT_UDP_CTRL = 64, /* a held answer's control message, at most */
};

/* What the held answers came to since the last flush, for the counters. */
struct fault_udp_sent {
	uint64_t echoed, bytes;
	uint64_t dropped; /* sends that failed, copies with no room */
};

enum fault_udp_verdict {
	FAULT_UDP_SEND, /* send it now (perhaps changed, perhaps copied) */
	FAULT_UDP_LOST, /* loss: no answer */
	FAULT_UDP_HELD, /* latency or reorder: it goes later */
	FAULT_UDP_FULL, /* it was to be held, and the queue is full */
};

struct fault_udp;

/* One worker's; NULL when out of memory. */
struct fault_udp *fault_udp_new(struct fault_registry *r);
void fault_udp_free(struct fault_udp *u);

/*
 * Judges the answer reply (name, control and one iovec of data, the
 * datagram's bytes, corrupted in place) on socket fd, from the faults
 * that apply to its source.
 */
enum fault_udp_verdict fault_udp_judge(struct fault_udp *u, int fd,
				       struct msghdr *reply);

/* Sends the held answers whose time came; says what that came to. */
void fault_udp_flush(struct fault_udp *u, uint64_t now_ns,
		     struct fault_udp_sent *sent);

/* When the first held answer is due, in ns; 0 when none is held. */
uint64_t fault_udp_next(const struct fault_udp *u);

#endif
