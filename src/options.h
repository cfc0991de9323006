// SPDX-License-Identifier: BSD-2-Clause
/* options.h - echod's command line, parsed and validated into one struct. */
#ifndef ECHOD_OPTIONS_H
#define ECHOD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "access.h"

/* --memory's default: 256 MiB, or a quarter of RAM if that is less. */
#define OPTIONS_DEFAULT_MEMORY (256ULL << 20)

enum framing {
	FRAMING_RAW, /* a message is what one read returns (the lecture) */
	FRAMING_LINE, /* a message is bytes up to and including '\n' */
};

enum {
	OPTIONS_MAX_BINDS = 16,
	/* TCP listeners a worker has: plain ones and --tls-port ones. */
	OPTIONS_MAX_LISTEN = 2 * OPTIONS_MAX_BINDS,
	OPTIONS_MAX_THREADS = 256,
	OPTIONS_DEFAULT_MAX_THREADS = 64, /* one per CPU, up to this */
	OPTIONS_DEFAULT_BACKLOG = 4096,
	OPTIONS_MAX_CONNS = 10000000, /* --max-conns, --max-per-source */
	OPTIONS_DEFAULT_PORT = 60000,
	OPTIONS_DEFAULT_MAX_PENDING = 256 * 1024,
	OPTIONS_DEFAULT_LINGER = 10,
	OPTIONS_DEFAULT_SEND_TIMEOUT = 60,
	OPTIONS_DEFAULT_UDP_RATE = 1000,
	OPTIONS_DEFAULT_UDP_BYTE_RATE = 1024 * 1024,
	OPTIONS_UDP_MAX = 65535,
	OPTIONS_DEFAULT_URING_BUFFERS = 256,
	/* The ring has twice as many entries, and the kernel allows 32768. */
	OPTIONS_MAX_URING_BUFFERS = 16384,
	OPTIONS_DEFAULT_GRACE = 5,
	OPTIONS_DEFAULT_PROXY_TIMEOUT = 3,
	OPTIONS_MIN_MEMORY = 256 * 1024,
	OPTIONS_INETD_IDLE_TIMEOUT = 60, /* --inetd's default */
	OPTIONS_MAX_FAULTS = 32, /* --fault: fault.h's FAULT_MAX */
};

/* Owned by main(); workers get a const pointer and never change it. */
struct options {
	unsigned int port;
	int nbinds;
	const char *binds[OPTIONS_MAX_BINDS]; /* literals; none = dual-stack */
	uint64_t messages; /* close after N; 0 = never */
	enum framing framing;
	int threads;
	int verbose;
	unsigned int max_conns; /* 0 = no limit */
	unsigned int idle_timeout; /* seconds; 0 = none */
	unsigned int linger; /* seconds to drain after our FIN */
	unsigned int
		send_timeout; /* seconds a peer may take none of its echoes */
	unsigned int max_lifetime; /* seconds a connection may live; 0 = any */
	size_t max_pending; /* bytes waiting to go back, per connection */
	size_t memory; /* bytes held for all connections' data; 0 = any */
	int backlog;
	const char *backend; /* "auto", "epoll", "io_uring" */
	unsigned int uring_buffers; /* provided buffers per io_uring worker */
	bool list_backends;
	bool tcp; /* serve TCP (not --no-tcp) */
	bool udp; /* serve UDP (-u) */
	bool udp_allow_nonunicast; /* answer multicast/broadcast sources */
	unsigned int udp_rate; /* datagrams/s per source; 0 = no limit */
	uint64_t udp_byte_rate; /* bytes/s per source; 0 = no limit */
	unsigned int udp_max_size; /* larger datagrams are dropped */
	bool udp_deny_own; /* refuse our own port as a source */
	uint8_t udp_deny[65536 / 8]; /* source ports never answered */
	unsigned int stats_interval; /* seconds between tables; 0 = none */
	bool stats_totals_only; /* tables without the connection rows */
	const char *metrics; /* ADDR:PORT of the HTTP metrics listener */
	const char *faults[OPTIONS_MAX_FAULTS]; /* --fault specs, checked */
	int nfaults;
	const char *control; /* --control ADDR:PORT or unix:PATH, or NULL */
	struct access_rules access; /* --allow, --deny */
	unsigned int max_per_source; /* open TCP per source; 0 = no limit */
	bool proxy_protocol; /* --proxy-protocol */
	struct access_rules proxy_from; /* the balancers that send headers */
	unsigned int proxy_timeout; /* seconds a balancer has for its header */
	int family; /* -4 or -6: 4 or 6; 0 = both */
	unsigned int grace; /* seconds open connections get at SIGTERM */
	bool log_json; /* --log-format json */
	const char *user; /* --user NAME[:GROUP], or NULL */
	bool inetd; /* --inetd: the socket is standard input */
	int tls_port; /* --tls-port: 0 = any; -1 = no TLS listeners */
	const char *tls_cert; /* PEM: certificate and chain, or NULL */
	const char *tls_key; /* PEM: its private key, or NULL */
	const char *tls_ciphers; /* or NULL: OpenSSL's defaults */
	unsigned int tls_min; /* --tls-min-version: 0 = 1.2, 1 = 1.3 */
};

/* The source ports refused by default: UDP services that answer anything. */
#define OPTIONS_UDP_DENY_DEFAULT "0,7,9,11,13,17,19,37,53,69,123,161,1900"

static inline bool options_udp_denied(const struct options *o,
				      unsigned int port)
{
	return o->udp_deny[port >> 3] & (1u << (port & 7));
}

/* How an option's argument is taken (struct options_spec). */
enum options_kind {
	OPTIONS_FLAG, /* no argument: the bool field becomes true */
	OPTIONS_COUNT, /* no argument: the field counts repeats (-vv) */
	OPTIONS_NUMBER, /* a decimal integer in [min, max] */
	OPTIONS_SIZE, /* bytes in [min, max], with K, M or G */
	OPTIONS_SIZE_OR_0, /* the same, or 0 for no limit */
	OPTIONS_TEXT, /* the argument as given (const char *) */
	OPTIONS_CHOICE, /* one of arg's words: its position is stored */
	OPTIONS_WORD, /* one of arg's words: the word is stored */
	OPTIONS_OTHER, /* options.c's set_other says what it does */
};

/*
 * One option, as options_table lists them: the parser, --help, the
 * usage line and the tests read this, and nothing else says what an
 * option is.
 */
struct options_spec {
	const char *name; /* the long name, without "--" */
	char short_name; /* 'p' for -p, or 0 */
	const char
		*arg; /* the argument in --help ("N", "raw|line"); NULL: none */
	enum options_kind kind;
	size_t offset, size; /* the field of struct options it sets */
	long long min, max; /* NUMBER and SIZE: the bounds, inclusive */
	const char *help; /* --help's text; '\n' starts another line */
};

extern const struct options_spec options_table[];
extern const size_t options_count;

/*
 * Fills o from argv. Returns 0 when echod should run, 1 when the request
 * was answered already (--help, --version print to stdout), and -1 on a
 * usage error, with one line naming what is wrong in err. Resets getopt,
 * so it may be called more than once (the unit tests do).
 */
int options_parse(struct options *o, int argc, char **argv, char *err,
		  size_t errlen);

/* Prints the usage synopsis (for --help) to f. */
void options_usage(FILE *f);

const char *options_framing_name(enum framing f);

#endif
