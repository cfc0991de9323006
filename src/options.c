// SPDX-License-Identifier: BSD-2-Clause
/*
 * options.c - echod's command line as one table: each option's name, the
 * field it sets, its bounds and its help. The parser, --help, the usage
 * synopsis and the tests that hold README.md and man/echod.1 against the
 * program all read the table, so that none of them can drift.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "number.h"
#include "options.h"
#include "tls.h"

_Static_assert((int)OPTIONS_MAX_FAULTS == (int)FAULT_MAX,
	       "--fault: one per fault");

#define FIELD(f) offsetof(struct options, f), sizeof(((struct options *)0)->f)
#define NO_FIELD 0, 0
#define YEAR (86400LL * 365)

const struct options_spec options_table[] = {
	{"port", 'p', "N", OPTIONS_NUMBER, FIELD(port), 0, 65535,
	 "port to listen on (default 60000; 0 = any)"},
	{"bind", 'b', "ADDR", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "IPv4 or IPv6 literal; repeatable (default: all,\n"
	 "IPv6 and IPv4 on one dual-stack socket)"},
	{"messages", 'n', "N", OPTIONS_NUMBER, FIELD(messages), 1, LLONG_MAX,
	 "close a connection after echoing N messages"},
	{"framing", 0, "raw|line", OPTIONS_CHOICE, FIELD(framing), 0, 0,
	 "what a message is: one read (raw) or one line"},
	{"threads", 't', "N", OPTIONS_NUMBER, FIELD(threads), 1,
	 OPTIONS_MAX_THREADS, "worker threads (default: one per CPU)"},
	{"max-conns", 0, "N", OPTIONS_NUMBER, FIELD(max_conns), 1,
	 OPTIONS_MAX_CONNS, "connections beyond N are closed at once"},
	{"idle-timeout", 0, "S", OPTIONS_NUMBER, FIELD(idle_timeout), 0, YEAR,
	 "close connections idle for S seconds"},
	{"max-pending", 0, "BYTES", OPTIONS_SIZE, FIELD(max_pending), 1024,
	 1LL << 30,
	 "bound on bytes waiting to be sent back per\n"
	 "connection; reading stops there (default 256K)"},
	{"memory", 0, "BYTES", OPTIONS_SIZE_OR_0, FIELD(memory),
	 OPTIONS_MIN_MEMORY, 1LL << 50,
	 "bound on the memory held for all connections'\n"
	 "data (K, M, G); reading waits at it (default\n"
	 "256M, or a quarter of RAM if less; 0 = none)"},
	{"send-timeout", 0, "S", OPTIONS_NUMBER, FIELD(send_timeout), 0, YEAR,
	 "close a connection whose peer takes none of its\n"
	 "echoes for S seconds (default 60; 0 = never)"},
	{"max-lifetime", 0, "S", OPTIONS_NUMBER, FIELD(max_lifetime), 0, YEAR,
	 "close connections S seconds after they opened\n"
	 "(default 0 = never)"},
	{"linger", 0, "S", OPTIONS_NUMBER, FIELD(linger), 0, 3600,
	 "after the last echo, wait S seconds for the\n"
	 "client to close (default 10)"},
	{"backlog", 0, "N", OPTIONS_NUMBER, FIELD(backlog), 1, 65535,
	 "listen(2) backlog (default 4096)"},
	{"backend", 0, "auto|epoll|io_uring", OPTIONS_WORD, FIELD(backend), 0,
	 0, "the event loop: auto (default), epoll or io_uring"},
	{"list-backends", 0, NULL, OPTIONS_FLAG, FIELD(list_backends), 0, 0,
	 "say which backends can run here, and which auto takes"},
	{"uring-buffers", 0, "N", OPTIONS_NUMBER, FIELD(uring_buffers), 1,
	 OPTIONS_MAX_URING_BUFFERS,
	 "io_uring: 64 KiB receive buffers per worker, given\n"
	 "to the kernel as load needs them (default 256)"},
	{"udp", 'u', NULL, OPTIONS_FLAG, FIELD(udp), 0, 0,
	 "also serve UDP on the same port and addresses"},
	{"no-tcp", 0, NULL, OPTIONS_OTHER, NO_FIELD, 0, 0, "serve UDP only"},
	{"udp-rate", 0, "N", OPTIONS_NUMBER, FIELD(udp_rate), 0, 100000000,
	 "datagrams/s answered per source address\n"
	 "(default 1000; 0 = no limit)"},
	{"udp-byte-rate", 0, "B", OPTIONS_SIZE, FIELD(udp_byte_rate), 0,
	 1LL << 40, "bytes/s answered per source (default 1M; 0 = none)"},
	{"udp-unlimited", 0, NULL, OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "no per-source UDP limit: --udp-rate 0 and\n"
	 "--udp-byte-rate 0 (for benchmarks, never exposed)"},
	{"udp-max-size", 0, "B", OPTIONS_NUMBER, FIELD(udp_max_size), 0,
	 OPTIONS_UDP_MAX, "larger datagrams are dropped (default 65535)"},
	{"udp-deny-ports", 0, "LIST|none", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "source ports never answered, comma-separated, or\n"
	 "none (default " OPTIONS_UDP_DENY_DEFAULT ",\n"
	 "and our own port)"},
	{"udp-allow-nonunicast", 0, NULL, OPTIONS_FLAG,
	 FIELD(udp_allow_nonunicast), 0, 0,
	 "answer broadcast/multicast/unspecified sources"},
	{"stats-interval", 0, "S", OPTIONS_NUMBER, FIELD(stats_interval), 1,
	 86400, "print the table SIGUSR1 prints every S seconds"},
	{"stats-totals-only", 0, NULL, OPTIONS_FLAG, FIELD(stats_totals_only),
	 0, 0, "the periodic table without connection rows"},
	{"metrics", 0, "ADDR:PORT", OPTIONS_TEXT, FIELD(metrics), 0, 0,
	 "serve GET /metrics (Prometheus) and\n"
	 "GET /connections (JSON) over HTTP there"},
	{"fault", 0, "SPEC", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "inject a fault, TYPE[:PARAM=VALUE,...]\n"
	 "(repeatable, up to 32; echod(1) lists the types)"},
	{"control", 0, "ADDR:PORT|unix:PATH", OPTIONS_TEXT, FIELD(control), 0,
	 0,
	 "HTTP listener that reads and changes the faults\n"
	 "while echod serves (GET, PUT, POST /faults)"},
	{"tls-port", 0, "N", OPTIONS_NUMBER, FIELD(tls_port), 0, 65535,
	 "also serve TLS on port N of each address\n"
	 "(0 = any); needs --tls-cert and --tls-key"},
	{"tls-cert", 0, "FILE", OPTIONS_TEXT, FIELD(tls_cert), 0, 0,
	 "PEM certificate, then its chain (read again at\n"
	 "SIGHUP)"},
	{"tls-key", 0, "FILE", OPTIONS_TEXT, FIELD(tls_key), 0, 0,
	 "PEM private key of --tls-cert"},
	{"tls-ciphers", 0, "LIST", OPTIONS_TEXT, FIELD(tls_ciphers), 0, 0,
	 "OpenSSL cipher names, colon-separated: TLS_*\n"
	 "are TLS 1.3 suites, the rest TLS 1.2 ciphers"},
	{"tls-min-version", 0, "1.2|1.3", OPTIONS_CHOICE, FIELD(tls_min), 0, 0,
	 "oldest TLS version accepted (default 1.2)"},
	{"ipv4", '4', NULL, OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "IPv4 only (the wildcard is 0.0.0.0)"},
	{"ipv6", '6', NULL, OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "IPv6 only (the wildcard [::] with IPV6_V6ONLY)"},
	{"allow", 0, "CIDR", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "serve only these networks (repeatable); an\n"
	 "address alone is one host"},
	{"deny", 0, "CIDR", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "never serve these networks (repeatable; deny\n"
	 "wins over allow)"},
	{"proxy-protocol", 0, NULL, OPTIONS_FLAG, FIELD(proxy_protocol), 0, 0,
	 "take the client's address from a PROXY v1/v2\n"
	 "header sent by a --proxy-from load balancer"},
	{"proxy-from", 0, "CIDR", OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "a load balancer that sends PROXY headers\n"
	 "(repeatable); a header from elsewhere is refused"},
	{"proxy-timeout", 0, "S", OPTIONS_NUMBER, FIELD(proxy_timeout), 1, 3600,
	 "seconds a balancer has to send its header (3)"},
	{"max-per-source", 0, "N", OPTIONS_NUMBER, FIELD(max_per_source), 1,
	 OPTIONS_MAX_CONNS,
	 "open TCP connections per source address (IPv6:\n"
	 "per /64); the N+1th is closed at once"},
	{"grace", 0, "S", OPTIONS_NUMBER, FIELD(grace), 0, 3600,
	 "at SIGTERM/SIGINT, stop accepting and give open\n"
	 "connections S seconds to finish (default 5)"},
	{"log-format", 0, "text|json", OPTIONS_CHOICE, FIELD(log_json), 0, 0,
	 "text (default) or json, one object a line"},
	{"inetd", 0, NULL, OPTIONS_FLAG, FIELD(inetd), 0, 0,
	 "serve the socket on standard input: a TCP\n"
	 "connection (then exit 0), or a UDP socket\n"
	 "(exit after --idle-timeout, default 60 here)"},
	{"user", 0, "NAME[:GROUP]", OPTIONS_TEXT, FIELD(user), 0, 0,
	 "once the sockets are open, drop root and run\n"
	 "as NAME (and its group, or GROUP)"},
	{"verbose", 'v', NULL, OPTIONS_COUNT, FIELD(verbose), 0, 0,
	 "log descriptors, peers and per-connection counts\n"
	 "(twice: also transient peer errors)"},
	{"help", 'h', NULL, OPTIONS_OTHER, NO_FIELD, 0, 0, "this help"},
	{"version", 'V', NULL, OPTIONS_OTHER, NO_FIELD, 0, 0,
	 "print the version"},
};

const size_t options_count = sizeof(options_table) / sizeof(options_table[0]);

/* getopt_long's value for entry i: its short letter, or 256 + i. */
static int spec_code(size_t i)
{
	return options_table[i].short_name ? options_table[i].short_name
					   : 256 + (int)i;
}

