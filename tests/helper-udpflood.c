// SPDX-License-Identifier: BSD-2-Clause
/*
 * helper-udpflood.c - sends UDP datagrams from one source address and
 * port as fast as sendmmsg allows, for the fairness test: the most one
 * client here can send. Prints the number sent and the rate on exit.
 *
 *   helper-udpflood SRC-ADDR DST-ADDR PORT SECONDS [SIZE]
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	BATCH = 64
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	struct sockaddr_in dst = {.sin_family = AF_INET};
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	static char buf[65536];
	unsigned long long sent = 0;
	double start, end, secs;
	size_t size = 64;
	int fd, n;

	if (argc < 5 || argc > 6)
		errx(2, "usage: helper-udpflood SRC DST PORT SECONDS [SIZE]");
	if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
		errx(2, "addresses are IPv4 dotted quads");
	dst.sin_port = htons((unsigned short)atoi(argv[3]));
	secs = atof(argv[4]);
	if (argc == 6)
		size = (size_t)atol(argv[5]);
	if (size > sizeof(buf))
		errx(2, "size over %zu", sizeof(buf));
	memset(buf, 'f', size);

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err(1, "socket");
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		err(1, "bind %s", argv[1]);
	/* Connected: the kernel routes once, and echoes are not read. */
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		err(1, "connect");
	iov.iov_base = buf;
	iov.iov_len = size;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now();
	end = start + secs;
	while (now() < end) {
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			/* An ICMP error of an earlier datagram, or no room. */
			if (errno == ECONNREFUSED || errno == ENOBUFS ||
			    errno == EAGAIN || errno == EINTR)
				continue;
			err(1, "sendmmsg");
		}
		sent += (unsigned long long)n;
	}
	printf("sent %llu datagrams in %.2f s: %.0f/s\n", sent, now() - start,
	       (double)sent / (now() - start));
	return 0;
}
