// SPDX-License-Identifier: BSD-2-Clause
/* echo3.c: the lecture's exercise: echo three messages, then close. */

/*
 * The lecture's practice: "Change this program to echo a message 3 times",
 * checked with telnet in another window:
 *
 *	$ telnet 127.0.0.1 60000
 *	Trying 127.0.0.1...
 *	Connected to 127.0.0.1.
 *	Escape character is '^]'.
 *	test1
 *	test1
 *	test2
 *	test2
 *	test3
 *	test3
 *	Connection closed by foreign host.
 *
 * Each line appears twice: once as typed (the terminal echoes it), once as
 * this server sends it back. After the third round trip (recv, then send)
 * the server closes the connection, and telnet reports the end-of-file as
 * "Connection closed by foreign host."
 *
 * A "message" here is what one recv() returns. TCP keeps no message
 * boundaries; with telnet each Enter sends one line in one segment, and the
 * server waits for each echo to be read, so one recv() gets one line. A
 * client that sends two lines at once may see both counted as one message.
 *
 * Usage:	echo3 [port]	(default 60000; 0 lets the kernel pick)
 *
 * Output, on stdout, after listen(), accept() and each round trip:
 *	listening on 0.0.0.0:60000 (fd 3)
 *	accepted 127.0.0.1:46736 (fd 4)
 *	message 1: 7 bytes
 *	message 2: 7 bytes
 *	message 3: 7 bytes
 *
 * In another window:
 *	telnet 127.0.0.1 60000	type test1, test2, test3 as above
 *	nc 127.0.0.1 60000	the same with nc, which stays until Ctrl-D
 *
 * Exit status: 0 after the third echo (or if the client leaves early),
 * 1 if a system call fails (one line on stderr naming it), 2 for a bad
 * argument.
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

/*
 * One round trip: receives up to sizeof(buf) bytes on fd and sends them
 * back. Returns how many bytes were echoed; 0 means the client closed.
 */
static ssize_t echo_one(int fd)
{
	char buf[128];
	ssize_t n;

	/* recv(): sleep until bytes arrive; 0 is the client's end-of-file. */
	do {
		n = recv(fd, buf, sizeof(buf), 0);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		err(1, "recv");

	/* send(): the same bytes back, all of them. */
	send_all(fd, buf, (size_t)n);
	return n;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in addr = {0}, peer;
	socklen_t len;
	int port = 60000, one = 1, lfd, cfd, i;
	ssize_t n;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: echo3 [port]\n");
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

	/* accept(): wait for one client; talk to it on the new socket cfd. */
	do {
		len = sizeof(peer);
		cfd = accept(lfd, (struct sockaddr *)&peer, &len);
	} while (cfd == -1 && errno == EINTR);
	if (cfd == -1)
		err(1, "accept");
	show("accepted", &peer, cfd);

	/* The exercise: the first program's recv() and send(), three times. */
	for (i = 1; i <= 3; i++) {
		n = echo_one(cfd);
		if (n == 0) {
			warnx("client closed before message %d", i);
			break;
		}
		printf("message %d: %zd bytes\n", i, n);
		if (fflush(stdout) == EOF)
			err(1, "stdout");
	}

	/*
	 * close(): the client gets end-of-file ("Connection closed by foreign
	 * host." in telnet); then stop listening.
	 */
	if (close(cfd) == -1)
		err(1, "close accepted socket");
	if (close(lfd) == -1)
		err(1, "close listening socket");
	return 0;
}