static const struct options_spec *spec_of(int code)
{
	for (size_t i = 0; i < options_count; i++)
		if (spec_code(i) == code)
			return &options_table[i];
	return NULL;
}

void options_usage(FILE *f)
{
	const char *lead = "usage: echod";
	size_t col = strlen(lead);
	char item[64];
	int n;

	fputs(lead, f);
	for (size_t i = 0; i < options_count; i++) {
		const struct options_spec *s = &options_table[i];

		if (s->short_name == 'h' || s->short_name == 'V')
			continue;
		if (s->short_name)
			n = snprintf(item, sizeof(item), "[-%c%s%s]",
				     s->short_name, s->arg ? " " : "",
				     s->arg ? s->arg : "");
		else
			n = snprintf(item, sizeof(item), "[--%s%s%s]", s->name,
				     s->arg ? " " : "", s->arg ? s->arg : "");
		if (col + 1 + (size_t)n > 78) {
			fputs("\n            ", f);
			col = 12;
		}
		fprintf(f, " %s", item);
		col += 1 + (size_t)n;
	}
	fputc('\n', f);
}

/* One entry of --help: its names, then its text from column 26. */
static void help_entry(FILE *f, const struct options_spec *s)
{
	const char *text = s->help, *nl;
	char names[64];
	int n;

	if (s->short_name)
		n = snprintf(names, sizeof(names), "  -%c, --%s%s%s",
			     s->short_name, s->name, s->arg ? " " : "",
			     s->arg ? s->arg : "");
	else
		n = snprintf(names, sizeof(names), "      --%s%s%s", s->name,
			     s->arg ? " " : "", s->arg ? s->arg : "");
	/* A name too long for the column puts its text on the next line. */
	fprintf(f, n < 25 ? "%-26s" : "%s\n%26s", names, "");
	while ((nl = strchr(text, '\n')) != NULL) {
		fprintf(f, "%.*s\n%26s", (int)(nl - text), text, "");
		text = nl + 1;
	}
	fprintf(f, "%s\n", text);
}

