// SPDX-License-Identifier: BSD-2-Clause
/*
 * backend_uring.c - the completion backend: one io_uring per worker,
 * turning completions into calls on the loop core. Needs Linux 6.0
 * (multishot receive; buffer rings came in 5.19); uring_probe.c says
 * what else it uses where the kernel has it.
 *
 * This file is the loop: it submits what is queued and waits in one
 * io_uring_enter, hands each completion to its owner (a connection's to
 * uring_conn.c, a listener's or UDP socket's to uring_accept.c), then
 * runs the connections waiting for a buffer or an SQE, and the core's
 * deadlines, which sleep in the kernel as one timeout request. With many
 * busy connections it waits for a batch of completions. At the stop it
 * closes every connection and reaps until the kernel holds nothing of
 * ours.
 */
#ifdef HAVE_LIBURING

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <liburing.h>

#include "backend.h"
#include "budget.h"
#include "core.h"
#include "log.h"
#include "options.h"
#include "uring.h"

enum {
	SQ_ENTRIES = 512,
	CQ_ENTRIES = 8192,
	BUF_SIZE = 65536,
	DRAIN_MS = 2000, /* bound on waiting for the kernel at stop */
	BATCH_PER_CONNS = 8, /* wait for one completion per 8 conns... */
	BATCH_MAX = 16, /* ... up to 16 ... */
	BATCH_WAIT_NS = 50000, /* ... for at most 50 us */
};

/* --------------------------------------------------------------- loop */

static void dispatch(struct uloop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	/* OP_SHORT is not a request whose CQE is due: it ends the wait. */
	if (!(cqe->flags & IORING_CQE_F_MORE) && ud_op(ud) != OP_SHORT)
		l->ops--;
	switch (ud_op(ud)) {
	case OP_ACCEPT:
		uloop_handle_accept(l, ud_slot(ud), cqe);
		break;
	case OP_CTL:
		l->ctl_armed = false;
		l->stopping = cqe->res >= 0 && core_control(&l->core);
		if (l->core.draining)
			uloop_stop_listeners(l, true);
		break;
	case OP_LPOLL:
		uloop_handle_lpoll(l, ud_slot(ud), cqe->res);
		break;
	case OP_UPOLL:
		uloop_handle_udp(l, ud_slot(ud), cqe->res);
		break;
	case OP_CANCEL:
	case OP_SHORT: /* the send's own completion says what to do */
	case OP_CLOSE: /* even a failed close(2) frees the number */
		break;
	case OP_TIMER:
		l->timer_at = 0; /* expired, or cancelled at the stop */
		break;
	case OP_TIMER_MOVE:
		/* -ENOENT: it expired first; its completion re-arms. */
		if (cqe->res == -EINVAL)
			l->timer_moves = false;
		break;
	case OP_RECV:
	case OP_SEND:
	case OP_SEND_COUNTED:
	case OP_SPOLL:
		uloop_conn_cqe(l, cqe);
		break;
	}
}

