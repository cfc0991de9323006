// SPDX-License-Identifier: BSD-2-Clause
/* opts.c - echobench's getopt_long parsing, defaults and validation. */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"

#ifndef ECHOD_VERSION
#define ECHOD_VERSION "0.0.0"
#endif

enum {
	OPT_CSV = 256,
	OPT_SVG,
	OPT_SERVER_PID,
	OPT_HLOG,
	OPT_START_AT,
	OPT_SOURCE,
	OPT_CONNECT_RATE,
	OPT_SELFTEST_HIST,
	OPT_THRESHOLD,
	OPT_EXPECT_CLOSE,
	OPT_KEEP_GOING,
	OPT_TLS,
	OPT_TLS_VERIFY,
	OPT_SNI,
	OPT_TLS_VERSION,
	OPT_TLS_NO_RESUME,
	MAX_UDP_SIZE = 65507,
	MIN_UDP_SIZE =
		16, /* sequence number and connection id, see udp_client.c */
};

static const char usage[] =
	"usage: echobench [-jquV] [-c connections] [-s size] [-d depth] [-D seconds]\n"
	"                 [-n requests] [-w seconds] [-r rate] [-T threads]\n"
	"                 [-m pingpong|stream|churn] [-t seconds] [--csv file]\n"
	"                 [--svg file] [--hlog file] [--server-pid pid]\n"
	"                 [--start-at unix_time] [--source addr]... [--connect-rate n]\n"
	"                 [--threshold expr]... [--expect-close bytes] [--keep-going]\n"
	"                 [--tls] [--tls-verify cafile] [--sni name]\n"
	"                 [--tls-version 1.2|1.3] [--tls-no-resume] host:port\n"
	"       echobench merge [--json] [--svg file] RUN...\n"
	"       echobench plot --svg file [--title text] RUN...\n";

static const char help[] =
	"Load generator for RFC 862 echo servers that checks every echoed byte.\n"
	"\n"
	"  -c, --connections N   connections (UDP sockets, churn slots) [50]\n"
	"  -s, --size BYTES      message size, K/M/G suffixes [64; stream 64K]\n"
	"  -d, --depth N         messages in flight per connection [1; stream 16]\n"
	"  -D, --duration SECS   measured time [10; none with -n]\n"
	"  -n, --requests N      stop after N measured echoes\n"
	"  -w, --warmup SECS     unmeasured time before [1]\n"
	"  -r, --rate MSGS/S     open loop: offered rate over all connections\n"
	"  -T, --threads N       event-loop threads [min(connections, CPUs)]\n"
	"  -m, --mode MODE       pingpong, stream or churn [pingpong]\n"
	"  -u, --udp             datagrams; losses and reorders are counted\n"
	"  -t, --timeout SECS    wait for late echoes [TCP 2, UDP 0.2]\n"
	"  -j, --json            summary as JSON on stdout\n"
	"      --csv FILE        latency percentile distribution (- = stdout)\n"
	"      --svg FILE        latency by percentile plot (- = stdout)\n"
	"      --hlog FILE       HdrHistogram interval log, one histogram a second\n"
	"      --start-at T      begin the measured window at unix time T (several hosts)\n"
	"      --source ADDR     local address to connect from; repeat to spread\n"
	"      --connect-rate N  open at most N TCP connections a second\n"
	"      --server-pid PID  server CPU per request, PID and its children\n"
	"      --threshold EXPR  fail the run (exit 3) unless EXPR holds at its end:\n"
	"                        p50|p90|p99|p99.9|p99.99|max < DURATION (ns, us, ms, s),\n"
	"                        shortfall < PERCENT (with -r), loss < PERCENT (with -u),\n"
	"                        errors = 0; repeat for several\n"
	"      --expect-close N  the server closes each connection after echoing N\n"
	"                        bytes (K/M/G): counted, not an error; a new\n"
	"                        connection takes its place (churn: the slot goes on)\n"
	"      --keep-going      count each corrupted echo and its bytes, and go on\n"
	"                        with its connection instead of ending it\n"
	"      --tls             TLS over every TCP connection (1.3, 1.2 allowed; ALPN\n"
	"                        echo); churn reports handshakes/s, their latency and\n"
	"                        how many resumed. The server's certificate is NOT\n"
	"                        verified unless --tls-verify: a test tool for\n"
	"                        servers with self-signed certificates\n"
	"      --tls-verify CA   verify the server's certificate against the CA file\n"
	"                        and the --sni name; a failure is a counted error\n"
	"      --sni NAME        server name to send and verify [the target's host]\n"
	"      --tls-version V   only TLS 1.2 or only 1.3\n"
	"      --tls-no-resume   offer no earlier session: full handshakes only\n"
	"  -q, --quiet           no progress lines\n"
	"  -h, --help            this text\n"
	"  -V, --version         version\n";

