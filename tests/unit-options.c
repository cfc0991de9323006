// SPDX-License-Identifier: BSD-2-Clause
/* unit-options.c - option parsing and number validation (tests/tap.h). */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../src/number.h"
#include "../src/options.h"
#include "../src/tls.h"
#include "tap.h"

/* Parses a NULL-terminated argument list; returns options_parse()'s value. */
static int parse(struct options *o, char *err, const char *first, ...)
{
	char *argv[32] = {(char *)"echod"};
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a && argc < 31;
	     a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return options_parse(o, argc, argv, err, 256);
}

static void test_numbers(void)
{
	const char *e;

	is_int(number_parse("60000", 0, 65535, &e), 60000, "60000 parses");
	ok(e == NULL, "and sets no error");
	number_parse("70000", 0, 65535, &e);
	is_str(e, "too large", "70000 is too large for a port");
	number_parse("-1", 0, 65535, &e);
	is_str(e, "too small", "-1 is too small");
	number_parse("12ab", 0, 65535, &e);
	is_str(e, "invalid", "12ab is invalid");
	number_parse("", 0, 65535, &e);
	is_str(e, "invalid", "empty is invalid");
	number_parse(" 5", 0, 65535, &e);
	is_str(e, "invalid", "leading space is invalid");
	number_parse("99999999999999999999999", 0, 65535, &e);
	is_str(e, "too large", "overflow is too large");
}

static void test_defaults(void)
{
	struct options o;
	char err[256];

	is_int(parse(&o, err, NULL), 0, "no arguments: run");
	is_int(o.port, 60000, "default port 60000");
	is_int(o.nbinds, 0, "default: no explicit address (dual-stack)");
	is_int(o.messages, 0, "default: no message limit");
	ok(o.framing == FRAMING_RAW, "default framing raw");
	ok(o.threads >= 1, "default threads >= 1 (one per CPU)");
	is_str(o.backend, "auto", "default backend auto");
}

static void test_values(void)
{
	struct options o;
	char err[256];

	is_int(parse(&o, err, "-p", "0", "-n", "3", "--framing", "line", "-t",
		     "2", "-b", "127.0.0.1", "--bind", "::1", "-vv",
		     "--max-conns", "10", "--idle-timeout", "5",
		     "--max-pending", "64K", NULL),
	       0, "a full command line parses");
	is_int(o.port, 0, "-p 0");
	is_int(o.messages, 3, "-n 3");
	ok(o.framing == FRAMING_LINE, "--framing line");
	is_int(o.threads, 2, "-t 2");
	is_int(o.nbinds, 2, "two -b");
	is_str(o.binds[1], "::1", "second -b kept");
	is_int(o.verbose, 2, "-vv counts twice");
	is_int(o.max_conns, 10, "--max-conns 10");
	is_int(o.idle_timeout, 5, "--idle-timeout 5");
	is_int(o.max_pending, 65536, "--max-pending 64K");
}

static void test_errors(void)
{
	struct options o;
	char err[256];

	is_int(parse(&o, err, "-p", "70000", NULL), -1, "port 70000 refused");
	is_str(err, "port 70000: too large", "and named");
	is_int(parse(&o, err, "--framing", "words", NULL), -1,
	       "unknown framing refused");
	is_str(err, "framing words: unknown (expected raw or line)",
	       "and named");
	is_int(parse(&o, err, "-n", "0", NULL), -1, "-n 0 refused");
	is_int(parse(&o, err, "--bogus", NULL), -1, "unknown option refused");
	is_str(err, "option --bogus: unknown", "and named");
	is_int(parse(&o, err, "-p", NULL), -1, "missing value refused");
	is_str(err, "option -p: needs a value", "and named");
	is_int(parse(&o, err, "stray", NULL), -1, "stray argument refused");
	is_int(parse(&o, err, "--backend", "kqueue", NULL), -1,
	       "unknown backend refused");
	is_int(parse(&o, err, "--max-pending", "10", NULL), -1,
	       "--max-pending below 1K refused");
	is_int(parse(&o, err, "-t", "0", NULL), -1, "zero threads refused");
	is_int(parse(&o, err, "--udp-unlimited", NULL), 0, "--udp-unlimited");
	ok(o.udp_rate == 0 && o.udp_byte_rate == 0,
	   "--udp-unlimited lifts both per-source UDP limits");
	is_int(parse(&o, err, "--udp-unlimited", "--udp-rate", "5", NULL), 0,
	       "--udp-unlimited then --udp-rate");
	ok(o.udp_rate == 5 && o.udp_byte_rate == 0, "the later option wins");
}

/* The value of spec s's field in o, whatever its width. */
static long long field(const struct options *o, const struct options_spec *s)
{
	const char *f = (const char *)o + s->offset;
	uint32_t v32;
	uint64_t v64;

	if (s->size == sizeof(v32)) {
		memcpy(&v32, f, sizeof(v32));
		return v32;
	}
	memcpy(&v64, f, sizeof(v64));
	return (long long)v64;
}

/* Sets --name to v; returns options_parse's value, the error in err. */
static int parse_value(struct options *o, char *err,
		       const struct options_spec *s, long long v)
{
	char opt[64], val[32];

	snprintf(opt, sizeof(opt), "--%s", s->name);
	snprintf(val, sizeof(val), "%lld", v);
	/* --tls-port alone is a usage error: it needs its pair. */
	if (strcmp(s->name, "tls-port") == 0)
		return parse(o, err, opt, val, "--tls-cert", "c.pem",
			     "--tls-key", "k.pem", NULL);
	return parse(o, err, opt, val, NULL);
}

