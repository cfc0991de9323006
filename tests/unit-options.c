/* unit-options.c - option parsing and number validation (tests/tap.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../src/options.h"
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

	is_int(options_number("60000", 0, 65535, &e), 60000, "60000 parses");
	ok(e == NULL, "and sets no error");
	options_number("70000", 0, 65535, &e);
	is_str(e, "too large", "70000 is too large for a port");
	options_number("-1", 0, 65535, &e);
	is_str(e, "too small", "-1 is too small");
	options_number("12ab", 0, 65535, &e);
	is_str(e, "invalid", "12ab is invalid");
	options_number("", 0, 65535, &e);
	is_str(e, "invalid", "empty is invalid");
	options_number(" 5", 0, 65535, &e);
	is_str(e, "invalid", "leading space is invalid");
	options_number("99999999999999999999999", 0, 65535, &e);
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
}

int main(void)
{
	test_numbers();
	test_defaults();
	test_values();
	test_errors();
	return done_testing();
}