static const struct option longopts[] = {
	{"connections", required_argument, NULL, 'c'},
	{"size", required_argument, NULL, 's'},
	{"depth", required_argument, NULL, 'd'},
	{"duration", required_argument, NULL, 'D'},
	{"requests", required_argument, NULL, 'n'},
	{"warmup", required_argument, NULL, 'w'},
	{"rate", required_argument, NULL, 'r'},
	{"threads", required_argument, NULL, 'T'},
	{"mode", required_argument, NULL, 'm'},
	{"udp", no_argument, NULL, 'u'},
	{"timeout", required_argument, NULL, 't'},
	{"json", no_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"csv", required_argument, NULL, OPT_CSV},
	{"svg", required_argument, NULL, OPT_SVG},
	{"server-pid", required_argument, NULL, OPT_SERVER_PID},
	{"hlog", required_argument, NULL, OPT_HLOG},
	{"start-at", required_argument, NULL, OPT_START_AT},
	{"source", required_argument, NULL, OPT_SOURCE},
	{"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
	{"threshold", required_argument, NULL, OPT_THRESHOLD},
	{"expect-close", required_argument, NULL, OPT_EXPECT_CLOSE},
	{"keep-going", no_argument, NULL, OPT_KEEP_GOING},
	{"tls", no_argument, NULL, OPT_TLS},
	{"tls-verify", required_argument, NULL, OPT_TLS_VERIFY},
	{"sni", required_argument, NULL, OPT_SNI},
	{"tls-version", required_argument, NULL, OPT_TLS_VERSION},
	{"tls-no-resume", no_argument, NULL, OPT_TLS_NO_RESUME},
	{"selftest-histogram", required_argument, NULL, OPT_SELFTEST_HIST},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static const char *const mode_names[] = {
	[MODE_PINGPONG] = "pingpong",
	[MODE_STREAM] = "stream",
	[MODE_CHURN] = "churn",
};

const char *opts_mode_name(enum bench_mode m)
{
	return mode_names[m];
}

static void __attribute__((noreturn)) usage_error(const char *what)
{
	fprintf(stderr, "echobench: %s\n%s", what, usage);
	exit(2);
}

/*
 * Parses a decimal count in [min, max], with an optional binary K, M or G
 * suffix when scaled is set; exits with one line naming the option on
 * failure, the way strtonum(3) users report "too large".
 */
static uint64_t number(const char *name, const char *s, uint64_t min,
		       uint64_t max, int scaled)
{
	unsigned long long v;
	const char *errstr = NULL;
	char *end;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (scaled && *end && !end[1]) {
		const char *units = "KMG";
		const char *u = strchr(units, *end & ~0x20);

		if (u) {
			shift = 10 * (int)(u - units + 1);
			end++;
		}
	}
	if (end == s || *end || *s == '-' || *s == '+')
		errstr = "invalid";
	else if (errno == ERANGE || (shift && v >> (64 - shift)) ||
		 (v << shift) > max)
		errstr = "too large";
	else if ((v << shift) < min)
		errstr = "too small";
	if (errstr)
		errx(2, "%s %s: %s", name, s, errstr);
	return (uint64_t)v << shift;
}

/* Parses a non-negative decimal number of seconds (or messages/s). */
static double real(const char *name, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || isnan(v))
		errx(2, "%s %s: invalid", name, s);
	if (v < min)
		errx(2, "%s %s: too small", name, s);
	if (v > max || errno == ERANGE)
		errx(2, "%s %s: too large", name, s);
	return v;
}

static void parse_mode(struct bench_opts *o, const char *s)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]);
	     i++) {
		if (!strcmp(s, mode_names[i])) {
			o->mode = (enum bench_mode)i;
			return;
		}
	}
	errx(2, "mode %s: not pingpong, stream or churn", s);
}

