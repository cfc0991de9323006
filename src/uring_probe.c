// SPDX-License-Identifier: BSD-2-Clause
/*
 * uring_probe.c - what the kernel's io_uring offers: whether the backend
 * can run at all (and why not), the ring's set-up flags, and whether a
 * multishot receive can be given a byte limit and fill several buffers.
 */
#ifdef HAVE_LIBURING

#include <sys/mman.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "log.h"
#include "uring.h"

enum {
	PROBE_BGID = 1, /* apart from the worker's own buffer group */
	PROBE_PAGE = 4096,
};

/* Explains an io_uring_setup failure; the sysctl is the usual cause. */
static void setup_reason(int err, char *why, size_t len)
{
	const char *what = strerror(-err);
	char val[16] = "";
	int fd;

	fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, val, sizeof(val) - 1) < 0)
			val[0] = '\0';
		close(fd);
	}
	val[strcspn(val, "\n")] = '\0';
	if ((err == -EPERM || err == -EACCES) && val[0] && val[0] != '0')
		snprintf(why, len,
			 "io_uring_setup: %s (kernel.io_uring_disabled=%s)",
			 what, val);
	else if (err == -EPERM || err == -EACCES)
		snprintf(
			why, len,
			"io_uring_setup: %s (seccomp filter or kernel.io_uring_disabled?)",
			what);
	else if (err == -ENOSYS)
		snprintf(why, len,
			 "io_uring_setup: %s (kernel without io_uring?)", what);
	else
		snprintf(why, len, "io_uring_setup: %s", what);
}

/*
 * Ends a multishot receive still running on fd: shutdown makes it
 * complete with end-of-file, and its last completion is reaped here so
 * that the ring holds nothing of the probe afterwards.
 */
static void end_receive(struct io_uring *ring, int fd)
{
	struct __kernel_timespec ts = {.tv_sec = 1};
	struct io_uring_cqe *cqe;
	bool more = true;

	shutdown(fd, SHUT_RDWR);
	while (more && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
		more = cqe->flags & IORING_CQE_F_MORE;
		io_uring_cqe_seen(ring, cqe);
	}
}

/*
 * Receives three bytes through a socketpair with a multishot receive
 * into a ring at page (group PROBE_BGID), limited to limit bytes (0:
 * none; the kernel reads the limit where the file index would be). The
 * ring holds one 64-byte buffer, or, for a bundle, two of two bytes.
 * Returns the first completion's result and sets *more to whether the
 * receive goes on; -errno when it could not run.
 */
static int try_multishot(struct io_uring *ring, void *page, unsigned int limit,
			 bool bundle, bool *more)
{
	struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)page,
				       .ring_entries = 2,
				       .bgid = PROBE_BGID};
	struct io_uring_buf_ring *br = page;
	struct __kernel_timespec ts = {.tv_sec = 1};
	struct io_uring_cqe *cqe = NULL;
	struct io_uring_sqe *sqe;
	int sv[2], err;

	err = io_uring_register_buf_ring(ring, &reg, 0);
	if (err < 0)
		return err;
	io_uring_buf_ring_init(br);
	io_uring_buf_ring_add(br, (char *)page + 2048, bundle ? 2 : 64, 0, 1,
			      0);
	if (bundle)
		io_uring_buf_ring_add(br, (char *)page + 2112, 2, 1, 1, 1);
	io_uring_buf_ring_advance(br, bundle ? 2 : 1);
	err = -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		goto out_unregister;
	sqe = io_uring_get_sqe(ring);
	err = -EBUSY;
	if (sqe && write(sv[1], "xyz", 3) == 3) {
		io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = PROBE_BGID;
		sqe->file_index = limit;
		if (bundle)
			sqe->ioprio |= IORING_RECVSEND_BUNDLE;
		io_uring_sqe_set_data64(sqe, 1);
		err = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts,
						       NULL);
	}
	if (err >= 0 && cqe) {
		err = cqe->res;
		*more = cqe->flags & IORING_CQE_F_MORE;
		io_uring_cqe_seen(ring, cqe);
	} else if (err >= 0) {
		err = -ETIME;
	}
	if (err >= 0 && *more)
		end_receive(ring, sv[0]);
	close(sv[0]);
	close(sv[1]);
out_unregister:
	io_uring_unregister_buf_ring(ring, PROBE_BGID);
	return err;
}