/* Handles every completion there is, then marks them all seen at once. */
static void reap(struct uloop *l)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	l->reaping = true;
	io_uring_for_each_cqe(&l->ring, head, cqe) {
		dispatch(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	/* What completed at submission says nothing of how busy we are. */
	l->reaped = n > l->at_submit_last ? n - l->at_submit_last : 0;
	l->reaping = false;
	uloop_run_kicks(l);
}

/* Closes connections whose time ran out; ends an accept pause when due. */
static void expire(struct uloop *l)
{
	enum close_reason why;
	struct conn *c;

	l->core.trim_more = l->bufs.touched;
	if (core_quiet(&l->core))
		return;
	/* Memory came back to those without a reason: they read again. */
	while ((c = core_due(&l->core, &why))) {
		if (why != CLOSE_NONE)
			uloop_close_conn(l, c, why);
		else
			uloop_update(l, c);
	}
	/* arm_listeners resumes once the core no longer says paused. */
	core_resume_due(&l->core);
	if (core_trim_due(&l->core))
		uring_bufs_trim(&l->bufs, l->ring.flags);
}

/* ms milliseconds (>= 0) as the kernel's timespec. */
static struct __kernel_timespec ms_timespec(int ms)
{
	return (struct __kernel_timespec){.tv_sec = ms / 1000,
					  .tv_nsec = (long long)(ms % 1000) *
						     1000000};
}

/*
 * Arms the core's next deadline, timeout_ms from now (> 0), as one
 * IORING_OP_TIMEOUT that stays in the kernel across wakeups. A timeout
 * given to each io_uring_enter sets up and tears down a timer at every
 * sleep; under load the ring's buffers keep a trim a second away, so
 * every sleep had one, 5 % of an echo's CPU at one echo per wakeup
 * (measured). The timeout is moved only when a deadline comes sooner;
 * one that comes later is left, the early wakeup arms the next.
 * Returns false when the caller must wait with a timeout of its own.
 */
static bool arm_timer(struct uloop *l, int timeout_ms)
{
	uint64_t at = l->core.now_ms + (uint64_t)timeout_ms;
	struct io_uring_sqe *sqe;

	if (!l->timer_moves || l->stopping)
		return false;
	if (l->timer_at && l->timer_at <= at)
		return true;
	sqe = uloop_get_sqe(l);
	if (sqe == NULL)
		return false;
	l->timer_ts = ms_timespec(timeout_ms);
	if (l->timer_at) {
		io_uring_prep_timeout_update(sqe, &l->timer_ts,
					     ud_pack(OP_TIMER, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER_MOVE, 0, 0));
	} else {
		io_uring_prep_timeout(sqe, &l->timer_ts, 0, 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER, 0, 0));
	}
	l->timer_at = at;
	return true;
}

/*
 * Publishes the buffers given back, submits everything queued and waits
 * for a completion or the deadline: one io_uring_enter per loop.
 *
 * A send with MSG_DONTWAIT (every send of lent buffers, so every
 * ping-pong echo) completes while io_uring_enter submits it: it never
 * waits for room, a full socket says -EAGAIN. So does the close of a
 * socket. Their completions are there before the wait begins, so
 * waiting for one completion returned at once and every echo paid a
 * second io_uring_enter to sleep (2.0 calls an echo, now 1.0). The wait
 * asks for one more completion than those requests bring (at_submit).
 * The kernel waits only once it has taken every SQE (a submission cut
 * short returns at once), so the count cannot ask for completions that
 * will not come. Which sends are counted, and how one that falls short
 * still ends the wait: uring_conn.c, expect_at_submit.
 * Returns 0, or -errno when the ring itself failed.
 */
static int submit_wait(struct uloop *l, int timeout_ms)
{
	unsigned int batch = core_count(&l->core) / BATCH_PER_CONNS;
	/* Buffers given back are work for those waiting: see uring_conn.c. */
	unsigned int sure =
		l->nwait || budget_tight(l->core.budget) ? 0 : l->at_submit;
	struct __kernel_timespec ts = {0};
	struct io_uring_cqe *cqe;
	int ret;

	uring_bufs_publish(&l->bufs);
	/*
	 * With many connections, completions come in a steady stream:
	 * waiting a few microseconds for several of them costs each echo
	 * that little latency and saves most kernel entries. With few, or
	 * when the last wakeup found little, the next completion is
	 * awaited alone, so one client's round trip is never held up.
	 */
	if (l->reaped < 2)
		batch = 0;
	if (batch > BATCH_MAX)
		batch = BATCH_MAX;
	if (batch > 1 && timeout_ms != 0) {
		ts.tv_nsec = BATCH_WAIT_NS;
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe,
						       batch + sure, &ts, NULL);
	} else if (timeout_ms < 0 ||
		   (timeout_ms > 0 && arm_timer(l, timeout_ms))) {
		ret = io_uring_submit_and_wait(&l->ring, 1 + sure);
	} else {
		ts = ms_timespec(timeout_ms);
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1 + sure,
						       &ts, NULL);
	}
	l->at_submit_last = sure;
	l->at_submit = 0;
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		return ret;
	return 0;
}

/* Watches the worker's ctl_fd, for main's requests. Returns 0 or -EBUSY. */
static int arm_ctl(struct uloop *l)
{
	struct io_uring_sqe *sqe;

	if (l->ctl_armed || l->stopping)
		return 0;
	sqe = uloop_get_sqe(l);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, l->core.ctl_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_CTL, 0, 0));
	l->ctl_armed = true;
	return 0;
}

