/* options.c - getopt_long parsing and validation of echod's command line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

const char options_usage[] =
	"usage: echod [-v] [-p port] [-b address]... [-n messages] [-t threads]\n"
	"             [--framing raw|line] [--max-conns N] [--idle-timeout SECONDS]\n"
	"             [--max-pending BYTES] [--memory BYTES]\n"
	"             [--send-timeout SECONDS]\n"
	"             [--max-lifetime SECONDS] [--backend auto|epoll|io_uring]\n"
	"             [--uring-buffers N]\n"
	"             [-u] [--no-tcp] [--udp-rate N] [--udp-byte-rate BYTES]\n"
	"             [--udp-max-size BYTES] [--udp-deny-ports LIST|none]\n"
	"             [--stats-interval SECONDS] [--stats-totals-only]\n"
	"             [--metrics ADDR:PORT]\n"
	"             [-4|-6] [--allow CIDR]... [--deny CIDR]... [--max-per-source N]\n"
	"             [--grace SECONDS] [--log-format text|json]\n"
	"             [--user NAME[:GROUP]] [--inetd]\n";

static const char options_help[] =
	"echod: an RFC 862 echo server (TCP) on epoll or io_uring\n"
	"\n"
	"  -p, --port N            port to listen on (default 60000; 0 = any)\n"
	"  -b, --bind ADDR         IPv4 or IPv6 literal; repeatable (default: all,\n"
	"                          IPv6 and IPv4 on one dual-stack socket)\n"
	"  -n, --messages N        close a connection after echoing N messages\n"
	"      --framing raw|line  what a message is: one read (raw) or one line\n"
	"  -t, --threads N         worker threads (default: one per CPU)\n"
	"      --max-conns N       connections beyond N are closed at once\n"
	"      --idle-timeout S    close connections idle for S seconds\n"
	"      --max-pending BYTES bound on bytes waiting to be sent back per\n"
	"                          connection; reading stops there (default 256K)\n"
	"      --memory BYTES      bound on the memory held for all connections'\n"
	"                          data (K, M, G); reading waits at it (default\n"
	"                          256M, or a quarter of RAM if less; 0 = none)\n"
	"      --send-timeout S    close a connection whose peer takes none of its\n"
	"                          echoes for S seconds (default 60; 0 = never)\n"
	"      --max-lifetime S    close connections S seconds after they opened\n"
	"                          (default 0 = never)\n"
	"      --linger S          after the last echo, wait S seconds for the\n"
	"                          client to close (default 10)\n"
	"      --backlog N         listen(2) backlog (default 4096)\n"
	"      --backend NAME      auto (default), epoll or io_uring\n"
	"      --list-backends     say which backends this system can run\n"
	"      --uring-buffers N   io_uring: 64 KiB receive buffers per worker, given\n"
	"                          to the kernel as load needs them (default 256)\n"
	"  -u, --udp               also serve UDP on the same port and addresses\n"
	"      --no-tcp            serve UDP only\n"
	"      --udp-rate N        datagrams/s answered per source address\n"
	"                          (default 1000; 0 = no limit)\n"
	"      --udp-byte-rate B   bytes/s answered per source (default 1M; 0 = none)\n"
	"      --udp-max-size B    larger datagrams are dropped (default 65535)\n"
	"      --udp-deny-ports L  source ports never answered, comma-separated, or\n"
	"                          none (default " OPTIONS_UDP_DENY_DEFAULT
	",\n"
	"                          and our own port)\n"
	"      --udp-allow-nonunicast  answer broadcast/multicast/unspecified sources\n"
	"      --stats-interval S  print the table SIGUSR1 prints every S seconds\n"
	"      --stats-totals-only the periodic table without connection rows\n"
	"      --metrics ADDR:PORT serve GET /metrics (Prometheus) and\n"
	"                          GET /connections (JSON) over HTTP there\n"
	"  -4, --ipv4              IPv4 only (the wildcard is 0.0.0.0)\n"
	"  -6, --ipv6              IPv6 only (the wildcard [::] with IPV6_V6ONLY)\n"
	"      --allow CIDR        serve only these networks (repeatable); an\n"
	"                          address alone is one host\n"
	"      --deny CIDR         never serve these networks (repeatable; deny\n"
	"                          wins over allow)\n"
	"      --max-per-source N  open TCP connections per source address (IPv6:\n"
	"                          per /64); the N+1th is closed at once\n"
	"      --grace S           at SIGTERM/SIGINT, stop accepting and give open\n"
	"                          connections S seconds to finish (default 5)\n"
	"      --log-format F      text (default) or json, one object a line\n"
	"      --inetd             serve the socket on standard input: a TCP\n"
	"                          connection (then exit 0), or a UDP socket\n"
	"                          (exit after --idle-timeout, default 60 here)\n"
	"      --user NAME[:GROUP] once the sockets are open, drop root and run\n"
	"                          as NAME (and its group, or GROUP)\n"
	"  -v, --verbose           log descriptors, peers and per-connection counts\n"
	"                          (twice: also transient peer errors)\n"
	"  -h, --help              this help\n"
	"  -V, --version           print the version\n";

enum {
	OPT_FRAMING = 256,
	OPT_MAX_CONNS,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_PENDING,
	OPT_LINGER,
	OPT_BACKLOG,
	OPT_BACKEND,
	OPT_LIST_BACKENDS,
	OPT_NO_TCP,
	OPT_UDP_RATE,
	OPT_UDP_BYTE_RATE,
	OPT_UDP_MAX_SIZE,
	OPT_UDP_DENY_PORTS,
	OPT_UDP_ALLOW_NONUNICAST,
	OPT_URING_BUFFERS,
	OPT_SEND_TIMEOUT,
	OPT_MAX_LIFETIME,
	OPT_STATS_INTERVAL,
	OPT_STATS_TOTALS_ONLY,
	OPT_METRICS,
	OPT_ALLOW,
	OPT_DENY,
	OPT_MAX_PER_SOURCE,
	OPT_GRACE,
	OPT_LOG_FORMAT,
	OPT_USER,
	OPT_INETD,
	OPT_MEMORY,
};

static const struct option long_options[] = {
	{"port", required_argument, NULL, 'p'},
	{"bind", required_argument, NULL, 'b'},
	{"messages", required_argument, NULL, 'n'},
	{"threads", required_argument, NULL, 't'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"framing", required_argument, NULL, OPT_FRAMING},
	{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"linger", required_argument, NULL, OPT_LINGER},
	{"backlog", required_argument, NULL, OPT_BACKLOG},
	{"backend", required_argument, NULL, OPT_BACKEND},
	{"list-backends", no_argument, NULL, OPT_LIST_BACKENDS},
	{"udp", no_argument, NULL, 'u'},
	{"no-tcp", no_argument, NULL, OPT_NO_TCP},
	{"udp-rate", required_argument, NULL, OPT_UDP_RATE},
	{"udp-byte-rate", required_argument, NULL, OPT_UDP_BYTE_RATE},
	{"udp-max-size", required_argument, NULL, OPT_UDP_MAX_SIZE},
	{"udp-deny-ports", required_argument, NULL, OPT_UDP_DENY_PORTS},
	{"udp-allow-nonunicast", no_argument, NULL, OPT_UDP_ALLOW_NONUNICAST},
	{"uring-buffers", required_argument, NULL, OPT_URING_BUFFERS},
	{"send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT},
	{"max-lifetime", required_argument, NULL, OPT_MAX_LIFETIME},
	{"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
	{"stats-totals-only", no_argument, NULL, OPT_STATS_TOTALS_ONLY},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"ipv4", no_argument, NULL, '4'},
	{"ipv6", no_argument, NULL, '6'},
	{"allow", required_argument, NULL, OPT_ALLOW},
	{"deny", required_argument, NULL, OPT_DENY},
	{"max-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE},
	{"grace", required_argument, NULL, OPT_GRACE},
	{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	{"user", required_argument, NULL, OPT_USER},
	{"inetd", no_argument, NULL, OPT_INETD},
	{NULL, 0, NULL, 0},
};

long long options_number(const char *s, long long min, long long max,
			 const char **errstr)
{
	long long v;
	char *end;

	*errstr = "invalid";
	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+' || *s == '\t')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return 0;
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "too small";
		return 0;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return 0;
	}
	*errstr = NULL;
	return v;
}

/*
 * A size with an optional K, M or G suffix (powers of 1024), for
 * --max-pending and the like; same error contract as options_number().
 */