/*
 * Splits HOST:PORT (IPv6 as [::1]:PORT) and resolves it with getaddrinfo.
 * The first address is used: a benchmark aims at one socket.
 */
static void resolve(struct bench_opts *o, const char *target)
{
	struct addrinfo hints = {0}, *res;
	char host[256];
	const char *colon, *h = target;
	size_t hlen;
	int e;

	if (*target == '[') {
		colon = strstr(target, "]:");
		h = target + 1;
		hlen = colon ? (size_t)(colon - h) : 0;
		colon = colon ? colon + 1 : NULL;
	} else {
		colon = strrchr(target, ':');
		hlen = colon ? (size_t)(colon - target) : 0;
	}
	if (!colon || !hlen || !colon[1] || hlen >= sizeof(host))
		usage_error("target must be HOST:PORT, [IPV6]:PORT");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(o->host, host, hlen + 1);
	number("port", colon + 1, 1, 65535, 0);

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = o->udp ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	e = getaddrinfo(host, colon + 1, &hints, &res);
	if (e)
		errx(1, "%s: %s", target,
		     e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
	memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
	o->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	o->target = target;
}

/* Fills what the user left unset; defaults depend on the mode. */
static void defaults(struct bench_opts *o, int have_size, int have_depth)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!have_size)
		o->size = o->mode == MODE_STREAM ? 65536 : 64;
	if (!have_depth)
		o->depth = o->mode == MODE_STREAM ? 16 : 1;
	if (o->duration < 0)
		o->duration = o->requests ? 0 : 10;
	if (o->warmup < 0)
		o->warmup = 1;
	if (o->timeout < 0)
		o->timeout = o->udp ? 0.2 : 2;
	if (!o->threads)
		o->threads = ncpu > 0 ? (unsigned int)ncpu : 1;
	if (o->threads > o->connections)
		o->threads = o->connections;
}

/* A numeric local address, IPv6 with or without brackets. */
static void add_source(struct bench_opts *o, const char *s)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&o->src[o->nsrc];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&o->src[o->nsrc];
	char host[INET6_ADDRSTRLEN];
	size_t len = strlen(s);

	if (o->nsrc == OPTS_MAX_SOURCES)
		errx(2, "source %s: at most %d sources", s, OPTS_MAX_SOURCES);
	if (s[0] == '[' && len > 2 && s[len - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(len - 2), s + 1);
	else
		snprintf(host, sizeof(host), "%s", s);
	memset(&o->src[o->nsrc], 0, sizeof(o->src[0]));
	o->srcname[o->nsrc] = s;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		o->srclen[o->nsrc++] = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		o->srclen[o->nsrc++] = sizeof(*in6);
	} else {
		errx(2, "source %s: not a numeric IPv4 or IPv6 address", s);
	}
}

static int is_stdout(const char *path)
{
	return path && !strcmp(path, "-");
}

static int stdout_users(const struct bench_opts *o)
{
	return is_stdout(o->csv) + is_stdout(o->svg) + is_stdout(o->hlog);
}

