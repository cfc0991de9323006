// SPDX-License-Identifier: BSD-2-Clause
/* opts.h - echobench's command line, parsed into one struct bench_opts. */
#ifndef ECHOBENCH_OPTS_H
#define ECHOBENCH_OPTS_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "threshold.h"

enum bench_mode {
	MODE_PINGPONG, /* closed or open loop, depth messages in flight */
	MODE_STREAM, /* the same loop, deep pipeline, big messages: MB/s */
	MODE_CHURN, /* connect, one echo, close, again */
};

enum {
	OPTS_MAX_SOURCES = 64,
};

/* Owned by main(); threads get a const pointer and never change it. */
struct bench_opts {
	const char *target; /* HOST:PORT as given, for reports */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned int connections;
	size_t size;
	unsigned int depth;
	double duration; /* seconds; 0 = until --requests are done */
	uint64_t requests; /* measured echoes to complete; 0 = by duration */
	double warmup; /* seconds excluded from every statistic */
	double rate; /* offered messages/s over all; 0 = closed loop */
	double timeout; /* seconds to wait for late echoes (see man page) */
	unsigned int threads;
	enum bench_mode mode;
	bool udp;
	bool json;
	bool quiet;
	bool keep_going; /* a corrupted echo is counted, its connection goes on
			  */
	uint64_t expect_close; /* bytes echoed before the server closes; 0 =
				  never */
	const char *csv; /* percentile distribution file, or NULL */
	const char *svg; /* latency plot file, or NULL */
	const char *hlog; /* HdrHistogram interval log file, or NULL */
	pid_t server_pid; /* 0 = none */
	double start_at; /* the window begins then, seconds since the epoch */
	double connect_rate; /* TCP connections opened per second; 0 = at once
			      */
	/* Local addresses, connection i bound to the (i % nsrc)th. */
	struct sockaddr_storage src[OPTS_MAX_SOURCES];
	socklen_t srclen[OPTS_MAX_SOURCES];
	const char *srcname[OPTS_MAX_SOURCES]; /* as given */
	unsigned int nsrc;
	struct threshold thresholds[THRESHOLD_MAX]; /* checked at the end */
	unsigned int nthresholds;
	const char *selftest_hist; /* hidden: check the histogram, see main */
	/* --tls: TCP connections in TLS (btls.c) */
	bool tls;
	bool tls_no_resume; /* churn: every handshake a full one */
	unsigned int tls_version; /* 12 or 13 pins it; 0 = 1.3, 1.2 allowed */
	const char *tls_ca; /* --tls-verify CA file, or NULL: no check */
	const char *sni; /* --sni NAME, or NULL */
	const char *sni_send; /* the name sent: --sni, else a host name */
	char host[256]; /* the target's host, as given */
};

/*
 * Fills o from argv and resolves the target. Exits with status 2 and one
 * line on a usage error, 1 if the host does not resolve, 0 after --help
 * or --version.
 */
void opts_parse(struct bench_opts *o, int argc, char **argv);

const char *opts_mode_name(enum bench_mode m);

#endif