static long long parse_size(const char *s, long long min, long long max,
			    const char **errstr)
{
	char digits[32];
	size_t n = strlen(s);
	long long mult = 1, v;

	if (n == 0 || n >= sizeof(digits)) {
		*errstr = n ? "too large" : "invalid";
		return 0;
	}
	memcpy(digits, s, n + 1);
	if (digits[n - 1] == 'K' || digits[n - 1] == 'k')
		mult = 1024;
	else if (digits[n - 1] == 'M' || digits[n - 1] == 'm')
		mult = 1024 * 1024;
	else if (digits[n - 1] == 'G' || digits[n - 1] == 'g')
		mult = 1024 * 1024 * 1024;
	if (mult != 1)
		digits[n - 1] = '\0';
	v = options_number(digits, 0, max / mult, errstr);
	if (*errstr)
		return 0;
	if (v * mult < min) {
		*errstr = "too small";
		return 0;
	}
	return v * mult;
}

const char *options_framing_name(enum framing f)
{
	return f == FRAMING_LINE ? "line" : "raw";
}

/*
 * A fixed default an admin can predict, that still leaves a small host
 * (or a small VM) most of its memory: what echod holds for clients' data
 * is bounded either way, whatever they send or fail to read.
 */
static size_t default_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	unsigned long long quarter;

	if (pages <= 0 || size <= 0)
		return (size_t)OPTIONS_DEFAULT_MEMORY;
	quarter = (unsigned long long)pages * (unsigned long long)size / 4;
	if (quarter < OPTIONS_MIN_MEMORY)
		quarter = OPTIONS_MIN_MEMORY;
	return (size_t)(quarter < OPTIONS_DEFAULT_MEMORY
				? quarter
				: OPTIONS_DEFAULT_MEMORY);
}

