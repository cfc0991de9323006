// SPDX-License-Identifier: BSD-2-Clause
/* net.c - socket set-up and address text for echod; no logging here. */
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
 * Whether descriptor fd is a member of the SO_REUSEPORT group of the
 * socket bound to *me: a socket of the same type bound to the same
 * address and port with SO_REUSEPORT on, and, for TCP, listening (an
 * accepted connection has the same local address).
 */
static bool same_group(int fd, const union net_addr *me, socklen_t me_len,
		       int type)
{
	union net_addr a;
	socklen_t len = sizeof(int);
	int v = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != type)
		return false;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) < 0 || !v)
		return false;
	len = sizeof(v);
	if (type == SOCK_STREAM &&
	    (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v))
		return false;
	len = sizeof(a);
	if (getsockname(fd, &a.sa, &len) < 0 || len != me_len)
		return false;
	return memcmp(&a, me, len) == 0;
}

/*
 * Counts the members of fd's SO_REUSEPORT group that this process holds,
 * fd included, from its descriptor table: state kept in the kernel, so
 * that net.c needs none of its own. Returns the count or -errno.
 */
static int count_own_members(int fd, int type)
{
	union net_addr me;
	socklen_t len = sizeof(me);
	struct dirent *e;
	DIR *d;
	int n = 0, other;

	if (getsockname(fd, &me.sa, &len) < 0)
		return -errno;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		other = atoi(e->d_name);
		if (other != dirfd(d) && same_group(other, &me, len, type))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * Gives fd's SO_REUSEPORT group a classic BPF program that picks one of
 * the group's first n sockets for each new connection or datagram.
 *
 * The kernel keeps a group's sockets in an array in the order they
 * joined and runs the program to get an index into it; an index past
 * the end falls back to its own hash over all members. echod's sockets
 * join first (the first one carries this program from before its bind),
 * so a socket that another process of the same user adds later sits at
 * index n or above and is never chosen, as long as the program never
 * returns n or more: every path below ends in "mod n", and a load the
 * packet is too short for ends the program with 0.
 *
 * The choice hashes the source address's low 32 bits and the source
 * port (read relative to the network header, as the program runs with
 * the transport header already pulled), with random odd multipliers so
 * that clients cannot aim at one worker. Two rounds of multiply and
 * xor-shift, not one: one client's connections come from ports in a
 * short even-stepped run, and a single multiply sent all 20 of them to
 * one worker for about one key in forty. Returns 0 or -errno.
 */
static int steer_group(int fd, unsigned int n)
{
	uint32_t key[2];
	struct sock_filter code[] = {
		/* IPv4 or IPv6 (a dual-stack socket sees both)? */
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 5, 0),
		/* IPv4: the port follows a header of IHL words. */
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, SKF_NET_OFF),
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_NET_OFF),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
		BPF_JUMP(BPF_JMP | BPF_JA, 3, 0, 0),
		/* IPv6 (with extension headers: other bytes, still mod n). */
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_NET_OFF + 40),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 20),
		/* Both: combine, mix (h *= k; h ^= h >> 16; twice), reduce. */
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};

	enum {
		KEY1 = 12,
		KEY2 = 16,
		MOD_N = 20
	};
	struct sock_fprog prog;

	/* Zeroed whole: the kernel copies the padding after len too. */
	memset(&prog, 0, sizeof(prog));
	prog.len = sizeof(code) / sizeof(code[0]);
	prog.filter = code;
	/* Without entropy yet (early boot), the fixed keys above serve. */
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != sizeof(key))
		key[0] = 2654435761u, key[1] = 2246822519u;
	code[KEY1].k = key[0] | 1;
	code[KEY2].k = key[1] | 1;
	code[MOD_N].k = n ? n : 1;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
		       sizeof(prog)) < 0)
		return -errno;
	return 0;
}

/*
 * The first socket on a port: its group (of one) gets its program while
 * the socket is not yet bound, which needs SO_REUSEPORT on. It is then
 * turned off again for bind(), so that the bind fails if anyone holds
 * the port, and for listen(), so that the socket cannot join a group
 * another process formed in between; claim_done() turns it on.
 */
static int steer_first(int fd)
{
	int err;

	err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!err)
		err = steer_group(fd, 1);
	if (!err)
		err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 0);
	return err;
}

/*
 * After a socket has claimed its port (or joined this process's group
 * on it): the first one opens the group to this process's later sockets;
 * a later one widens the group's program to cover itself, counted from
 * the descriptor table. Until then the old program, covering the
 * sockets before it, stays in force, so no index is ever out of range.
 */
static int claim_done(int fd, int type, int flags)
{
	int n;

	if (!(flags & NET_REUSEPORT))
		return set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	n = count_own_members(fd, type);
	if (n < 0)
		return n;
	return steer_group(fd, (unsigned int)n);
}

/*
 * Opens a non-blocking socket of type bound to a (and listening, for
 * SOCK_STREAM, with backlog), with the v6-only choice of flags. Without
 * NET_REUSEPORT the bind fails if anyone holds the port; with it, the
 * socket joins the group this process's first socket formed there. See
 * net_listen_tcp() for who else can join and why they get no traffic.
 * Returns the fd or -errno.
 */