static void print_help(void)
{
	options_usage(stdout);
	printf("\nechod: an RFC 862 echo server (TCP, UDP) on epoll or io_uring\n\n");
	for (size_t i = 0; i < options_count; i++)
		help_entry(stdout, &options_table[i]);
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
	o->threads = cpus > 0 ? (int)(cpus < OPTIONS_DEFAULT_MAX_THREADS
					      ? cpus
					      : OPTIONS_DEFAULT_MAX_THREADS)
			      : 1;
	o->max_pending = OPTIONS_DEFAULT_MAX_PENDING;
	o->linger = OPTIONS_DEFAULT_LINGER;
	o->send_timeout = OPTIONS_DEFAULT_SEND_TIMEOUT;
	o->backlog = OPTIONS_DEFAULT_BACKLOG;
	o->backend = "auto";
	o->tcp = true;
	o->udp_rate = OPTIONS_DEFAULT_UDP_RATE;
	o->udp_byte_rate = OPTIONS_DEFAULT_UDP_BYTE_RATE;
	o->udp_max_size = OPTIONS_UDP_MAX;
	o->uring_buffers = OPTIONS_DEFAULT_URING_BUFFERS;
	o->grace = OPTIONS_DEFAULT_GRACE;
	o->proxy_timeout = OPTIONS_DEFAULT_PROXY_TIMEOUT;
	o->memory = default_memory();
	o->tls_port = -1;
}