static int init(void *loop, struct worker *w, const struct options *o)
{
	struct uloop *l = loop;
	size_t max_pending = o->max_pending;
	uint32_t buf_size =
		max_pending < BUF_SIZE ? (uint32_t)max_pending : BUF_SIZE;
	int err;

	l->wait_head = l->wait_tail = WAIT_NONE;
	splicer_open(&l->splicer);

	/* Room for --max-pending and what one receive brings past it. */
	err = core_init(&l->core, w, uloop_conn_size(), max_pending + buf_size);
	if (err == 0)
		err = uring_setup(&l->ring, SQ_ENTRIES, CQ_ENTRIES);
	if (err < 0)
		return err;
	l->ring_ok = true;
	l->timer_moves = true;
	l->msgs = calloc(l->ring.sq.ring_entries, sizeof(*l->msgs));
	if (l->msgs == NULL)
		return -ENOMEM;
	err = uring_bufs_init(&l->bufs, &l->ring, o->uring_buffers, buf_size,
			      l->core.budget);
	if (err < 0)
		return err;
	l->core.pool.lend_base = l->bufs.mem;
	l->core.pool.lend_size = buf_size;
	l->recv_limit = uring_recv_limit_works(&l->ring);
	l->bufs.bundle = l->recv_limit && uring_recv_bundle_works(&l->ring);
	/* update_recv arms a receive only with room for a whole buffer. */
	l->core.read_unit = l->bufs.size;
	log_debug("receives: %s", l->bufs.bundle ? "multishot, limited, bundles"
				  : l->recv_limit ? "multishot, limited"
						  : "one-shot");
	return arm_ctl(l);
}

/*
 * After the stop request (or a ring failure): closes every connection,
 * cancels what is armed, and reaps until the kernel holds nothing of
 * ours, for at most DRAIN_MS, so that nothing is freed while in use.
 */
static void drain(struct uloop *l)
{
	uint64_t deadline = l->core.now_ms + DRAIN_MS;
	struct conn *c;

	l->stopping = true;
	while ((c = core_any(&l->core)))
		uloop_close_conn(l, c, CLOSE_SHUTDOWN);
	uloop_stop_listeners(l, true);
	for (int i = 0; i < l->core.nudp; i++)
		if (l->udp_armed[i])
			uloop_cancel(l, ud_pack(OP_UPOLL, 0, (uint32_t)i));
	if (l->ctl_armed && uloop_cancel(l, ud_pack(OP_CTL, 0, 0)) == 0)
		l->ctl_armed = false;
	if (l->timer_at)
		uloop_cancel(l, ud_pack(OP_TIMER, 0, 0));
	while (l->ops > 0 && l->core.now_ms < deadline) {
		if (submit_wait(l, 100) < 0)
			break;
		core_clock(&l->core);
		reap(l);
	}
}

static void destroy(void *loop)
{
	struct uloop *l = loop;
	/* Ends whatever the drain did not see complete. */
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	core_destroy(&l->core);
	uring_bufs_destroy(&l->bufs);
	splicer_close(&l->splicer);
	free(l->msgs);
	free(l->kick);
}

/*
 * Serves until the stop request, then drains. Returns 0, or -errno when
 * the ring itself failed.
 */
static int serve(void *loop)
{
	struct uloop *l = loop;
	int err = core_given_fd(&l->core);

	if (err >= 0)
		uloop_add_conn(l, err, -1);
	err = 0;
	while (!l->stopping) {
		arm_ctl(l);
		uloop_arm_listeners(l);
		uloop_arm_udp(l);
		err = submit_wait(l, core_timeout_ms(&l->core));
		if (err < 0) {
			core_fail(&l->core, "io_uring_enter", err);
			break;
		}
		core_clock(&l->core);
		reap(l);
		uloop_run_waiters(l);
		expire(l);
	}
	drain(l);
	return err;
}

const struct backend_ops backend_uring = {
	.name = "io_uring",
	/* Same-moment pairs, BENCHMARKS.md ("echod 15"). */
	.preferred_for =
		"one system call an echo against epoll's three; at the same moment no costlier than epoll at 1 to 500 connections and under connection churn",
	.probe = uring_probe,
	.loop_size = sizeof(struct uloop),
	.init = init,
	.serve = serve,
	.destroy = destroy,
};

#endif /* HAVE_LIBURING */
