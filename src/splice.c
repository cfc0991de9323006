// SPDX-License-Identifier: BSD-2-Clause
/*
 * splice.c - a streaming peer's echo through a pipe (see splice.h).
 */
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn.h"
#include "core.h"
#include "log.h"
#include "options.h"
#include "outq.h"
#include "splice.h"

enum {
	SPILL_SIZE = 16 * 1024,
};

void splicer_open(struct splicer *s)
{
	s->spill = malloc(SPILL_SIZE);
	if (s->spill && pipe2(s->pipe, O_NONBLOCK | O_CLOEXEC) == 0) {
		/* A smaller pipe only means shorter splices. */
		(void)fcntl(s->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
		return;
	}
	free(s->spill);
	s->spill = NULL;
	s->pipe[0] = s->pipe[1] = -1;
}

void splicer_close(struct splicer *s)
{
	if (s->pipe[0] >= 0) {
		close(s->pipe[0]);
		close(s->pipe[1]);
	}
	s->pipe[0] = s->pipe[1] = -1;
	free(s->spill);
	s->spill = NULL;
}

bool splicer_wants(const struct splicer *s, const struct stream *st,
		   const struct options *o)
{
	return st->on && splicer_ok(s) && o->framing == FRAMING_RAW &&
	       o->messages == 0;
}

/* A pipe that may hold stale bytes is never used again. */
static void drop_pipe(struct splicer *s)
{
	log_error("splice pipe failed; streaming peers are read as others");
	splicer_close(s);
}

/*
 * Moves the n bytes left in the pipe into c's queue, leaving the pipe
 * empty for the next connection. Returns 0, -ENOMEM (the pipe is
 * emptied all the same), or -EIO when the pipe itself failed.
 */
static int pipe_to_queue(struct splicer *s, struct core *k, struct conn *c,
			 size_t n)
{
	int err = 0;
	ssize_t got;

	while (n > 0) {
		got = read(s->pipe[0], s->spill,
			   n < SPILL_SIZE ? n : SPILL_SIZE);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -EIO;
		if (!err)
			err = outq_append(&k->pool, &c->out, s->spill,
					  (size_t)got);
		n -= (size_t)got;
	}
	return err;
}

static bool transient(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * Whether c's splice that read nothing met the end of its stream. It
 * may instead have met an urgent mark: splice never reads past one
 * (tcp_read_sock stops there), and says 0 there once the peer's FIN is
 * in, with the urgent byte and all behind it still waiting. A peek
 * tells them apart; it runs once a streaming connection, at its end.
 * Only its 0 is the end: at the mark it may also say EAGAIN, bytes
 * waiting all the same (tcp_recvmsg reads nothing there while a signal
 * is pending, as when a job-control stop is under way).
 */
static bool at_end(struct conn *c)
{
	char byte;

	return recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

ssize_t splicer_echo(struct splicer *s, struct core *k, struct conn *c,
		     size_t len)
{
	ssize_t n, sent = 0;
	size_t left;
	int err = 0, kept;

	do {
		n = splice(c->fd, NULL, s->pipe[1], NULL, len,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ENOSYS ? -EINVAL : -errno;
	if (n == 0)
		return at_end(c) ? 0 : -EINVAL;
	conn_consume(k->o, c, NULL, (size_t)n);
	for (left = (size_t)n; left > 0; left -= (size_t)sent) {
		sent = splice(s->pipe[0], NULL, c->fd, NULL, left,
			      SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (sent < 0 && errno == EINTR)
			sent = 0;
		else if (sent <= 0)
			break;
		c->bytes_out += (uint64_t)sent;
	}
	if (left > 0) {
		if (sent < 0 && !transient(errno))
			err = -errno;
		kept = pipe_to_queue(s, k, c, left);
		if (kept == -EIO)
			drop_pipe(s);
		if (err || kept)
			return err ? err : kept;
	}
	return n;
}