/*
 * Stores v in s's field, whatever its width: the table's fields are
 * bool, 32-bit (int, unsigned int, an enum) or 64-bit integers.
 */
static void store(struct options *o, const struct options_spec *s,
		  unsigned long long v)
{
	char *field = (char *)o + s->offset;
	uint32_t v32 = (uint32_t)v;
	bool b = v != 0;

	if (s->size == sizeof(bool))
		memcpy(field, &b, sizeof(b));
	else if (s->size == sizeof(v32))
		memcpy(field, &v32, sizeof(v32));
	else
		memcpy(field, &v, sizeof(v));
}

/*
 * The position of arg among s's words ("raw|line"), or -1. The word
 * itself is in *word, which points into s->arg.
 */
static int choice(const struct options_spec *s, const char *arg,
		  const char **word)
{
	const char *p = s->arg;
	size_t n, len = strlen(arg);

	for (int i = 0; *p; i++) {
		n = strcspn(p, "|");
		if (n == len && strncmp(p, arg, n) == 0) {
			*word = p;
			return i;
		}
		p += n + (p[n] == '|');
	}
	return -1;
}

/* "raw or line", "auto, epoll or io_uring": s's words, for an error. */
static void choices_text(const struct options_spec *s, char *out, size_t len)
{
	const char *p = s->arg;
	size_t n, used = 0;

	out[0] = '\0';
	while (*p && used < len) {
		n = strcspn(p, "|");
		used += (size_t)snprintf(out + used, len - used, "%s%.*s",
					 used == 0	? ""
					 : p[n] == '\0' ? " or "
							: ", ",
					 (int)n, p);
		p += n + (p[n] == '|');
	}
}

/* A word option: its position (CHOICE) or the word itself (WORD). */
static int set_choice(struct options *o, const struct options_spec *s,
		      const char *arg, char *err, size_t errlen)
{
	const char *word = NULL;
	char words[128];
	int i = choice(s, arg, &word);

	if (i < 0) {
		choices_text(s, words, sizeof(words));
		snprintf(err, errlen, "%s %s: unknown (expected %s)", s->name,
			 arg, words);
		return -1;
	}
	if (s->kind == OPTIONS_WORD)
		memcpy((char *)o + s->offset, &arg, sizeof(arg));
	else
		store(o, s, (unsigned long long)i);
	return 0;
}

