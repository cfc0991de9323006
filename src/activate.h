// SPDX-License-Identifier: BSD-2-Clause
/*
 * activate.h - sockets echod is given instead of opening: by systemd
 * (socket activation, LISTEN_PID/LISTEN_FDS, from fd 3 on) or by inetd
 * (--inetd, on standard input). Each is checked for what it is.
 */
#ifndef ECHOD_ACTIVATE_H
#define ECHOD_ACTIVATE_H

#include <stddef.h>

#include "options.h"

struct activation {
	int stream[OPTIONS_MAX_BINDS]; /* listening TCP sockets */
	int nstream;
	int dgram[OPTIONS_MAX_BINDS]; /* UDP sockets */
	int ndgram;
	int conn; /* one connected TCP socket to serve, then exit; or -1 */
};

/*
 * When LISTEN_PID is this process and LISTEN_FDS is set: fills a with
 * the passed sockets (made non-blocking and close-on-exec), unsets the
 * variables, and returns 1. Returns 0 when not socket-activated, or
 * -errno with err naming the descriptor that is not a listening stream
 * or a datagram socket (or one connected stream socket alone, as
 * Accept=yes passes).
 */
int activate_systemd(struct activation *a, char *err, size_t errlen);

/*
 * --inetd: standard input is a connected stream socket (a->conn) or a
 * datagram socket (a->dgram[0]). Returns 0, or -errno with err.
 */
int activate_inetd(struct activation *a, char *err, size_t errlen);

/* Whether the socket fd serves IPv4, IPv6 only, or both, for the log. */
const char *activate_family(int fd);

#endif
