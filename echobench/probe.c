// SPDX-License-Identifier: BSD-2-Clause
/*
 * probe.c - start-up checks, so that an unreachable server or a missing
 * file-descriptor budget is one clear line before any load starts.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"
#include "opts.h"
#include "probe.h"

enum {
	PROBE_MS = 2000,
};

/* Waits for fd to be ready for events; 0, or an errno value. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	socklen_t len = sizeof(int);
	int n, e = 0;

	do
		n = poll(&p, 1, PROBE_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	if (n == 0)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len))
		return errno;
	return e;
}

/* TCP: a handshake within 2 s. UDP: one datagram echoed within 2 s. */
void probe_server(const struct bench_opts *o)
{
	char buf[16] = "echobench probe";
	int fd, e = 0;

	fd = socket(o->addr.ss_family,
		    (o->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
			    SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		err(1, "socket");
	/* From where the load comes from: a --source that cannot reach fails
	 * here. */
	e = -lg_bind_source(fd, o, 0);
	if (!e && connect(fd, (const struct sockaddr *)&o->addr, o->addrlen))
		e = errno;
	if (e == EINPROGRESS)
		e = wait_fd(fd, POLLOUT);
	if (!e && o->udp) {
		if (send(fd, buf, sizeof(buf), 0) < 0)
			e = errno;
		else if (!(e = wait_fd(fd, POLLIN)) && recv(fd, buf, 16, 0) < 0)
			e = errno;
	}
	close(fd);
	if (e == ETIMEDOUT && o->udp)
		errx(1, "%s: no UDP echo within 2 s", o->target);
	if (e)
		errx(1, "connect %s: %s", o->target, strerror(e));
}

void probe_nofile(const struct bench_opts *o)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)o->connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		err(1, "getrlimit");
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		err(1, "setrlimit");
	if (rl.rlim_cur < want)
		errx(1,
		     "%u connections need %llu file descriptors, the limit is %llu",
		     o->connections, (unsigned long long)want,
		     (unsigned long long)rl.rlim_max);
}