/* Thresholds on what the run does not measure are usage errors. */
static void validate_thresholds(const struct bench_opts *o)
{
	const struct threshold *t;

	for (unsigned int i = 0; i < o->nthresholds; i++) {
		t = &o->thresholds[i];
		if (t->metric == TH_LOSS && !o->udp)
			errx(2,
			     "threshold %s: loss is measured only with --udp",
			     t->expr);
		if (t->metric == TH_SHORTFALL && !(o->rate > 0))
			errx(2,
			     "threshold %s: shortfall is measured only in an open loop (--rate)",
			     t->expr);
	}
}

/* Rejects combinations that cannot be run, one line each. */
static void validate(const struct bench_opts *o)
{
	if (o->udp && o->mode != MODE_PINGPONG)
		errx(2,
		     "--udp runs only the pingpong mode (closed or open loop)");
	if (o->udp && (o->size < MIN_UDP_SIZE || o->size > MAX_UDP_SIZE))
		errx(2, "size %zu: UDP needs %d to %d bytes", o->size,
		     MIN_UDP_SIZE, MAX_UDP_SIZE);
	if (o->udp && o->expect_close)
		errx(2,
		     "--expect-close is for TCP: UDP has no connection to close");
	if (o->udp && o->depth > 512)
		errx(2, "depth %u: UDP allows at most 512", o->depth);
	if (o->mode == MODE_CHURN && o->depth != 1)
		errx(2, "--mode churn sends one message per connection");
	if (o->json + stdout_users(o) > 1)
		errx(2,
		     "output -: standard output can hold only one of --json, --csv, --svg, --hlog");
	validate_thresholds(o);
}

/* Adds one --threshold; a malformed one is a usage error. */
static void add_threshold(struct bench_opts *o, const char *expr)
{
	char why[128];

	if (o->nthresholds == THRESHOLD_MAX)
		errx(2, "threshold %s: at most %d thresholds", expr,
		     THRESHOLD_MAX);
	if (threshold_parse(&o->thresholds[o->nthresholds], expr, why,
			    sizeof(why)))
		errx(2, "threshold %s: %s", expr, why);
	o->nthresholds++;
}

/* Options that shape the load and need nothing else; false if unknown. */
static bool set_load_option(struct bench_opts *o, int ch)
{
	switch (ch) {
	case 'D':
		o->duration = real("duration", optarg, 0.001, 1e6);
		break;
	case 'n':
		o->requests = number("requests", optarg, 1, UINT64_MAX, 0);
		break;
	case 'w':
		o->warmup = real("warmup", optarg, 0, 1e6);
		break;
	case 'r':
		o->rate = real("rate", optarg, 0.001, 1e9);
		break;
	case 'T':
		o->threads = number("threads", optarg, 1, 1024, 0);
		break;
	case 'm':
		parse_mode(o, optarg);
		break;
	case 'u':
		o->udp = true;
		break;
	case 't':
		o->timeout = real("timeout", optarg, 0.001, 3600);
		break;
	case OPT_START_AT:
		o->start_at = real("start-at", optarg, 1, 1e11);
		break;
	case OPT_SOURCE:
		add_source(o, optarg);
		break;
	case OPT_CONNECT_RATE:
		o->connect_rate = real("connect-rate", optarg, 0.001, 1e9);
		break;
	case OPT_EXPECT_CLOSE:
		o->expect_close =
			number("expect-close", optarg, 1, UINT64_MAX, 1);
		break;
	case OPT_KEEP_GOING:
		o->keep_going = true;
		break;
	default:
		return false;
	}
	return true;
}