/* A number or size in s's bounds; 0, or -1 with err. */
static int set_number(struct options *o, const struct options_spec *s,
		      const char *arg, char *err, size_t errlen)
{
	const char *errstr;
	long long v;

	if (s->kind == OPTIONS_NUMBER)
		v = number_parse(arg, s->min, s->max, &errstr);
	else
		v = number_parse_size(arg, s->kind == OPTIONS_SIZE ? s->min : 0,
				      s->max, &errstr);
	if (errstr == NULL && s->kind == OPTIONS_SIZE_OR_0 && v && v < s->min) {
		snprintf(err, errlen,
			 "%s %s: too small (at least %lldK, or 0 for no limit)",
			 s->name, arg, s->min / 1024);
		return -1;
	}
	if (errstr == NULL) {
		store(o, s, (unsigned long long)v);
		return 0;
	}
	snprintf(err, errlen, "%s %s: %s", s->name, arg, errstr);
	return -1;
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
		port = number_parse(item, 0, 65535, &errstr);
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

static int set_proxy_from(struct options *o, const char *arg, char *err,
			  size_t errlen)
{
	int e = access_add(&o->proxy_from, arg, false);

	if (e == 0)
		return 0;
	snprintf(err, errlen, "proxy-from %s: %s", arg,
		 e == -ENOSPC ? "too many networks"
			      : "not an IPv4 or IPv6 address or network");
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

static int add_bind(struct options *o, const char *arg, char *err,
		    size_t errlen)
{
	if (o->nbinds == OPTIONS_MAX_BINDS) {
		snprintf(err, errlen, "bind %s: more than %d addresses", arg,
			 OPTIONS_MAX_BINDS);
		return -1;
	}
	o->binds[o->nbinds++] = arg;
	return 0;
}

/*
 * --fault: the spec is parsed here, so that a bad one is a usage error;
 * main parses it again into the registry.
 */
static int add_fault(struct options *o, const char *arg, char *err,
		     size_t errlen)
{
	struct fault f;

	if (o->nfaults == OPTIONS_MAX_FAULTS) {
		snprintf(err, errlen, "fault %s: more than %d faults", arg,
			 OPTIONS_MAX_FAULTS);
		return -1;
	}
	if (fault_parse(arg, &f, err, errlen) < 0)
		return -1;
	o->faults[o->nfaults++] = arg;
	return 0;
}

static int set_family(struct options *o, int family, char *err, size_t errlen)
{
	if (o->family && o->family != family) {
		snprintf(err, errlen, "options -4 and -6: choose one");
		return -1;
	}
	o->family = family;
	return 0;
}

/*
 * The options the table cannot say with a field and bounds. Returns 0,
 * 1 after --help or --version (answered on stdout), or -1 with err.
 */
static int set_other(struct options *o, const struct options_spec *s,
		     const char *arg, char *err, size_t errlen)
{
	switch (s->short_name) {
	case 'b':
		return add_bind(o, arg, err, errlen);
	case '4':
	case '6':
		return set_family(o, s->short_name - '0', err, errlen);
	case 'h':
		print_help();
		return 1;
	case 'V':
		printf("echod %s\n", ECHOD_VERSION);
		return 1;
	}
	if (strcmp(s->name, "fault") == 0)
		return add_fault(o, arg, err, errlen);
	if (strcmp(s->name, "udp-deny-ports") == 0)
		return set_deny_ports(o, arg, err, errlen);
	if (strcmp(s->name, "proxy-from") == 0)
		return set_proxy_from(o, arg, err, errlen);
	if (strcmp(s->name, "allow") == 0 || strcmp(s->name, "deny") == 0)
		return set_access(o, strcmp(s->name, "deny") == 0, arg, err,
				  errlen);
	if (strcmp(s->name, "no-tcp") == 0) {
		o->tcp = false;
	} else {
		/* udp-unlimited: both per-source limits off, as a pair. */
		o->udp_rate = 0;
		o->udp_byte_rate = 0;
	}
	return 0;
}

/* Applies one option by its entry; 0, 1 (answered) or -1 with err. */
static int apply(struct options *o, const struct options_spec *s,
		 const char *arg, char *err, size_t errlen)
{
	switch (s->kind) {
	case OPTIONS_FLAG:
		store(o, s, 1);
		return 0;
	case OPTIONS_COUNT:
		o->verbose++;
		return 0;
	case OPTIONS_TEXT:
		memcpy((char *)o + s->offset, &arg, sizeof(arg));
		return 0;
	case OPTIONS_NUMBER:
	case OPTIONS_SIZE:
	case OPTIONS_SIZE_OR_0:
		return set_number(o, s, arg, err, errlen);
	case OPTIONS_CHOICE:
	case OPTIONS_WORD:
		return set_choice(o, s, arg, err, errlen);
	case OPTIONS_OTHER:
		break;
	}
	return set_other(o, s, arg, err, errlen);
}

/*
 * --tls-port and what goes with it: each without the other is a mistake
 * (no certificate to serve, or one never served).
 */
static int check_tls(const struct options *o, char *err, size_t errlen)
{
	const char *why, *lone = o->tls_cert	  ? "--tls-cert"
				 : o->tls_key	  ? "--tls-key"
				 : o->tls_ciphers ? "--tls-ciphers"
						  : NULL;

	if (o->tls_port < 0) {
		if (lone)
			snprintf(err, errlen, "option %s: needs --tls-port",
				 lone);
		return lone ? -1 : 0;
	}
	if (!tls_available(&why))
		snprintf(
			err, errlen,
			"option --tls-port: TLS is not available (built without libssl)");
	else if (!o->tls_cert || !o->tls_key)
		snprintf(err, errlen,
			 "option --tls-port: needs --tls-cert and --tls-key");
	else if (o->inetd)
		snprintf(
			err, errlen,
			"option --tls-port: not supported with --inetd (its socket is served plain)");
	else if (!o->tcp)
		snprintf(err, errlen,
			 "option --tls-port: not with --no-tcp (TLS is TCP)");
	else
		return 0;
	return -1;
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
	if (check_tls(o, err, errlen) < 0)
		return -1;
	/* Either alone is a mistake: every header refused, or none asked. */
	if (o->proxy_protocol != (o->proxy_from.n > 0)) {
		snprintf(err, errlen, "option %s: needs %s",
			 o->proxy_protocol ? "--proxy-protocol"
					   : "--proxy-from",
			 o->proxy_protocol ? "--proxy-from CIDR"
					   : "--proxy-protocol");
		return -1;
	}
	return 0;
}

/* getopt_long's tables, built from options_table once per parse. */
struct getopt_tables {
	struct option
		longs[sizeof(options_table) / sizeof(options_table[0]) + 1];
	char shorts[2 * sizeof(options_table) / sizeof(options_table[0]) + 2];
};

static void build_tables(struct getopt_tables *t)
{
	size_t n = 0;

	t->shorts[n++] = ':'; /* a missing value is ':', not '?' */
	for (size_t i = 0; i < options_count; i++) {
		const struct options_spec *s = &options_table[i];

		t->longs[i] = (struct option){
			s->name, s->arg ? required_argument : no_argument, NULL,
			spec_code(i)};
		if (s->short_name) {
			t->shorts[n++] = s->short_name;
			if (s->arg)
				t->shorts[n++] = ':';
		}
	}
	t->longs[options_count] = (struct option){NULL, 0, NULL, 0};
	t->shorts[n] = '\0';
}

int options_parse(struct options *o, int argc, char **argv, char *err,
		  size_t errlen)
{
	const struct options_spec *s;
	struct getopt_tables t;
	bool idle_set = false;
	int c, r;

	set_defaults(o);
	set_deny_ports(o, OPTIONS_UDP_DENY_DEFAULT, err, errlen);
	build_tables(&t);
	optind = 0; /* glibc: full reset, so the unit tests can parse again */
	opterr = 0; /* we word the error ourselves */
	while ((c = getopt_long(argc, argv, t.shorts, t.longs, NULL)) != -1) {
		s = spec_of(c);
		if (s == NULL) {
			snprintf(err, errlen, "option %s: %s", argv[optind - 1],
				 c == ':' ? "needs a value" : "unknown");
			return -1;
		}
		r = apply(o, s, optarg, err, errlen);
		if (r != 0)
			return r;
		idle_set |=
			s->offset == offsetof(struct options, idle_timeout) &&
			s->kind == OPTIONS_NUMBER;
	}
	return finish(o, argc, argv, idle_set, err, errlen);
}
