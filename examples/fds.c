// SPDX-License-Identifier: BSD-2-Clause
/* fds.c: the lecture's descriptor program: a socket is a file descriptor. */

/*
 * The lecture's second program, in C:
 *
 *	so = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
 *	print(so.fileno())
 *	...bind, listen...
 *	so2, _ = so.accept()
 *	print(so2.fileno())
 *	so2.send(b'hello world\n')
 *	so2.close()
 *	so.close()
 *
 * It shows that a socket is named by a small integer, a file descriptor,
 * like an open file, and that accept() returns a new one, distinct from the
 * listening socket's: "confirm you see a unique integer for each of listen
 * and accept sockets". The kernel hands out the lowest free number, so with
 * stdin, stdout and stderr open (0, 1, 2) they are usually 3 and 4. Both
 * are printed below; the listening socket's after listen(), not right after
 * socket() as in the slide, so that its line can show the port too.
 *
 * Usage:	fds [port]	(default 60000; 0 lets the kernel pick)
 *
 * Output, on stdout, one line after listen() and one after accept():
 *	listening on 0.0.0.0:60000 (fd 3)
 *	accepted 127.0.0.1:46736 (fd 4)
 *
 * In another window:
 *	nc -N 127.0.0.1 60000 </dev/null	prints "hello world"
 *	telnet 127.0.0.1 60000			the same with telnet
 *	ls -l /proc/$(pgrep -n fds)/fd		while it waits: 3 is a socket
 *
 * Exit status: 0 after sending, 1 if a system call fails (one line on
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
	static const char hello[] = "hello world\n";
	struct sockaddr_in addr = {0}, peer;
	socklen_t len;
	int port = 60000, one = 1, lfd, cfd;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: fds [port]\n");
		return 2;
	}
	if (argc == 2)
		port = parse_port(argv[1]);

	/*
	 * socket(): a new TCP/IPv4 endpoint. What comes back is the number
	 * this process uses to name it from now on, its file descriptor: the
	 * same kind of number open() returns for a file.
	 */
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
	 * accept(): wait for a connection and return a new descriptor for it.
	 * lfd still names the listening socket, so the two numbers differ.
	 */
	do {
		len = sizeof(peer);
		cfd = accept(lfd, (struct sockaddr *)&peer, &len);
	} while (cfd == -1 && errno == EINTR);
	if (cfd == -1)
		err(1, "accept");
	show("accepted", &peer, cfd);

	/* send(): the greeting on the accepted socket, without the NUL. */
	send_all(cfd, hello, sizeof(hello) - 1);

	/* close(): the client sees end-of-file; then stop listening. */
	if (close(cfd) == -1)
		err(1, "close accepted socket");
	if (close(lfd) == -1)
		err(1, "close listening socket");
	return 0;
}
