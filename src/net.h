// SPDX-License-Identifier: BSD-2-Clause
/* net.h - socket set-up and address text; every call returns >= 0 or -errno. */
#ifndef ECHOD_NET_H
#define ECHOD_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * An IPv4 or IPv6 address with its port: all echod serves, so no
 * sockaddr_storage (100 bytes more in every connection).
 */
union net_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* "[2001:db8::1]:60000" or "192.0.2.1:60000", and room to spare. */
enum {
	NET_ADDR_TEXT = 64
};

/*
 * Parses an IPv4 or IPv6 literal ("::1", "[::1]", "127.0.0.1") into a,
 * with the given port. Returns 0 or -EINVAL.
 */
int net_parse_addr(const char *text, unsigned int port, union net_addr *a);

/* The wildcard address: [::] when the system has IPv6, else 0.0.0.0. */
void net_wildcard(union net_addr *a, bool ipv6, unsigned int port);

socklen_t net_addr_len(const union net_addr *a);
unsigned int net_addr_port(const union net_addr *a);
void net_set_port(union net_addr *a, unsigned int port);

/* Formats a as text into buf (NET_ADDR_TEXT bytes); returns buf. */
char *net_addr_text(const struct sockaddr *sa, char *buf, size_t len);

enum net_listen_flags {
	NET_V6ONLY = 1 << 0, /* an IPv6 socket that refuses IPv4 */
	NET_REUSEPORT = 1 << 1, /* join the port's SO_REUSEPORT group */
};

/*
 * Opens a non-blocking TCP listening socket bound to a (SO_REUSEADDR
 * always). Without NET_REUSEPORT the bind fails if anyone holds the
 * port, and the socket then starts the port's SO_REUSEPORT group; with
 * it, the socket joins the group this process started. Other users
 * cannot join; a socket another process of the same user adds after
 * this process's last is never chosen for a connection (a BPF program
 * picks among this process's sockets only). Reads /proc/self/fd when
 * joining. On success returns the fd and stores the bound address (with
 * the kernel's port when a asked for port 0) in *bound.
 */
int net_listen_tcp(const union net_addr *a, int backlog, int flags,
		   union net_addr *bound);

/*
 * Opens a non-blocking UDP socket bound to a, with the same port-claiming
 * and group rules as net_listen_tcp() (and no SO_REUSEADDR, which on UDP
 * would let any user share the port), and with IP_PKTINFO (and
 * IPV6_RECVPKTINFO) on so that each datagram says which local address
 * it was sent to.
 */
int net_bind_udp(const union net_addr *a, int flags, union net_addr *bound);

/*
 * Asks for each datagram's destination address on UDP socket fd
 * (IPV6_RECVPKTINFO, and IP_PKTINFO unless v6only), so that replies
 * leave from it. Returns 0 or -errno.
 */
int net_udp_pktinfo(int fd, bool v6, bool v6only);

/*
 * A source whose datagrams a UDP socket's filter mostly drops: key is an
 * IPv4 address as ::ffff:a.b.c.d or an IPv6 /64 with its low half zero
 * (access_source_key's form); 1 datagram in 2^shift gets through.
 */
struct net_shed {
	uint8_t key[16];
	unsigned int shift;
};

enum {
	NET_SHED_MAX = 8
};

/*
 * Replaces UDP socket fd's filter with one that passes 1 in 2^shift of
 * the datagrams of each of the n (at most NET_SHED_MAX) sources in shed,
 * chosen at random, and all others; n = 0 removes the filter. The
 * kernel drops the rest before they are queued. Returns 0 or -errno.
 */
int net_udp_shed(int fd, const struct net_shed *shed, unsigned int n);

/*
 * Sets on a TCP socket echod serves, a listener (its connections inherit
 * them) or a given connection: TCP_NODELAY, so that an echo leaves at
 * once; SO_OOBINLINE, so that urgent bytes come in the stream and are
 * echoed in order like any other (RFC 862); and,
 * when send_timeout_ms is not 0, TCP_USER_TIMEOUT, so that the kernel
 * gives up a peer that takes none of what it holds for it (its window
 * shut, or gone) after that long: echod's own queue is not all a
 * non-reader pins. Returns 0 or -errno.
 */
int net_tune_stream(int fd, unsigned int send_timeout_ms);

/*
 * Out of descriptors: refuses up to max clients waiting on listener lfd
 * by giving up the spare descriptor *reserve for each accept and close,
 * then taking it back. Adds the refused to *refused. Returns 0 when the
 * backlog is empty, or -errno when accepting still fails (the caller
 * then pauses accepting rather than spin).
 */
int net_refuse_waiting(int lfd, int *reserve, int max,
		       unsigned long long *refused);

/* Returns 0 when this system can open an IPv6 socket. */
int net_have_ipv6(void);

#endif
