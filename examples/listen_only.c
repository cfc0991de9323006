// SPDX-License-Identifier: BSD-2-Clause
/* listen_only.c: the lecture's listening socket, left for ss(8) to see. */

/*
 * The lecture's "socket in the OS kernel" program, in C:
 *
 *	so = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
 *	print(so.fileno())
 *	so.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
 *	so.bind(('', 60000))
 *	so.listen()
 *	while True: pass
 *
 * It shows that a socket lives in the kernel, not in the program: once
 * listen() returns, the program does nothing at all, yet ss lists the LISTEN
 * socket with its owner, users:(("listen_only",pid=...,fd=3)). The kernel
 * even completes handshakes by itself: connect with nc and the connection
 * is ESTAB although nobody calls accept(); it waits in the accept queue,
 * counted in the LISTEN socket's Recv-Q (Send-Q shows the queue's limit).
 *
 * Usage:	listen_only [port]	(default 60000; 0 lets the kernel pick)
 *
 * Output, on stdout, one line after listen(), then nothing until Ctrl-C:
 *	listening on 0.0.0.0:60000 (fd 3)
 *
 * In another window:
 *	ss -tap			the LISTEN socket, its pid and fd
 *	nc 127.0.0.1 60000	then ss -tap again: ESTAB, and Recv-Q 1 on
 *				the LISTEN line (one connection not accepted)
 *
 * Exit status: runs until killed; 1 if a system call fails (one line on
 * stderr naming it), 2 for a bad argument.
 */

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Returns the port named by s, 0-65535, or exits with status 2. strtol()
 * alone would also take "", " 80", "+80" and "80x", so check by hand.
 */
static int parse_port(const char *s)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		errx(2, "port %s: not a number", s);
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0')
		errx(2, "port %s: not a number", s);
	if (errno == ERANGE || v > 65535)
		errx(2, "port %s: too large", s);
	return (int)v;
}

/* Prints "<what> <address>:<port> (fd <fd>)" and flushes it at once. */
static void show(const char *what, const struct sockaddr_in *sin, int fd)
{
	char host[INET_ADDRSTRLEN];

	if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) == NULL)
		err(1, "inet_ntop");
	printf("%s %s:%u (fd %d)\n", what, host, ntohs(sin->sin_port), fd);
	/* stdout to a pipe is fully buffered: flush so a reader sees it now. */
	if (fflush(stdout) == EOF)
		err(1, "stdout");
}

int main(int argc, char *argv[])
{
	struct sockaddr_in addr = {0};
	socklen_t len;
	int port = 60000, one = 1, lfd;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: listen_only [port]\n");
		return 2;
	}
	if (argc == 2)
		port = parse_port(argv[1]);

	/* socket(): a new TCP/IPv4 endpoint, named by a file descriptor. */
	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (lfd == -1)
		err(1, "socket");

	/* SO_REUSEADDR: rebind at once despite a past run's TIME-WAITs. */
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		err(1, "setsockopt SO_REUSEADDR");

	/* bind(): every local address (0.0.0.0), port in network order. */
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	addr.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == -1)
		err(1, "bind port %d", port);

	/*
	 * listen(): the socket becomes a LISTEN socket in the kernel's tables.
	 * Up to 128 completed connections (Python's default, ss's Send-Q on
	 * the LISTEN line) wait for an accept() that never comes here.
	 */
	if (listen(lfd, 128) == -1)
		err(1, "listen");

	/* getsockname(): the address really bound (the port, if 0 asked). */
	len = sizeof(addr);
	if (getsockname(lfd, (struct sockaddr *)&addr, &len) == -1)
		err(1, "getsockname");
	show("listening on", &addr, lfd);

	/*
	 * Stay alive so the socket stays open. The slide's `while True: pass`
	 * does that by spinning, burning a whole CPU for nothing. pause()
	 * instead puts the process to sleep until a signal arrives: the
	 * kernel keeps the socket listening without any help from us. With no
	 * signal handlers installed, Ctrl-C (SIGINT) simply ends the process,
	 * and the kernel closes its sockets; pause() returns (-1, EINTR) only
	 * after a handler ran, so sleep again.
	 */
	for (;;)
		pause();
}
