// SPDX-License-Identifier: BSD-2-Clause
/*
 * uring_accept.c - the io_uring backend's listeners and UDP sockets:
 * multishot accepts, the polls that stand in for them while descriptors
 * are out, and the one-shot polls the core serves UDP from.
 */
#ifdef HAVE_LIBURING

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include <liburing.h>

#include "core.h"
#include "uring.h"

/*
 * Cancels the listeners' armed requests: all of them, or only the
 * multishot accepts. Those must go while descriptors are out: an
 * io_uring accept takes a descriptor before it looks for a client, so
 * it would fail at once, again and again; a poll waits for a client.
 */
void uloop_stop_listeners(struct uloop *l, bool polls_too)
{
	enum ud_op op;
	uint8_t st;

	for (int i = 0; i < l->core.nlisten; i++) {
		st = l->accept_state[i];
		if (!(st & A_ARMED) || (st & A_CANCEL) ||
		    ((st & A_POLL) && !polls_too))
			continue;
		op = st & A_POLL ? OP_LPOLL : OP_ACCEPT;
		if (uloop_cancel(l, ud_pack(op, 0, (uint32_t)i)) == 0)
			l->accept_state[i] |= A_CANCEL;
	}
}

/* An accept on lfd failed: what the core decides, the listeners do. */
static enum core_accept accept_failed(struct uloop *l, int lfd, int err)
{
	enum core_accept next = core_accept_failed(&l->core, lfd, err);

	if (next != CORE_ACCEPT_GO_ON)
		uloop_stop_listeners(l, next == CORE_ACCEPT_PAUSED);
	return next;
}

/*
 * A client waits on listener i while descriptors are out: accept as
 * epoll does (accept4, bounded per wakeup). Once one is accepted,
 * arm_listeners goes back to multishot accept.
 */
void uloop_handle_lpoll(struct uloop *l, uint32_t i, int res)
{
	int lfd = l->core.listen_fds[i], fd;

	l->accept_state[i] = 0;
	if (res < 0 || l->stopping)
		return;
	for (int k = 0; k < CORE_ACCEPTS_PER_WAKEUP; k++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			uloop_add_conn(l, fd, lfd);
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		else if (accept_failed(l, lfd, errno) != CORE_ACCEPT_GO_ON)
			return;
	}
}

/*
 * A multishot accept completed: a new descriptor, or an error. It ends
 * on errors (no IORING_CQE_F_MORE) and is armed again by arm_listeners.
 */
void uloop_handle_accept(struct uloop *l, uint32_t i,
			 const struct io_uring_cqe *cqe)
{
	int lfd = l->core.listen_fds[i], res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->accept_state[i] = 0;
	if (res >= 0 && l->stopping)
		close(res); /* nobody would serve it */
	else if (res >= 0)
		uloop_add_conn(l, res, lfd);
	else if (res != -ECANCELED)
		accept_failed(l, lfd, -res);
}

void uloop_arm_listeners(struct uloop *l)
{
	struct io_uring_sqe *sqe;
	int lfd;

	if (l->stopping || core_paused(&l->core))
		return;
	for (int i = 0; i < l->core.nlisten; i++) {
		if (l->accept_state[i])
			continue;
		sqe = uloop_get_sqe(l);
		if (sqe == NULL)
			return;
		lfd = l->core.listen_fds[i];
		if (l->core.exhausted) {
			io_uring_prep_poll_add(sqe, lfd, POLLIN);
			io_uring_sqe_set_data64(
				sqe, ud_pack(OP_LPOLL, 0, (uint32_t)i));
			l->accept_state[i] = A_ARMED | A_POLL;
			continue;
		}
		io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL,
					       SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe,
					ud_pack(OP_ACCEPT, 0, (uint32_t)i));
		l->accept_state[i] = A_ARMED;
	}
}

/*
 * UDP rides on one-shot polls: the core serves a bounded number of
 * batches, and a poll armed again on a socket that still holds
 * datagrams fires at once, as level-triggered epoll.
 */
void uloop_arm_udp(struct uloop *l)
{
	struct io_uring_sqe *sqe;

	for (int i = 0; i < l->core.nudp && !l->stopping; i++) {
		if (l->udp_armed[i])
			continue;
		sqe = uloop_get_sqe(l);
		if (sqe == NULL)
			return;
		io_uring_prep_poll_add(sqe, l->core.udp_fds[i], POLLIN);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_UPOLL, 0, (uint32_t)i));
		l->udp_armed[i] = true;
	}
}

void uloop_handle_udp(struct uloop *l, uint32_t i, int res)
{
	l->udp_armed[i] = false;
	if (res >= 0 && !l->stopping)
		core_serve_udp(&l->core, (int)i);
}

#endif /* HAVE_LIBURING */