static int open_bound(const union net_addr *a, int type, int backlog, int flags)
{
	int fd, err = 0;

	fd = socket(a->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * SO_REUSEADDR lets a restarted server bind over its old
	 * connections in TIME_WAIT. On UDP there is no TIME_WAIT and it
	 * would let any user's socket with the option share the port.
	 */
	if (type == SOCK_STREAM)
		err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && a->sa.sa_family == AF_INET6)
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
				  !!(flags & NET_V6ONLY));
	if (!err)
		err = flags & NET_REUSEPORT
			      ? set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)
			      : steer_first(fd);
	if (!err && bind(fd, &a->sa, net_addr_len(a)) < 0)
		err = -errno;
	if (!err && type == SOCK_STREAM && listen(fd, backlog) < 0)
		err = -errno;
	if (!err)
		err = claim_done(fd, type, flags);
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

	fd = open_bound(a, SOCK_STREAM, backlog, flags);
	if (fd < 0)
		return fd;
	if (getsockname(fd, &bound->sa, &len) < 0) {
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

	fd = open_bound(a, SOCK_DGRAM, 0, flags);
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

/* The jump from instruction at to target, as a jt or jf offset. */
static uint8_t jump_to(unsigned int at, unsigned int target)
{
	return (uint8_t)(target - at - 1);
}

static uint32_t key_word(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static bool shed_v4(const struct net_shed *sh)
{
	return IN6_IS_ADDR_V4MAPPED(
		(const struct in6_addr *)(const void *)sh->key);
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, jt, jf) \
	((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf))

/*
 * Writes from c[pc] the comparisons of the source address with each
 * shed source of one IP version (IPv4 at offset 12 of the network
 * header, an IPv6 /64 at 8), noting in match[i] the jump to patch for
 * source i, and a "keep" for no match. Returns the next pc.
 */
static unsigned int shed_matches(struct sock_filter *c, unsigned int pc,
				 const struct net_shed *shed, unsigned int n,
				 bool v4, unsigned int *match)
{
	if (v4)
		c[pc++] = STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12);
	for (unsigned int i = 0; i < n; i++) {
		if (shed_v4(&shed[i]) != v4)
			continue;
		if (!v4) {
			c[pc++] =
				STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8);
			c[pc++] = JEQ(key_word(shed[i].key), 0, 2);
			c[pc++] = STMT(BPF_LD | BPF_W | BPF_ABS,
				       SKF_NET_OFF + 12);
		}
		match[i] = pc;
		c[pc++] = JEQ(key_word(shed[i].key + (v4 ? 12 : 4)), 0, 0);
	}
	c[pc++] = STMT(BPF_RET | BPF_K, 0xffffffff);
	return pc;
}

/*
 * The program: the IP version from the network header, the source
 * address against each shed source of that version; a match jumps to
 * that source's block, which passes a random 1 in 2^shift. Returning 0
 * drops the datagram; -1 keeps it whole (a smaller number would trim
 * it).
 */
int net_udp_shed(int fd, const struct net_shed *shed, unsigned int n)
{
	struct sock_filter c[8 + 7 * NET_SHED_MAX];
	unsigned int match[NET_SHED_MAX], block[NET_SHED_MAX];
	unsigned int pc = 0, v6_at, keep, drop, at;
	struct sock_fprog prog;

	if (n == 0) {
		if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, NULL, 0) < 0 &&
		    errno != ENOENT)
			return -errno;
		return 0;
	}
	if (n > NET_SHED_MAX)
		return -EINVAL;
	c[pc++] = STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF);
	c[pc++] = STMT(BPF_ALU | BPF_RSH | BPF_K, 4);
	pc++; /* the jump to IPv6, below */
	v6_at = shed_matches(c, pc, shed, n, true, match);
	pc = shed_matches(c, v6_at, shed, n, false, match);
	c[2] = JEQ(6, jump_to(2, v6_at), 0);
	for (unsigned int i = 0; i < n; i++) {
		block[i] = pc;
		c[pc++] = STMT(BPF_LD | BPF_W | BPF_ABS,
			       SKF_AD_OFF + SKF_AD_RANDOM);
		c[pc++] = STMT(BPF_ALU | BPF_AND | BPF_K,
			       (1u << shed[i].shift) - 1);
		pc++; /* the jump to keep or drop, below */
	}
	keep = pc;
	c[pc++] = STMT(BPF_RET | BPF_K, 0xffffffff);
	drop = pc;
	c[pc++] = STMT(BPF_RET | BPF_K, 0);
	for (unsigned int i = 0; i < n; i++) {
		at = block[i] + 2;
		c[match[i]].jt = jump_to(match[i], block[i]);
		c[at] = JEQ(0, jump_to(at, keep), jump_to(at, drop));
	}
	memset(&prog, 0, sizeof(prog));
	prog.len = (unsigned short)pc;
	prog.filter = c;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) <
	    0)
		return -errno;
	return 0;
}

int net_tune_stream(int fd, unsigned int send_timeout_ms)
{
	/*
	 * Echoes go back as soon as they arrive; Nagle would hold a small
	 * echo until the previous one is acknowledged, and with delayed
	 * ACKs on the client that is tens of milliseconds. Set on the
	 * listener, it costs an accepted connection no call of its own.
	 */
	int err = set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);

	if (err == 0)
		err = set_int_opt(fd, SOL_SOCKET, SO_OOBINLINE, 1);

	if (err == 0 && send_timeout_ms)
		err = set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
				  (int)send_timeout_ms);
	return err;
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
