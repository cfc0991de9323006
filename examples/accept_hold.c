// SPDX-License-Identifier: BSD-2-Clause
/* accept_hold.c: the lecture's accepted connection, held open for ss(8). */

/*
 * The lecture's "socket in the OS kernel (2)" program, in C:
 *
 *	so = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
 *	print(so.fileno())
 *	...setsockopt SO_REUSEADDR, bind, listen...
 *	so2, _ = so.accept()
 *	print(so2.fileno())
 *	msg = so2.recv(128)
 *	while True: pass
 *
 * It shows an established connection as the kernel keeps it: ss lists it as
 * ESTAB, owned by users:(("accept_hold",pid=...,fd=4)), beside the LISTEN
 * socket on fd 3, and the client's own ESTAB socket facing it. Recv-Q and
 * Send-Q are the kernel's queues for the connection: bytes received but not
 * yet read by the program, and bytes sent but not yet acknowledged. Type
 * more lines into the client after the first: nobody reads them any more,
 * so they pile up in this program's Recv-Q.
 *
 * Usage:	accept_hold [port]	(default 60000; 0 lets the kernel pick)
 *
 * Output, on stdout; then nothing until Ctrl-C:
 *	listening on 0.0.0.0:60000 (fd 3)
 *	accepted 127.0.0.1:46744 (fd 4)
 *	received 7 bytes
 *
 * In another window:
 *	telnet 127.0.0.1 60000	type a line, then more lines
 *	ss -tap			(a third window) ESTAB with its Recv-Q
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
	struct sockaddr_in addr = {0}, peer;
	socklen_t len;
	int port = 60000, one = 1, lfd, cfd;
	char buf[128];
	ssize_t n;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: accept_hold [port]\n");
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

	/* listen(): the kernel now accepts connections and queues 128. */
	if (listen(lfd, 128) == -1)
		err(1, "listen");

	/* getsockname(): the address really bound (the port, if 0 asked). */
	len = sizeof(addr);
	if (getsockname(lfd, (struct sockaddr *)&addr, &len) == -1)
		err(1, "getsockname");
	show("listening on", &addr, lfd);

	/*
	 * accept(): take one connection off the queue; it gets a socket, and a
	 * descriptor, of its own. The LISTEN socket stays open beside it.
	 */
	do {
		len = sizeof(peer);
		cfd = accept(lfd, (struct sockaddr *)&peer, &len);
	} while (cfd == -1 && errno == EINTR);
	if (cfd == -1)
		err(1, "accept");
	show("accepted", &peer, cfd);

	/*
	 * recv(): read once, up to 128 bytes, and never again: anything the
	 * client sends later stays in the kernel, in this socket's Recv-Q.
	 */
	do {
		n = recv(cfd, buf, sizeof(buf), 0);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		err(1, "recv");
	printf("received %zd bytes\n", n);
	if (fflush(stdout) == EOF)
		err(1, "stdout");

	/*
	 * Hold both sockets open. The slide's `while True: pass` spins, one
	 * CPU at 100% doing nothing; pause() sleeps until a signal instead.
	 * The kernel keeps the connection (and acknowledges the client's
	 * bytes) on its own. Ctrl-C ends the process and the kernel closes
	 * its sockets; pause() returns (-1, EINTR) only after a signal
	 * handler ran, and there is none, so the loop is just a guard.
	 */
	for (;;)
		pause();
}