/* --tls and the options that go with it; false if unknown. */
static bool set_tls_option(struct bench_opts *o, int ch)
{
	switch (ch) {
	case OPT_TLS:
		o->tls = true;
		break;
	case OPT_TLS_VERIFY:
		o->tls_ca = optarg;
		break;
	case OPT_SNI:
		if (!*optarg || strlen(optarg) > 255)
			errx(2, "sni %s: not a server name", optarg);
		o->sni = optarg;
		break;
	case OPT_TLS_VERSION:
		if (strcmp(optarg, "1.2") && strcmp(optarg, "1.3"))
			errx(2, "tls-version %s: not 1.2 or 1.3", optarg);
		o->tls_version = optarg[2] == '2' ? 12 : 13;
		break;
	case OPT_TLS_NO_RESUME:
		o->tls_no_resume = true;
		break;
	default:
		return false;
	}
	return true;
}

/*
 * The TLS options need --tls, and TLS needs TCP. The server name sent is
 * --sni's, else the target's host unless it is an address (RFC 6066).
 */
static void validate_tls(struct bench_opts *o)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (!o->tls &&
	    (o->tls_ca || o->sni || o->tls_version || o->tls_no_resume))
		errx(2,
		     "--tls-verify, --sni, --tls-version, --tls-no-resume: need --tls");
	if (o->tls && o->udp)
		errx(2, "--tls is for TCP: there is no DTLS");
	o->sni_send = o->sni;
	if (!o->sni && inet_pton(AF_INET, o->host, a) != 1 &&
	    inet_pton(AF_INET6, o->host, a) != 1)
		o->sni_send = o->host;
}

/* Options that shape what is reported; false if unknown. */
static bool set_report_option(struct bench_opts *o, int ch)
{
	switch (ch) {
	case 'j':
		o->json = true;
		break;
	case 'q':
		o->quiet = true;
		break;
	case OPT_CSV:
		o->csv = optarg;
		break;
	case OPT_SVG:
		o->svg = optarg;
		break;
	case OPT_HLOG:
		o->hlog = optarg;
		break;
	case OPT_THRESHOLD:
		add_threshold(o, optarg);
		break;
	case OPT_SERVER_PID:
		o->server_pid = number("server-pid", optarg, 1, 0x7fffffff, 0);
		if (kill(o->server_pid, 0) && errno == ESRCH)
			errx(2, "server-pid %s: no such process", optarg);
		break;
	default:
		return false;
	}
	return true;
}

void opts_parse(struct bench_opts *o, int argc, char **argv)
{
	int ch, have_size = 0, have_depth = 0;

	memset(o, 0, sizeof(*o));
	o->connections = 50;
	o->duration = -1;
	o->warmup = -1;
	o->timeout = -1;
	opterr = 0; /* we word the error ourselves, as echod does */
	while ((ch = getopt_long(argc, argv, ":c:s:d:D:n:w:r:T:m:ut:jqhV",
				 longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->connections =
				number("connections", optarg, 1, 1000000, 0);
			break;
		case 's':
			o->size = number("size", optarg, 1, 1UL << 30, 1);
			have_size = 1;
			break;
		case 'd':
			o->depth = number("depth", optarg, 1, 65536, 0);
			have_depth = 1;
			break;
		case OPT_SELFTEST_HIST:
			o->selftest_hist = optarg;
			return;
		case 'h':
			printf("%s\n%s", usage, help);
			exit(0);
		case 'V':
			printf("echobench %s\n", ECHOD_VERSION);
			exit(0);
		case ':':
			errx(2, "option %s: needs a value", argv[optind - 1]);
		default:
			if (!set_load_option(o, ch) &&
			    !set_report_option(o, ch) && !set_tls_option(o, ch))
				errx(2, "option %s: unknown", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		usage_error(optind < argc ? "one HOST:PORT only"
					  : "missing HOST:PORT");
	defaults(o, have_size, have_depth);
	validate(o);
	resolve(o, argv[optind]);
	validate_tls(o);
	for (unsigned int i = 0; i < o->nsrc; i++)
		if (o->src[i].ss_family != o->addr.ss_family)
			errx(2, "source %s: not the address family of %s",
			     o->srcname[i], o->target);
}
