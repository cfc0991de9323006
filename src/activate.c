// SPDX-License-Identifier: BSD-2-Clause
/* activate.c - taking over sockets from systemd or inetd, checked. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activate.h"
#include "net.h"

enum kind {
	K_LISTEN,
	K_CONN,
	K_DGRAM,
};

static int int_opt(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, level, name, v, &len) < 0 ? -errno : 0;
}

/*
 * What fd is: a listening or connected TCP socket, or a UDP one (with
 * pktinfo turned on, as echod's own). Makes it non-blocking and
 * close-on-exec. Returns the kind, or -errno.
 */
static int classify(int fd)
{
	int type, listening, domain, v6only = 0, flags;

	if (int_opt(fd, SOL_SOCKET, SO_TYPE, &type) < 0 ||
	    int_opt(fd, SOL_SOCKET, SO_DOMAIN, &domain) < 0 ||
	    int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening) < 0)
		return -ENOTSOCK;
	if (domain != AF_INET && domain != AF_INET6)
		return -EAFNOSUPPORT;
	if (type != SOCK_STREAM && type != SOCK_DGRAM)
		return -ESOCKTNOSUPPORT;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	if (type == SOCK_STREAM)
		return listening ? K_LISTEN : K_CONN;
	if (domain == AF_INET6)
		int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only);
	flags = net_udp_pktinfo(fd, domain == AF_INET6, v6only);
	return flags < 0 ? flags : K_DGRAM;
}

/* Adds fd, of kind k, to a; returns 0 or -EINVAL / -ENOSPC. */
static int add(struct activation *a, int fd, int k, int total)
{
	if (k == K_CONN) {
		/* Accept=yes passes one connection, alone. */
		if (total != 1)
			return -EINVAL;
		a->conn = fd;
	} else if (k == K_LISTEN) {
		if (a->nstream == OPTIONS_MAX_BINDS)
			return -ENOSPC;
		a->stream[a->nstream++] = fd;
	} else {
		if (a->ndgram == OPTIONS_MAX_BINDS)
			return -ENOSPC;
		a->dgram[a->ndgram++] = fd;
	}
	return 0;
}

int activate_systemd(struct activation *a, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int n, k;

	memset(a, 0, sizeof(*a));
	a->conn = -1;
	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		return 0;
	n = atoi(fds);
	/* Ours now: nothing we might start should take them for its own. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n < 1 || n > 2 * OPTIONS_MAX_BINDS) {
		snprintf(err, errlen, "LISTEN_FDS=%s: expected 1 to %d sockets",
			 fds, 2 * OPTIONS_MAX_BINDS);
		return -EINVAL;
	}
	for (int fd = 3; fd < 3 + n; fd++) {
		k = classify(fd);
		if (k >= 0)
			k = add(a, fd, k, n);
		if (k < 0) {
			snprintf(
				err, errlen,
				"socket activation: fd %d: %s (expected a listening TCP or a UDP socket, or one TCP connection)",
				fd, strerror(-k));
			return k;
		}
	}
	return 1;
}

int activate_inetd(struct activation *a, char *err, size_t errlen)
{
	int k = classify(STDIN_FILENO);

	memset(a, 0, sizeof(*a));
	a->conn = -1;
	if (k == K_CONN) {
		a->conn = STDIN_FILENO;
	} else if (k == K_DGRAM) {
		a->dgram[a->ndgram++] = STDIN_FILENO;
	} else {
		snprintf(
			err, errlen,
			"--inetd: standard input: %s (expected a TCP connection or a UDP socket)",
			k == K_LISTEN ? "a listening socket" : strerror(-k));
		return k == K_LISTEN ? -EINVAL : k;
	}
	return 0;
}

const char *activate_family(int fd)
{
	union net_addr a;
	socklen_t len = sizeof(a);
	int v6only = 1;

	if (getsockname(fd, &a.sa, &len) < 0 || a.sa.sa_family == AF_INET)
		return "IPv4";
	int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only);
	if (!v6only && IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr))
		return "dual-stack";
	return "IPv6 only";
}