static void set_defaults(struct options *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof(*o));
	o->port = OPTIONS_DEFAULT_PORT;
	o->framing = FRAMING_RAW;
	o->threads = cpus > 0 ? (int)(cpus < 64 ? cpus : 64) : 1;
	o->max_pending = OPTIONS_DEFAULT_MAX_PENDING;
	o->linger = OPTIONS_DEFAULT_LINGER;
	o->send_timeout = OPTIONS_DEFAULT_SEND_TIMEOUT;
	o->backlog = 4096;
	o->backend = "auto";
	o->tcp = true;
	o->udp_rate = OPTIONS_DEFAULT_UDP_RATE;
	o->udp_byte_rate = OPTIONS_DEFAULT_UDP_BYTE_RATE;
	o->udp_max_size = OPTIONS_UDP_MAX;
	o->uring_buffers = OPTIONS_DEFAULT_URING_BUFFERS;
	o->grace = OPTIONS_DEFAULT_GRACE;
	o->memory = default_memory();
}

/*
 * Parses "7,9,19" (or "none") into the deny bitmap. Returns 0, or -1 with
 * err naming the bad entry.
 */
static int set_deny_ports(struct options *o, const char *list, char *err,
			  size_t errlen)
{
	char item[16];
	const char *p = list, *errstr;
	size_t n;
	long long port;

	memset(o->udp_deny, 0, sizeof(o->udp_deny));
	o->udp_deny_own = strcmp(list, "none") != 0;
	if (!o->udp_deny_own)
		return 0;
	while (*p) {
		n = strcspn(p, ",");
		if (n == 0 || n >= sizeof(item)) {
			snprintf(err, errlen, "udp-deny-ports %s: invalid",
				 list);
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		port = options_number(item, 0, 65535, &errstr);
		if (errstr) {
			snprintf(err, errlen, "udp-deny-ports %s: %s", item,
				 errstr);
			return -1;
		}
		o->udp_deny[port >> 3] |= (uint8_t)(1u << (port & 7));
		p += n + (p[n] == ',');
	}
	return 0;
}

/* set_number's part for the options of a service you expose. */
static int set_service_number(struct options *o, int opt, const char *arg,
			      char *err, size_t errlen)
{
	const char *what, *errstr;
	long long v;

	switch (opt) {
	case OPT_MAX_PER_SOURCE:
		what = "max-per-source";
		v = options_number(arg, 1, 10000000, &errstr);
		o->max_per_source = (unsigned int)v;
		break;
	case OPT_GRACE:
		what = "grace";
		v = options_number(arg, 0, 3600, &errstr);
		o->grace = (unsigned int)v;
		break;
	default:
		what = "option";
		errstr = "unknown";
		break;
	}
	if (errstr == NULL)
		return 0;
	snprintf(err, errlen, "%s %s: %s", what, arg, errstr);
	return -1;
}

/*
 * Applies one numeric option. Returns 0, or -1 with err naming the option,
 * its value and what is wrong ("port 70000: too large").
 */
static int set_number(struct options *o, int opt, const char *arg, char *err,
		      size_t errlen)
{
	const char *what, *errstr;
	long long v;

	switch (opt) {
	case 'p':
		what = "port";
		v = options_number(arg, 0, 65535, &errstr);
		o->port = (unsigned int)v;
		break;
	case 'n':
		what = "messages";
		v = options_number(arg, 1, LLONG_MAX, &errstr);
		o->messages = (uint64_t)v;
		break;
	case 't':
		what = "threads";
		v = options_number(arg, 1, OPTIONS_MAX_THREADS, &errstr);
		o->threads = (int)v;
		break;
	case OPT_MAX_CONNS:
		what = "max-conns";
		v = options_number(arg, 1, 10000000, &errstr);
		o->max_conns = (unsigned int)v;
		break;
	case OPT_IDLE_TIMEOUT:
		what = "idle-timeout";
		v = options_number(arg, 0, 86400 * 365, &errstr);
		o->idle_timeout = (unsigned int)v;
		break;
	case OPT_SEND_TIMEOUT:
		what = "send-timeout";
		v = options_number(arg, 0, 86400 * 365, &errstr);
		o->send_timeout = (unsigned int)v;
		break;
	case OPT_MAX_LIFETIME:
		what = "max-lifetime";
		v = options_number(arg, 0, 86400 * 365, &errstr);
		o->max_lifetime = (unsigned int)v;
		break;
	case OPT_LINGER:
		what = "linger";
		v = options_number(arg, 0, 3600, &errstr);
		o->linger = (unsigned int)v;
		break;
	case OPT_BACKLOG:
		what = "backlog";
		v = options_number(arg, 1, 65535, &errstr);
		o->backlog = (int)v;
		break;
	case OPT_UDP_RATE:
		what = "udp-rate";
		v = options_number(arg, 0, 100000000, &errstr);
		o->udp_rate = (unsigned int)v;
		break;
	case OPT_UDP_BYTE_RATE:
		what = "udp-byte-rate";
		v = parse_size(arg, 0, 1LL << 40, &errstr);
		o->udp_byte_rate = (uint64_t)v;
		break;
	case OPT_UDP_MAX_SIZE:
		what = "udp-max-size";
		v = options_number(arg, 0, OPTIONS_UDP_MAX, &errstr);
		o->udp_max_size = (unsigned int)v;
		break;
	case OPT_URING_BUFFERS:
		what = "uring-buffers";
		v = options_number(arg, 1, OPTIONS_MAX_URING_BUFFERS, &errstr);
		o->uring_buffers = (unsigned int)v;
		break;
	case OPT_STATS_INTERVAL:
		what = "stats-interval";
		v = options_number(arg, 1, 86400, &errstr);
		o->stats_interval = (unsigned int)v;
		break;
	case OPT_MAX_PENDING:
		what = "max-pending";
		v = parse_size(arg, 1024, 1LL << 30, &errstr);
		o->max_pending = (size_t)v;
		break;
	case OPT_MEMORY:
		what = "memory";
		v = parse_size(arg, 0, 1LL << 50, &errstr);
		if (errstr == NULL && v && v < OPTIONS_MIN_MEMORY)
			errstr = "too small (at least 256K, or 0 for no limit)";
		o->memory = (size_t)v;
		break;
	default:
		return set_service_number(o, opt, arg, err, errlen);
	}
	if (errstr == NULL)
		return 0;
	snprintf(err, errlen, "%s %s: %s", what, arg, errstr);
	return -1;
}

static int set_access(struct options *o, bool deny, const char *arg, char *err,
		      size_t errlen)
{
	int e = access_add(&o->access, arg, deny);

	if (e == 0)
		return 0;
	snprintf(err, errlen, "%s %s: %s", deny ? "deny" : "allow", arg,
		 e == -ENOSPC ? "too many rules"
			      : "not an IPv4 or IPv6 address or network");
	return -1;
}

static int set_word(struct options *o, int opt, const char *arg, char *err,
		    size_t errlen)
{
	switch (opt) {
	case 'b':
		if (o->nbinds == OPTIONS_MAX_BINDS) {
			snprintf(err, errlen, "bind %s: more than %d addresses",
				 arg, OPTIONS_MAX_BINDS);
			return -1;
		}
		o->binds[o->nbinds++] = arg;
		return 0;
	case OPT_FRAMING:
		if (strcmp(arg, "raw") == 0)
			o->framing = FRAMING_RAW;
		else if (strcmp(arg, "line") == 0)
			o->framing = FRAMING_LINE;
		else
			break;
		return 0;
	case OPT_BACKEND:
		if (strcmp(arg, "auto") && strcmp(arg, "epoll") &&
		    strcmp(arg, "io_uring"))
			break;
		o->backend = arg;
		return 0;
	case OPT_ALLOW:
	case OPT_DENY:
		return set_access(o, opt == OPT_DENY, arg, err, errlen);
	case OPT_LOG_FORMAT:
		if (strcmp(arg, "text") && strcmp(arg, "json")) {
			snprintf(
				err, errlen,
				"log-format %s: unknown (expected text or json)",
				arg);
			return -1;
		}
		o->log_json = strcmp(arg, "json") == 0;
		return 0;
	}
	snprintf(err, errlen, "%s %s: unknown (expected %s)",
		 opt == OPT_FRAMING ? "framing" : "backend", arg,
		 opt == OPT_FRAMING ? "raw or line"
				    : "auto, epoll or io_uring");
	return -1;
}

/* The options that only switch something on; 0, or -1 with err. */
static int set_flag(struct options *o, int opt, const char *arg, char *err,
		    size_t errlen)
{
	switch (opt) {
	case OPT_LIST_BACKENDS:
		o->list_backends = true;
		break;
	case 'u':
		o->udp = true;
		break;
	case OPT_NO_TCP:
		o->tcp = false;
		break;
	case OPT_USER:
		o->user = arg;
		break;
	case OPT_INETD:
		o->inetd = true;
		break;
	case OPT_UDP_ALLOW_NONUNICAST:
		o->udp_allow_nonunicast = true;
		break;
	case '4':
	case '6':
		if (o->family && o->family != opt - '0') {
			snprintf(err, errlen, "options -4 and -6: choose one");
			return -1;
		}
		o->family = opt - '0';
		break;
	}
	return 0;
}

/* After the options: what is left over, and what depends on others. */
static int finish(struct options *o, int argc, char **argv, bool idle_set,
		  char *err, size_t errlen)
{
	if (optind < argc) {
		snprintf(err, errlen, "argument %s: unexpected", argv[optind]);
		return -1;
	}
	if (o->inetd && !idle_set)
		o->idle_timeout = OPTIONS_INETD_IDLE_TIMEOUT;
	if (!o->tcp && !o->udp) {
		snprintf(err, errlen, "option --no-tcp: needs --udp");
		return -1;
	}
	return 0;
}

int options_parse(struct options *o, int argc, char **argv, char *err,
		  size_t errlen)
{
	bool idle_set = false;
	int c;

	set_defaults(o);
	set_deny_ports(o, OPTIONS_UDP_DENY_DEFAULT, err, errlen);
	optind = 0; /* glibc: full reset, so the unit tests can parse again */
	opterr = 0; /* we word the error ourselves */
	while ((c = getopt_long(argc, argv, ":p:b:n:t:uvhV46", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'v':
			o->verbose++;
			break;
		case 'h':
			printf("%s\n%s", options_usage, options_help);
			return 1;
		case 'V':
			printf("echod %s\n", ECHOD_VERSION);
			return 1;
		case OPT_LIST_BACKENDS:
		case 'u':
		case OPT_NO_TCP:
		case OPT_USER:
		case OPT_INETD:
		case OPT_UDP_ALLOW_NONUNICAST:
		case '4':
		case '6':
			if (set_flag(o, c, optarg, err, errlen))
				return -1;
			break;
		case OPT_STATS_TOTALS_ONLY:
			o->stats_totals_only = true;
			break;
		case OPT_METRICS:
			o->metrics = optarg;
			break;
		case OPT_UDP_DENY_PORTS:
			if (set_deny_ports(o, optarg, err, errlen))
				return -1;
			break;
		case 'b':
		case OPT_FRAMING:
		case OPT_BACKEND:
		case OPT_ALLOW:
		case OPT_DENY:
		case OPT_LOG_FORMAT:
			if (set_word(o, c, optarg, err, errlen))
				return -1;
			break;
		case ':':
		case '?':
			snprintf(err, errlen, "option %s: %s", argv[optind - 1],
				 c == ':' ? "needs a value" : "unknown");
			return -1;
		default:
			if (set_number(o, c, optarg, err, errlen))
				return -1;
			idle_set |= c == OPT_IDLE_TIMEOUT;
			break;
		}
	}
	return finish(o, argc, argv, idle_set, err, errlen);
}