/*
 * Every bounded option, from the table the parser reads: both bounds
 * are taken and stored, one past each is refused and named.
 */
static void test_table_bounds(void)
{
	struct options o;
	char err[256], want[128];
	const char *why;

	for (size_t i = 0; i < options_count; i++) {
		const struct options_spec *s = &options_table[i];

		ok(s->help && s->help[0], "--%s has help", s->name);
		if (s->kind != OPTIONS_NUMBER && s->kind != OPTIONS_SIZE &&
		    s->kind != OPTIONS_SIZE_OR_0)
			continue;
		/* Without libssl any --tls-port is refused (test_tls). */
		if (strcmp(s->name, "tls-port") == 0 && !tls_available(&why))
			continue;
		is_int(parse_value(&o, err, s, s->min), 0, "--%s %lld taken",
		       s->name, s->min);
		ok(field(&o, s) == s->min, "--%s %lld stored", s->name, s->min);
		is_int(parse_value(&o, err, s, s->max), 0, "--%s %lld taken",
		       s->name, s->max);
		ok(field(&o, s) == s->max, "--%s %lld stored", s->name, s->max);
		if (s->max < LLONG_MAX) {
			parse_value(&o, err, s, s->max + 1);
			snprintf(want, sizeof(want), "%s %lld: too large",
				 s->name, s->max + 1);
			is_str(err, want, "--%s above its maximum", s->name);
		}
		if (s->min > 0 || s->kind == OPTIONS_NUMBER) {
			parse_value(&o, err, s, s->min - 1);
			ok(strstr(err, "too small") != NULL,
			   "--%s below its minimum: %s", s->name, err);
		}
	}
	for (size_t i = 0; i < options_count; i++) {
		const struct options_spec *a = &options_table[i];
		int same = 0;

		for (size_t j = 0; j < options_count; j++)
			same += strcmp(a->name, options_table[j].name) == 0 ||
				(a->short_name &&
				 a->short_name == options_table[j].short_name);
		is_int(same, 1, "--%s: no other entry has its names", a->name);
	}
}

/*
 * --fault: each spec is parsed at option time (a bad one is a usage
 * error naming it), kept as given, up to a set's worth; --control is
 * kept as given (main checks its form).
 */
static void test_faults(void)
{
	char *argv[OPTIONS_MAX_FAULTS * 2 + 4] = {(char *)"echod"};
	struct options o;
	char err[256];
	int argc = 1;

	is_int(parse(&o, err, NULL), 0, "no --fault: run");
	ok(o.nfaults == 0 && o.control == NULL, "no fault, no control");
	is_int(parse(&o, err, "--fault", "latency:delay=5ms", "--fault",
		     "latency:name=b,seed=7,delay=1", "--control",
		     "unix:/run/x", NULL),
	       0, "two --fault and --control: run");
	ok(o.nfaults == 2 &&
		   strcmp(o.faults[1], "latency:name=b,seed=7,delay=1") == 0,
	   "both specs kept as given");
	is_str(o.control, "unix:/run/x", "--control kept as given");
	is_int(parse(&o, err, "--fault", "latency:delay=x", NULL), -1,
	       "a bad spec: usage error");
	ok(strncmp(err, "fault 'latency:delay=x': ", 25) == 0,
	   "which names the spec: %s", err);
	for (int i = 0; i <= OPTIONS_MAX_FAULTS; i++) {
		argv[argc++] = (char *)"--fault";
		argv[argc++] = (char *)"latency:delay=1";
	}
	argv[argc] = NULL;
	is_int(options_parse(&o, argc, argv, err, sizeof(err)), -1,
	       "one --fault more than a set holds: usage error");
	is_str(err, "fault latency:delay=1: more than 32 faults", "saying so");
}

/* The TLS options: defaults, values, and what each needs. */
static void test_tls(void)
{
	struct options o;
	const char *why;
	char err[256];

	is_int(parse(&o, err, NULL), 0, "no TLS option: run");
	ok(o.tls_port == -1 && o.tls_min == 0 && o.tls_cert == NULL,
	   "default: no TLS listener, minimum 1.2");
	if (!tls_available(&why)) {
		is_int(parse(&o, err, "--tls-port", "0", "--tls-cert", "c",
			     "--tls-key", "k", NULL),
		       -1, "no libssl: --tls-port is a usage error");
		is_str(err,
		       "option --tls-port: TLS is not available (built without libssl)",
		       "... saying so");
		return;
	}
	is_int(parse(&o, err, "--tls-port", "8443", "--tls-cert", "c.pem",
		     "--tls-key", "k.pem", "--tls-ciphers",
		     "TLS_AES_128_GCM_SHA256", "--tls-min-version", "1.3",
		     NULL),
	       0, "a full TLS command line: run");
	ok(o.tls_port == 8443 && strcmp(o.tls_cert, "c.pem") == 0 &&
		   strcmp(o.tls_key, "k.pem") == 0 && o.tls_min == 1 &&
		   strcmp(o.tls_ciphers, "TLS_AES_128_GCM_SHA256") == 0,
	   "... each value kept");
	is_int(parse(&o, err, "--tls-port", "0", "--tls-key", "k", NULL), -1,
	       "--tls-port without --tls-cert: usage error");
	is_str(err, "option --tls-port: needs --tls-cert and --tls-key",
	       "... saying so");
}

int main(void)
{
	test_numbers();
	test_defaults();
	test_values();
	test_errors();
	test_table_bounds();
	test_faults();
	test_tls();
	return done_testing();
}
