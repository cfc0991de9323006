// SPDX-License-Identifier: BSD-2-Clause
/*
 * splice.h - echoing a streaming peer without copying its bytes: splice(2)
 * moves the socket's pages into a pipe, and from there onto the same
 * socket's send queue. Both backends use it, epoll on an edge and
 * io_uring on a poll's completion, with the same rule for which
 * connections stream.
 *
 * Why it pays beyond the copies it saves: on loopback the echo then comes
 * back in the very pages the client wrote, still in its cache. A server
 * that copies hands the client pages its own CPU wrote, and the client's
 * copies cost twice as much; that decided streaming throughput (client
 * CPU per echo 31-37 us spliced, 55-72 us copied, same client).
 */
#ifndef ECHOD_SPLICE_H
#define ECHOD_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct core;
struct options;

/* A worker's pipe, for one connection's bytes at a time. */
struct splicer {
	int pipe[2]; /* -1 when there is none: streams are read as others */
	char *spill; /* for what a socket would not take back */
};

/*
 * Whether a connection streams: a read filled half a buffer or more, and
 * since then fewer than STREAM_SMALL_EDGES edges in a row brought little.
 * Half: io_uring receives as soon as bytes come, and a client's 64 KiB
 * arrives in two packets on loopback (its MTU is 64 KiB, headers
 * included), so "a full buffer" missed streams there.
 */
struct stream {
	uint8_t on : 1;
	uint8_t small_edges : 7;
};

enum {
	/* A receive buffer's size (a stream's mark is half of it). */
	SPLICE_READ = 64 * 1024,
	/*
	 * One splice's length at most. 256 KiB cost one streaming client
	 * 0.88x the server's CPU per echo, but four of them 1/0.64x the
	 * client's time (128 KiB: 1/0.73x): the longer a client's pages wait
	 * in the server, the less of them is in its cache when they come
	 * back.
	 */
	SPLICE_MAX = SPLICE_READ,
	/* Room for a splice's pages, however the socket split them. */
	PIPE_SIZE = 4 * SPLICE_MAX,
	/* What a small edge (or poll completion) brings less of. */
	STREAM_MIN = SPLICE_READ / 4,
	/*
	 * A stream ends after this many small edges in a row: for small
	 * echoes a splice costs 1.2x recv and send. Not at the first: a
	 * stream's edges now and then bring a packet's tail alone, and
	 * copying the 64 KiB after it, even 1 % of the time, doubled what
	 * the client's copies cost.
	 */
	STREAM_SMALL_EDGES = 8,
};

/* One splice's length: never more than a connection may queue. */
static inline size_t splice_size(size_t max_pending)
{
	return max_pending < SPLICE_MAX ? max_pending : SPLICE_MAX;
}

/* Opens s's pipe; without one, splicer_ok is false. Never fails. */
void splicer_open(struct splicer *s);
void splicer_close(struct splicer *s);

static inline bool splicer_ok(const struct splicer *s)
{
	return s->pipe[0] >= 0;
}

/*
 * Whether a connection's bytes go through s's pipe: it streams (st), s
 * has a pipe, and the options let bytes pass unseen (raw framing, no
 * -n).
 */
bool splicer_wants(const struct splicer *s, const struct stream *st,
		   const struct options *o);

/*
 * One read of c through the pipe, of at most len bytes, echoed at once;
 * what the socket does not take is appended to c's queue (kept whatever
 * --memory says, like bytes recv'd). A splice may stop short of what
 * waits (the pipe's slots are per page): only -EAGAIN proves the socket
 * empty. Returns the bytes read, 0 at end of input, -EAGAIN, -EINVAL
 * when c's socket cannot splice or cannot now (an urgent mark: read it
 * with recv, which takes urgent bytes in line, though at the mark even
 * recv may find nothing while a signal is pending), or another -errno
 * that ends c. A pipe that failed is closed, and splicer_ok turns false.
 */
ssize_t splicer_echo(struct splicer *s, struct core *k, struct conn *c,
		     size_t len);

/* A read of n bytes into buffers of size bytes. */
static inline void stream_read(struct stream *st, size_t n, size_t size)
{
	if (n >= size / 2)
		st->on = 1; /* its edge is not small: the count resets */
}

/* An edge (or poll completion) brought n bytes in all. */
static inline void stream_edge(struct stream *st, uint64_t n)
{
	if (n >= STREAM_MIN)
		st->small_edges = 0;
	else if (st->on && ++st->small_edges >= STREAM_SMALL_EDGES)
		st->on = 0;
}

#endif