static int probe_ring(struct io_uring *ring, void *page, char *why, size_t len)
{
	static const int ops[] = {IORING_OP_ACCEPT, IORING_OP_RECV,
				  IORING_OP_SEND, IORING_OP_POLL_ADD,
				  IORING_OP_ASYNC_CANCEL};
	unsigned int need = IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL |
			    IORING_FEAT_EXT_ARG;
	struct io_uring_probe *p;
	bool all = true, more = false;
	int res;

	if ((ring->features & need) != need) {
		snprintf(
			why, len,
			"io_uring lacks fast poll or ext arg (needs Linux 6.0)");
		return -EOPNOTSUPP;
	}
	p = io_uring_get_probe_ring(ring);
	for (size_t i = 0; p && i < sizeof(ops) / sizeof(ops[0]); i++)
		all &= io_uring_opcode_supported(p, ops[i]) != 0;
	io_uring_free_probe(p);
	if (p == NULL || !all) {
		snprintf(why, len,
			 "io_uring lacks network operations (needs Linux 6.0)");
		return -EOPNOTSUPP;
	}
	/* Buffer rings came in 5.19, multishot receive in 6.0. */
	res = try_multishot(ring, page, 0, false, &more);
	if (res == 3 && more)
		return 0;
	snprintf(why, len, "multishot recv: %s (needs Linux 6.0)",
		 res < 0 ? strerror(-res) : "not supported");
	return res < 0 ? res : -EOPNOTSUPP;
}

int uring_probe(char *why, size_t len)
{
	const char *env = getenv("ECHOD_DISABLE_IO_URING");
	struct io_uring ring;
	void *page;
	int err;

	if (env && env[0] && strcmp(env, "0") != 0) {
		snprintf(why, len, "disabled by ECHOD_DISABLE_IO_URING");
		return -ENOSYS;
	}
	err = io_uring_queue_init(8, &ring, 0);
	if (err < 0) {
		setup_reason(err, why, len);
		return err;
	}
	page = mmap(NULL, PROBE_PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		io_uring_queue_exit(&ring);
		snprintf(why, len, "mmap: %s", strerror(errno));
		return -ENOMEM;
	}
	err = probe_ring(&ring, page, why, len);
	/* The ring goes first: it may still point into the page. */
	io_uring_queue_exit(&ring);
	munmap(page, PROBE_PAGE);
	return err;
}

/*
 * DEFER_TASKRUN runs completions only when we enter the kernel to wait,
 * so one io_uring_enter per loop both submits and reaps a batch.
 */
int uring_setup(struct io_uring *ring, unsigned int entries,
		unsigned int cq_entries)
{
	static const unsigned int modes[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	int err = -EINVAL;

	for (size_t i = 0; i < 3 && err == -EINVAL; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = modes[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = cq_entries;
		err = io_uring_queue_init_params(entries, ring, &p);
		if (err == 0)
			log_debug("io_uring set up with flags %#x", p.flags);
	}
	if (err < 0)
		return err;
	/* Spares the kernel an fd lookup on every io_uring_enter. */
	io_uring_register_ring_fd(ring);
	return 0;
}

/*
 * try_multishot on a page of its own, for a probe once the ring is set
 * up. Returns its result, or -ENOMEM.
 */
static int probe_receive(struct io_uring *ring, unsigned int limit, bool bundle,
			 bool *more)
{
	void *page = mmap(NULL, PROBE_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int res;

	if (page == MAP_FAILED)
		return -ENOMEM;
	res = try_multishot(ring, page, limit, bundle, more);
	/* The receive has ended (or failed): nothing reads the page now. */
	munmap(page, PROBE_PAGE);
	return res;
}

/*
 * A kernel that knows the limit ends the receive after the first byte
 * (no IORING_CQE_F_MORE); an older one refuses the field (-EINVAL).
 */
bool uring_recv_limit_works(struct io_uring *ring)
{
	bool more = true;

	return probe_receive(ring, 1, false, &more) > 0 && !more;
}

/*
 * A kernel that knows bundles (Linux 6.10) takes the flag and receives
 * (the first receive of a bundle may fill one buffer only, not knowing
 * yet how much waits); an older one refuses it (-EINVAL).
 * ECHOD_URING_NO_BUNDLE=1 says no, so that the fallback can be run on
 * any kernel.
 */
bool uring_recv_bundle_works(struct io_uring *ring)
{
	const char *env = getenv("ECHOD_URING_NO_BUNDLE");
	bool more = true;

	if (env && env[0] && strcmp(env, "0") != 0)
		return false;
	return probe_receive(ring, 0, true, &more) > 0;
}

#endif /* HAVE_LIBURING */
