// SPDX-License-Identifier: BSD-2-Clause
/* echo_once.c: the lecture's first server: echo one message, then close. */

/*
 * The lecture's first socket program, in C:
 *
 *	so = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
 *	so.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
 *	so.bind(('', 60000))
 *	so.listen()
 *	so2, _ = so.accept()
 *	msg = so2.recv(128)
 *	so2.send(msg)
 *	so2.close()
 *	so.close()
 *
 * It shows the steps every TCP server takes: socket() makes an endpoint,
 * bind() gives it an address, listen() makes it a listening socket, accept()
 * returns a second socket for one connection, and recv()/send() move bytes
 * over that second socket. Each Python call is one system call here.
 *
 * Usage:	echo_once [port]	(default 60000; 0 lets the kernel pick)
 *
 * Output, on stdout, one line after listen() and one after accept():
 *	listening on 0.0.0.0:60000 (fd 3)
 *	accepted 127.0.0.1:46736 (fd 4)
 *
 * In another window:
 *	telnet 127.0.0.1 60000	type a line: it comes back, then telnet says
 *				"Connection closed by foreign host."
 *	echo hi | nc -N 127.0.0.1 60000		the same from a script
 *	ss -tap			while it waits: the LISTEN socket and its owner
 *
 * Exit status: 0 after the echo, 1 if a system call fails (one line on
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

/*
 * Sends all len bytes of buf. A blocking send() usually takes everything,
 * but it may return a short count (a signal arrived after part was copied
 * into the socket's send buffer), and a non-blocking one does whenever that
 * buffer is full; Python's sendall() hides this loop, C does not.
 */
static void send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		/*
		 * MSG_NOSIGNAL: if the peer is gone, fail with EPIPE here
		 * instead of being killed silently by SIGPIPE.
		 */
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue; /* a signal, nothing sent: retry */
			err(1, "send");
		}
		buf += n;
		len -= (size_t)n;
	}
}

int main(int argc, char *argv[])
{
	struct sockaddr_in addr = {0}, peer;
	socklen_t len;
	int port = 60000, one = 1, lfd, cfd;
	char buf[128];
	ssize_t n;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: echo_once [port]\n");
		return 2;
	}
	if (argc == 2)
		port = parse_port(argv[1]);

	/* socket(): a new TCP/IPv4 endpoint, named by a file descriptor. */
	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (lfd == -1)
		err(1, "socket");

	/*
	 * SO_REUSEADDR: let bind() take the port even while connections of a
	 * previous run still sit in TIME-WAIT, so the program can be rerun at
	 * once (the lecture's second ss listing shows one such TIME-WAIT).
	 */
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		err(1, "setsockopt SO_REUSEADDR");

	/*
	 * bind(): the address clients connect to. INADDR_ANY (0.0.0.0, '' in
	 * Python) means every local address; the port goes in network byte
	 * order, hence htons().
	 */
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	addr.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == -1)
		err(1, "bind port %d", port);

	/*
	 * listen(): from now on the kernel completes TCP handshakes by itself
	 * and queues up to 128 connections until accept() takes them. 128 is
	 * what Python's listen() asks for; ss shows it as the LISTEN socket's
	 * Send-Q.
	 */
	if (listen(lfd, 128) == -1)
		err(1, "listen");

	/* getsockname(): the address really bound (the port, if 0 asked). */
	len = sizeof(addr);
	if (getsockname(lfd, (struct sockaddr *)&addr, &len) == -1)
		err(1, "getsockname");
	show("listening on", &addr, lfd);

	/*
	 * accept(): sleep until a connection is queued, then return a new
	 * socket for it (with the client's address in peer). lfd stays a
	 * listening socket; the conversation happens on cfd.
	 */
	do {
		len = sizeof(peer);
		cfd = accept(lfd, (struct sockaddr *)&peer, &len);
	} while (cfd == -1 && errno == EINTR);
	if (cfd == -1)
		err(1, "accept");
	show("accepted", &peer, cfd);

	/*
	 * recv(): sleep until bytes arrive, then return up to 128 of them (0
	 * means the client closed without sending). TCP carries a byte stream,
	 * not messages: one recv() returns whatever has arrived so far.
	 */
	do {
		n = recv(cfd, buf, sizeof(buf), 0);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		err(1, "recv");

	/* send(): the same bytes back, all of them. */
	send_all(cfd, buf, (size_t)n);

	/*
	 * close(): release both descriptors; closing cfd sends the client a
	 * FIN, its end-of-file. (A failing close() is not retried: on Linux
	 * the descriptor is gone even then.)
	 */
	if (close(cfd) == -1)
		err(1, "close accepted socket");
	if (close(lfd) == -1)
		err(1, "close listening socket");
	return 0;
}
