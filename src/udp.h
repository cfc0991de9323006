// SPDX-License-Identifier: BSD-2-Clause
/*
 * udp.h - datagram echo, backend-neutral: batched receive and reply with
 * recvmmsg/sendmmsg, each reply sent from the address the datagram was
 * sent to, and the guards that make an open UDP echo safe to expose
 * (loop ports, non-unicast sources, per-source rate limits, size limits).
 */
#ifndef ECHOD_UDP_H
#define ECHOD_UDP_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "siphash.h"

struct fault_udp;
struct options;

enum udp_verdict {
	UDP_ECHO,
	UDP_DROP_PORT, /* source port 0, a loop-prone service, or ours */
	UDP_DROP_SOURCE, /* broadcast, multicast or unspecified source */
	UDP_DROP_RATE, /* over the source's packet or byte budget */
	UDP_DROP_SIZE, /* truncated (MSG_TRUNC) or over --udp-max-size */
	UDP_DROP_SEND, /* the reply could not be sent (buffer full...) */
	UDP_DROP_ACCESS, /* source refused by --allow/--deny */
	UDP_DROP_FAULT, /* a fault's loss, or no room to hold its answer */
	UDP_NVERDICTS,
};

/*
 * Counted by one worker (counter.h), read live by the table and the
 * metrics thread, summed by main() at exit.
 */
struct udp_stats {
	_Atomic uint64_t received;
	_Atomic uint64_t bytes_in; /* of every datagram received */
	_Atomic uint64_t echoed;
	_Atomic uint64_t bytes; /* echoed */
	_Atomic uint64_t dropped[UDP_NVERDICTS];
};

enum {
	UDP_BATCH = 32, /* datagrams per recvmmsg/sendmmsg */
	UDP_BATCHES_PER_CALL = 4, /* so a flood cannot starve TCP */
	UDP_SOURCES = 4096, /* rate-limit table entries per worker, at most */
	UDP_SLOTS = 2 * UDP_SOURCES, /* so the table is never over half full */
	UDP_SWEEP_MS = 100, /* a full table drops idle entries this often */
	UDP_CTRL = 64, /* room for one pktinfo control message */
	UDP_FDS = 16, /* UDP sockets per worker, at most (OPTIONS_MAX_BINDS) */
	/*
	 * Shedding: a source with this many datagrams dropped over rate in
	 * one UDP_TICK_MS has the kernel drop most of its datagrams before
	 * they are queued, so that it gets through at about UDP_SHED_PASS a
	 * second (or twice its --udp-rate, if more).
	 */
	UDP_SHED_AT = 16384,
	UDP_SHED_PASS = 4096,
	UDP_TICK_MS = 1000,
};

/*
 * One source's token buckets; tokens are kept in thousandths. A source
 * is what --max-per-source counts: an IPv4 address or an IPv6 /64.
 */
struct udp_source {
	uint8_t key[16]; /* access_source_key's */
	uint64_t last_ms; /* 0 = free slot */
	int64_t packets, bytes;
	uint32_t over; /* datagrams dropped over rate in tick over_tick */
	uint32_t over_tick;
};

/* A source being shed: its filter entry and what got through of it. */
struct udp_shed {
	struct net_shed f;
	uint64_t seen; /* datagrams received since the last tick */
};

/*
 * One worker's UDP state: the batch arrays and their buffers, the rate
 * table, counters. Owned by the worker's backend; allocated by udp_init.
 */
struct udp_worker {
	const struct options *o;
	unsigned int own_port;
	char *bufs; /* UDP_BATCH buffers of buf_size bytes */
	size_t buf_size;
	/*
	 * The rate table: UDP_SLOTS slots under a keyed hash (a random key
	 * per worker), linear probing, removal by backward shift. At most
	 * UDP_SOURCES entries; when they are all taken, sources without one
	 * share the overflow bucket, as if they were one source, and an
	 * entry is dropped only once its buckets are full again, so losing
	 * it gives its source nothing it did not have.
	 */
	struct udp_source *sources;
	unsigned int nsources;
	struct udp_source overflow;
	uint64_t sweep_ms; /* when the full table was last swept */
	struct siphash_key hkey;
	/*
	 * Flooding sources (at most NET_SHED_MAX) the sockets' filters shed;
	 * shed_gen counts changes, fd_gen[i] is the change fds[i]'s filter
	 * was last set to. Re-judged every UDP_TICK_MS, tick_ms.
	 */
	struct udp_shed shed[NET_SHED_MAX];
	unsigned int nshed, shed_gen;
	int fds[UDP_FDS];
	unsigned int fd_gen[UDP_FDS], nfds;
	uint64_t tick_ms;
	uint32_t tick;
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union net_addr names[UDP_BATCH];
	/* cmsg(3) needs control buffers aligned like a cmsghdr. */
	_Alignas(struct cmsghdr) char ctrl_in[UDP_BATCH][UDP_CTRL];
	_Alignas(struct cmsghdr) char ctrl_out[UDP_BATCH][UDP_CTRL];
	struct udp_stats *stats; /* own_stats, or the worker's (core_init) */
	struct fault_udp *faults; /* --fault, --control; else NULL */
	struct udp_stats own_stats;
	uint64_t log_next_ms; /* refusals are logged at most once a second */
	uint64_t log_missed;
};

/* Returns 0, -ENOMEM, or getrandom's -errno. */
int udp_init(struct udp_worker *u, const struct options *o,
	     unsigned int own_port);
void udp_destroy(struct udp_worker *u);

/*
 * Serves what waits on fd: up to UDP_BATCHES_PER_CALL batches, so the
 * caller must call again while fd stays readable (level-triggered).
 * Returns 0, or -errno when fd itself failed.
 */
int udp_serve(struct udp_worker *u, int fd, uint64_t now_ms);

/* The address and port checks alone (pure; unit-tested). */
enum udp_verdict udp_check_source(const struct options *o,
				  unsigned int own_port,
				  const union net_addr *src);

/* The rate check alone: charges one datagram of n bytes to src's budget. */
bool udp_rate_allow(struct udp_worker *u, const union net_addr *src, size_t n,
		    uint64_t now_ms);

/* Whether src has an entry of its own (for tests). */
bool udp_source_has(const struct udp_worker *u, const union net_addr *src);

/*
 * Whether the rate table keeps its invariants: nsources counts the
 * entries, at most UDP_SOURCES, each reached from its hash before a free
 * slot (for tests and fuzz/fuzz-tables.c).
 */
bool udp_sources_valid(const struct udp_worker *u);

/* A verdict in words ("over rate"), and as a label ("rate"). */
const char *udp_verdict_name(enum udp_verdict v);
const char *udp_verdict_label(enum udp_verdict v);

#endif
