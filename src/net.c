/* net.c - socket set-up and address text for echod; no logging here. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

int net_parse_addr(const char *text, unsigned int port, union net_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(text);

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons((uint16_t)port);
		return 0;
	}
	/* Accept "[::1]" as well as "::1", as people copy it from URLs. */
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']' &&
	    n - 2 < sizeof(buf)) {
		memcpy(buf, text + 1, n - 2);
		buf[n - 2] = '\0';
		text = buf;
	}
	if (inet_pton(AF_INET6, text, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -EINVAL;
}

void net_wildcard(union net_addr *a, bool ipv6, unsigned int port)
{
	memset(a, 0, sizeof(*a));
	if (ipv6) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr = in6addr_any;
		a->in6.sin6_port = htons((uint16_t)port);
	} else {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(INADDR_ANY);
		a->in.sin_port = htons((uint16_t)port);
	}
}

socklen_t net_addr_len(const union net_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

unsigned int net_addr_port(const union net_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port
						 : a->in.sin_port);
}

void net_set_port(union net_addr *a, unsigned int port)
{
	if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons((uint16_t)port);
	else
		a->in.sin_port = htons((uint16_t)port);
}

char *net_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	union net_addr a;
	const struct sockaddr_in6 *in6 = &a.in6;
	const struct sockaddr_in *in = &a.in;

	/* Copied, not cast: the caller's sockaddr may be less aligned. */
	memcpy(&a, sa,
	       sa->sa_family == AF_INET6 ? sizeof(a.in6) : sizeof(a.in));

	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		/* An IPv4 peer on a dual-stack socket: show it as IPv4. */
		inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host,
			  sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
	return buf;
}

static int set_int_opt(int fd, int level, int name, int value)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
		return -errno;
	return 0;
}

/*
 * Opens a non-blocking socket of type bound to a, with SO_REUSEADDR and
 * the v6-only choice of flags. Without NET_REUSEPORT the bind fails if
 * anyone holds the port; SO_REUSEPORT is set only after it, so that this
 * process's other workers can join the port's group but no other program
 * can. Returns the fd or -errno.
 */
static int open_bound(const union net_addr *a, int type, int flags)
{
	int fd, err;

	fd = socket(a->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && a->sa.sa_family == AF_INET6)
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
				  !!(flags & NET_V6ONLY));
	if (!err && (flags & NET_REUSEPORT))
		err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!err && bind(fd, &a->sa, net_addr_len(a)) < 0)
		err = -errno;
	if (!err && !(flags & NET_REUSEPORT))
		err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int net_listen_tcp(const union net_addr *a, int backlog, int flags,
		   union net_addr *bound)
{
	socklen_t len = sizeof(*bound);
	int fd, err;

	fd = open_bound(a, SOCK_STREAM, flags);
	if (fd < 0)
		return fd;
	if (listen(fd, backlog) < 0 || getsockname(fd, &bound->sa, &len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int net_udp_pktinfo(int fd, bool v6, bool v6only)
{
	int err = 0;

	if (v6)
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	/* A dual-stack socket reports IPv4 destinations as IP_PKTINFO. */
	if (!err && (!v6 || !v6only))
		err = set_int_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
	return err;
}

int net_bind_udp(const union net_addr *a, int flags, union net_addr *bound)
{
	socklen_t len = sizeof(*bound);
	bool v6 = a->sa.sa_family == AF_INET6;
	int fd, err;

	fd = open_bound(a, SOCK_DGRAM, flags);
	if (fd < 0)
		return fd;
	err = net_udp_pktinfo(fd, v6, flags & NET_V6ONLY);
	if (!err && getsockname(fd, &bound->sa, &len) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int net_tune_conn(int fd)
{
	/*
	 * Echoes go back as soon as they arrive; Nagle would hold a small
	 * echo until the previous one is acknowledged, and with delayed
	 * ACKs on the client that is tens of milliseconds.
	 */
	return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

int net_refuse_waiting(int lfd, int *reserve, int max,
		       unsigned long long *refused)
{
	int fd = -1, err = 0;

	for (int i = 0; i < max; i++) {
		if (*reserve >= 0)
			close(*reserve);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		err = errno;
		if (fd >= 0) {
			close(fd);
			++*refused;
		}
		*reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
	}
	if (fd >= 0 || err == EAGAIN || err == EWOULDBLOCK)
		return 0;
	return -err;
}

int net_have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}
