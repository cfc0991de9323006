// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-fault.c - --fault specs (every type, every error one line, every
 * type formatted and parsed back the same), and the registry: add,
 * remove and replace, counters that outlive a replace, versions, and
 * fault_applies choosing the same way for the same seed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../src/fault.h"
#include "tap.h"

/* Every field but seeded, which a formatted spec always sets. */
static bool same_fault(const struct fault *a, const struct fault *b)
{
	if (a->from.n != b->from.n || a->from.any_allow != b->from.any_allow)
		return false;
	for (int i = 0; i < a->from.n; i++)
		if (memcmp(&a->from.rule[i], &b->from.rule[i],
			   sizeof(a->from.rule[i])) != 0)
			return false;
	return a->type == b->type && strcmp(a->name, b->name) == 0 &&
	       a->delay_us == b->delay_us && a->jitter_us == b->jitter_us &&
	       a->after_us == b->after_us && a->rate == b->rate &&
	       a->size == b->size && a->bytes == b->bytes && a->rst == b->rst &&
	       a->dist == b->dist && a->p == b->p &&
	       a->toxicity == b->toxicity && a->seed == b->seed;
}

static struct fault parse(const char *spec)
{
	struct fault f;
	char err[256] = "";

	if (fault_parse(spec, &f, err, sizeof(err)) != 0)
		printf("# %s: %s\n", spec, err);
	return f;
}

static void test_types(void)
{
	struct fault f;
	char err[256];

	f = parse("latency:delay=50,jitter=10ms,dist=normal,seed=7");
	ok(f.type == FAULT_LATENCY && f.delay_us == 50000 &&
		   f.jitter_us == 10000 && f.dist == FAULT_DIST_NORMAL,
	   "latency: delay (bare: ms), jitter, dist");
	ok(f.seed == 7 && f.seeded && f.toxicity == 1 && f.from.n == 0 &&
		   strcmp(f.name, "latency") == 0,
	   "... seed given, toxicity 1, no from=, named after its type");
	f = parse("latency:delay=0");
	ok(f.delay_us == 0 && f.dist == FAULT_DIST_UNIFORM && !f.seeded,
	   "latency:delay=0: uniform, a random seed");

	f = parse("bandwidth:rate=64K");
	is_int(f.rate, 65536, "bandwidth: rate=64K is 65536 bytes/s");
	f = parse("slicer:size=1,delay=1us");
	ok(f.type == FAULT_SLICER && f.size == 1 && f.delay_us == 1,
	   "slicer: size, delay");
	f = parse("limit-data:bytes=2M,close=rst");
	ok(f.bytes == 2 << 20 && f.rst, "limit-data: bytes, close=rst");
	f = parse("limit-data:bytes=0");
	ok(f.bytes == 0 && !f.rst, "limit-data: bytes=0, close fin by default");
	f = parse("timeout:after=0");
	ok(f.type == FAULT_TIMEOUT && f.after_us == 0, "timeout: after=0");
	f = parse("reset-peer:after=2s");
	is_int(f.after_us, 2000000, "reset-peer: after=2s");
	f = parse("slow-close:delay=3s");
	is_int(f.delay_us, 3000000, "slow-close: delay=3s");
	f = parse("stall:after=1K");
	ok(f.type == FAULT_STALL && f.bytes == 1024 && f.after_us == 0,
	   "stall: after is a size, kept in bytes");
	f = parse("corrupt:p=0.25");
	ok(f.type == FAULT_CORRUPT && f.p == 0.25, "corrupt: p");
	f = parse("loss:p=1,toxicity=0.5,from=192.0.2.0/24,name=drop.1");
	ok(f.type == FAULT_LOSS && f.p == 1 && f.toxicity == 0.5 &&
		   f.from.n == 1 && strcmp(f.name, "drop.1") == 0,
	   "loss: p, with toxicity, from= and name=");
	f = parse("duplicate:p=.5");
	ok(f.type == FAULT_DUPLICATE && f.p == 0.5, "duplicate: p=.5");
	f = parse("reorder:p=1e-3,delay=5ms");
	ok(f.type == FAULT_REORDER && f.p == 1e-3 && f.delay_us == 5000,
	   "reorder: p, delay");
	is_int(fault_parse("latency:jitter=20ms,delay=10ms", &f, err,
			   sizeof(err)),
	       0, "jitter over delay is allowed (the runtime clamps at 0)");
}

/* spec must fail with -EINVAL and one line in err holding want. */
static void fails(const char *spec, const char *want)
{
	char err[256] = "", label[48];
	struct fault f;
	int rc = fault_parse(spec, &f, err, sizeof(err));
	size_t i;

	/* The spec as a test's name: one line, and not all of a long one. */
	for (i = 0; spec[i] && i + 1 < sizeof(label); i++)
		label[i] = spec[i] == '\n' ? '|' : spec[i];
	label[i] = '\0';
	if (!ok(rc == -EINVAL && strncmp(err, "fault '", 7) == 0 &&
			strchr(err, '\n') == NULL && strstr(err, want),
		"refused: %s", label))
		printf("#   rc %d, err \"%s\", want \"%s\"\n", rc, err, want);
}

static void test_errors(void)
{
	char err[256], spec[FAULT_SPEC_MAX + 8];
	struct fault f;

	fails("latency", "delay: required");
	fails("loss", "p: required");
	fails("corrupt:toxicity=1", "p: required");
	fails("reorder:p=1", "delay: required");
	fails("latency:delay=x",
	      "fault 'latency:delay=x': delay: not a duration (us, ms or s)");
	fails("", "no type (latency, bandwidth, slicer, limit-data, timeout, "
		  "reset-peer, slow-close, stall, corrupt, loss, duplicate, "
		  "reorder)");
	fails("jam:p=1", "jam: not a type (latency, bandwidth");
	fails(":p=1", "no type");
	fails("latency:rate=1", "rate: not a parameter of latency (delay, "
				"jitter, dist, toxicity, from, seed, name)");
	fails("stall:after=1s", "after: not a size (bytes, K or M)");
	fails("timeout:after=1K", "after: not a duration");
	fails("loss:delay=1", "delay: not a parameter of loss");
	fails("latency:delay=1,delay=2", "delay: given twice");
	fails("latency:", "an empty parameter");
	fails("latency:delay=1,", "an empty parameter");
	fails("latency:delay", "delay: no value");
	fails("bandwidth", "rate: required");
	fails("bandwidth:rate=0", "rate: must be more than 0");
	fails("slicer:delay=1", "size: required");
	fails("slicer:size=0", "size: must be more than 0");
	fails("latency:dist=cauchy", "dist: not uniform, normal or pareto");
	fails("limit-data:close=shut", "close: not fin or rst");
	fails("loss:p=1.5", "p: not a number in [0, 1]");
	fails("loss:p=-0", "p: not a number in [0, 1]");
	fails("loss:p=nan", "p: not a number");
	fails("loss:p=inf", "p: not a number");
	fails("loss:p=0x1p-1", "p: not a number");
	fails("loss:p= 0.5", "p: not a number");
	fails("loss:p=0.5x", "p: not a number");
	fails("loss:p=", "p: not a number");
	fails("loss:p=1,toxicity=2", "toxicity: not a number in [0, 1]");
	fails("loss:from=192.0.2.0/33", "from: not an address or CIDR");
	fails("loss:from=example.org", "from: not an address or CIDR");
	fails("loss:name=", "name: not 1 to 31");
	fails("loss:name=a b", "name: not 1 to 31");
	fails("loss:name=a234567890123456789012345678901a", "name: not 1 to");
	fails("loss:seed=-1", "seed: not a number");
	fails("loss:seed=18446744073709551616", "seed: over");
	fails("latency:delay=1\nx", "fault 'latency:delay=1?x': delay:");
	memset(spec, 'a', sizeof(spec));
	spec[sizeof(spec) - 1] = '\0';
	fails(spec, "longer than 511 bytes");
	is_int(fault_parse("latency:delay=x", &f, NULL, 0), -EINVAL,
	       "no err buffer: still -EINVAL");
	err[0] = 'x';
	is_int(fault_parse("latency:delay=x", &f, err, 1), -EINVAL,
	       "a one-byte err: -EINVAL, err empty");
	ok(err[0] == '\0', "... and NUL-terminated");
}

/* value as param of type ("latency:delay=" value): 0 and f, or fails. */
static int value(const char *type, const char *param, const char *v,
		 struct fault *f)
{
	char spec[128], err[256];

	snprintf(spec, sizeof(spec), "%s:%s=%s", type, param, v);
	return fault_parse(spec, f, err, sizeof(err));
}

static void test_durations(void)
{
	static const struct {
		const char *v;
		long long us; /* -1: refused */
	} cases[] = {
		{"0", 0},
		{"1", 1000},
		{"1us", 1},
		{"1ms", 1000},
		{"1s", 1000000},
		{"0001s", 1000000},
		{"3600s", 3600000000LL},
		{"3600000ms", 3600000000LL},
		{"3600000000us", 3600000000LL},
		{"3600000", 3600000000LL},
		{"000000000000000000000000000000000001us", 1},
		{"3601s", -1},
		{"3600000001us", -1},
		{"3600001", -1},
		{"18446744073709551616us", -1},
		{"99999999999999999999999s", -1},
		{"-1", -1},
		{"+1", -1},
		{" 1", -1},
		{"1 ", -1},
		{"1.5ms", -1},
		{"1m", -1},
		{"1h", -1},
		{"1S", -1},
		{"ms", -1},
		{"", -1},
	};
	struct fault f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = value("latency", "delay", cases[i].v, &f);

		if (cases[i].us < 0)
			is_int(rc, -EINVAL, "delay=%s: refused", cases[i].v);
		else
			ok(rc == 0 && f.delay_us == (uint64_t)cases[i].us,
			   "delay=%s: %lld us", cases[i].v, cases[i].us);
	}
}

static void test_sizes(void)
{
	static const struct {
		const char *v;
		long long bytes; /* -1: refused */
	} cases[] = {
		{"0", 0},
		{"1", 1},
		{"1K", 1024},
		{"1k", 1024},
		{"3M", 3 << 20},
		{"1099511627776", 1LL << 40},
		{"1048576M", 1LL << 40},
		{"01K", 1024},
		{"1099511627777", -1},
		{"1048577M", -1},
		{"1G", -1},
		{"1KB", -1},
		{"K", -1},
		{"-1", -1},
		{"1.5K", -1},
		{"18446744073709551616", -1},
		{"", -1},
	};
	struct fault f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = value("limit-data", "bytes", cases[i].v, &f);

		if (cases[i].bytes < 0)
			is_int(rc, -EINVAL, "bytes=%s: refused", cases[i].v);
		else
			ok(rc == 0 && f.bytes == (uint64_t)cases[i].bytes,
			   "bytes=%s: %lld", cases[i].v, cases[i].bytes);
	}
	ok(value("bandwidth", "rate", "1M", &f) == 0 && f.rate == 1 << 20,
	   "rate=1M: 1048576 bytes/s");
	ok(value("stall", "seed", "18446744073709551615", &f) == 0 &&
		   f.seed == UINT64_MAX && f.seeded,
	   "seed=2^64-1");
	ok(value("loss", "p", "0", &f) == 0 && f.p == 0, "p=0");
	ok(value("loss", "p", "1.0", &f) == 0 && f.p == 1, "p=1.0");
	ok(value("loss", "p", "1e-400", &f) == 0 && f.p == 0,
	   "p=1e-400: 0 (underflow is still in [0, 1])");
}

/* spec, formatted and parsed back: the same fault, the same text. */
static void round_trip(const char *spec)
{
	char text[FAULT_SPEC_MAX], again[FAULT_SPEC_MAX], err[256] = "";
	struct fault f = parse(spec), g;
	int n = fault_format(&f, text, sizeof(text));

	ok(n > 0 && fault_parse(text, &g, err, sizeof(err)) == 0 &&
		   same_fault(&f, &g) && g.seeded,
	   "round trip: %s -> %s %s", spec, text, err);
	fault_format(&g, again, sizeof(again));
	is_str(again, text, "... and formats the same again");
}

static void test_round_trip(void)
{
	char small[16], text[FAULT_SPEC_MAX];
	struct fault f;

	round_trip("latency:delay=50ms,jitter=3us,dist=pareto,seed=1");
	round_trip(
		"latency:delay=1,toxicity=0.1,from=2001:db8::/33,name=a.b-c_d");
	round_trip("latency:delay=0");
	round_trip("bandwidth:rate=1,from=10.1.0.0/15");
	round_trip("slicer:size=1M,delay=3600s,toxicity=1e-300");
	round_trip("limit-data:bytes=7,close=rst,from=::ffff:1.2.3.4/80");
	round_trip("limit-data:from=::ffff:1.2.3.4");
	round_trip("timeout:after=0,seed=18446744073709551615");
	round_trip("reset-peer:after=999us,toxicity=0");
	round_trip("slow-close:delay=1,from=::1");
	round_trip("stall:after=1099511627776");
	round_trip("corrupt:p=0.1");
	round_trip("loss:p=0.30000000000000004,toxicity=0.7");
	round_trip("duplicate:p=1,from=0.0.0.0/0");
	round_trip("reorder:p=0.5,delay=20ms,name=r");
	f = parse("loss:p=0.25,seed=3,name=l");
	is_int(fault_format(&f, text, sizeof(text)), 25,
	       "loss formats to its length");
	is_str(text, "loss:p=0.25,seed=3,name=l", "... the canonical spec");
	f = parse("reorder:p=0.5,delay=20ms,toxicity=0.5,from=192.0.2.0/24,"
		  "seed=9,name=r");
	fault_format(&f, text, sizeof(text));
	is_str(text,
	       "reorder:delay=20000us,p=0.5,toxicity=0.5,from=192.0.2.0/24,"
	       "seed=9,name=r",
	       "durations in us, toxicity and from= when set");
	is_int(fault_format(&f, small, sizeof(small)), -ENOSPC,
	       "a buffer too small: -ENOSPC");
}

static void test_registry_changes(struct fault_registry *r)
{
	struct fault f = parse("loss:p=1,name=a"), set[FAULT_MAX + 1];
	struct fault_set *s = fault_acquire(r), *t;
	char err[256];
	int added = 0;

	ok(s->n == 0 && s->version == 0 && fault_version(r) == 0,
	   "a new registry: an empty set, version 0");
	is_int(fault_add(r, &f, err, sizeof(err)), 0, "add a");
	is_int(fault_add(r, &f, err, sizeof(err)), -EEXIST, "add a again");
	ok(strstr(err, "'a'") != NULL, "... err names it: %s", err);
	ok(s->n == 0, "the set held before is unchanged");
	t = fault_acquire(r);
	ok(t->n == 1 && t->version == 1 && fault_version(r) == 1,
	   "the current set: a, version 1");
	fault_release(s);
	fault_release(t);
	is_int(fault_remove(r, "b"), -ENOENT, "remove b: not there");
	is_int(fault_remove(r, "a"), 0, "remove a");
	is_int(fault_version(r), 2, "... version 2");
	for (int i = 0; i < FAULT_MAX; i++) {
		snprintf(f.name, sizeof(f.name), "f%d", i);
		added += fault_add(r, &f, err, sizeof(err)) == 0;
	}
	is_int(added, FAULT_MAX, "%d faults added", FAULT_MAX);
	snprintf(f.name, sizeof(f.name), "one-more");
	is_int(fault_add(r, &f, err, sizeof(err)), -ENOSPC,
	       "one more: -ENOSPC");
	is_int(fault_remove(r, "f5"), 0, "remove f5 from the middle");
	s = fault_acquire(r);
	ok(s->n == FAULT_MAX - 1 && strcmp(s->f[5].name, "f6") == 0 &&
		   strcmp(s->f[s->n - 1].name, "f31") == 0,
	   "... the others move up, in order");
	fault_release(s);
	for (int i = 0; i <= FAULT_MAX; i++) {
		set[i] = f;
		snprintf(set[i].name, sizeof(set[i].name), "r%d", i);
	}
	is_int(fault_replace(r, set, FAULT_MAX + 1, err, sizeof(err)), -ENOSPC,
	       "replace by %d: -ENOSPC", FAULT_MAX + 1);
	strcpy(set[2].name, "r0");
	is_int(fault_replace(r, set, 3, err, sizeof(err)), -EEXIST,
	       "replace by a set naming r0 twice: -EEXIST");
	ok(strstr(err, "'r0'") != NULL, "... err names it: %s", err);
	is_int(fault_replace(r, set, 2, err, sizeof(err)), 0, "replace by 2");
	s = fault_acquire(r);
	ok(s->n == 2 && strcmp(s->f[1].name, "r1") == 0, "... r0, r1");
	fault_release(s);
	is_int(fault_replace(r, NULL, 0, err, sizeof(err)), 0,
	       "replace by nothing");
	s = fault_acquire(r);
	ok(s->n == 0 && s->version == fault_version(r), "... an empty set");
	fault_release(s);
}

/* The current set's activations of the fault named name, or -1. */
static long long activations(struct fault_registry *r, const char *name)
{
	struct fault_set *s = fault_acquire(r);
	long long n = -1;

	for (unsigned int i = 0; i < s->n; i++)
		if (strcmp(s->f[i].name, name) == 0)
			n = (long long)fault_activations(s, i);
	fault_release(s);
	return n;
}

static void test_counters(struct fault_registry *r)
{
	struct fault set[3] = {parse("loss:p=1,name=x"),
			       parse("corrupt:p=1,name=y"),
			       parse("latency:delay=1,name=z")};
	struct fault_set *old;
	char err[256];

	fault_replace(r, set, 2, err, sizeof(err));
	old = fault_acquire(r);
	fault_activate(old, 0);
	fault_activate(old, 1);
	fault_activate(old, 1);
	set[0] = set[2];
	set[2] = parse("loss:p=0.5,name=x");
	is_int(fault_replace(r, set, 3, err, sizeof(err)), 0,
	       "replace: z first, y kept, x at another place, p changed");
	is_int(activations(r, "y"), 2, "y keeps its 2 activations");
	is_int(activations(r, "x"), 1, "x keeps its 1 (name and type kept)");
	is_int(activations(r, "z"), 0, "z, new, starts at 0");
	fault_activate(old, 0);
	is_int(activations(r, "x"), 2,
	       "a count made on the replaced set shows in the current one");
	fault_release(old);
	set[1] = parse("latency:delay=1,name=y");
	fault_replace(r, set, 3, err, sizeof(err));
	is_int(activations(r, "y"), 0, "y with another type: a new counter");
	fault_remove(r, "x");
	fault_add(r, &set[2], err, sizeof(err));
	is_int(activations(r, "x"), 0, "x removed and added: a new counter");
}

struct counting {
	struct fault_registry *r;
	int rounds;
};

/* A worker: takes the set, counts on x wherever it is, lets go. */
static void *count_x(void *arg)
{
	struct counting *c = arg;

	for (int i = 0; i < c->rounds; i++) {
		struct fault_set *s = fault_acquire(c->r);

		for (unsigned int j = 0; j < s->n; j++)
			if (strcmp(s->f[j].name, "x") == 0)
				fault_activate(s, j);
		fault_release(s);
	}
	return NULL;
}

/*
 * Two workers count while sets are replaced under them, x moving
 * between places: no count is lost (run under TSan and ASan in CI).
 */
static void test_threads(struct fault_registry *r)
{
	struct fault set[2] = {parse("loss:p=1,name=x"),
			       parse("loss:p=1,name=w")},
		     tmp;
	struct counting c = {r, 50000};
	pthread_t t[2];
	char err[256];

	fault_replace(r, set, 1, err, sizeof(err));
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, count_x, &c);
	for (int i = 0; i < 2000; i++) {
		fault_replace(r, set, 2, err, sizeof(err));
		tmp = set[0];
		set[0] = set[1];
		set[1] = tmp;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	is_int(activations(r, "x"), 2 * c.rounds,
	       "2 workers x %d counts across 2000 replaces: none lost",
	       c.rounds);
}

static union net_addr addr(const char *ip)
{
	union net_addr a;

	net_parse_addr(ip, 1234, &a);
	return a;
}

static void test_applies(void)
{
	struct fault_set s = {.n = 3};
	union net_addr in = addr("192.0.2.9"), out = addr("198.51.100.1"),
		       mapped = addr("::ffff:192.0.2.200");
	int took = 0, same = 0, other = 0;

	s.f[0] = parse("loss:p=1,toxicity=0.5,seed=42");
	s.f[1] = parse("loss:p=1,toxicity=0.5,seed=43");
	s.f[2] = parse("loss:p=1,from=192.0.2.0/24,toxicity=1");
	for (uint64_t o = 0; o < 10000; o++) {
		bool a = fault_applies(&s, 0, o, &in);

		took += a;
		same += a == fault_applies(&s, 0, o, &out);
		other += a == fault_applies(&s, 1, o, &in);
	}
	ok(took >= 4500 && took <= 5500,
	   "toxicity=0.5: %d of 10000 ordinals (45-55 %%)", took);
	is_int(same, 10000, "... the same choices again: a pure function");
	ok(other > 4000 && other < 6000,
	   "... another seed chooses otherwise (%d of 10000 alike)", other);
	ok(fault_applies(&s, 2, 0, &in) && fault_applies(&s, 2, 0, &mapped),
	   "from=192.0.2.0/24: a peer in it, IPv4 or IPv4-mapped");
	ok(!fault_applies(&s, 2, 0, &out), "... not one outside");
	ok(!fault_applies(&s, 2, 0, NULL), "... not an unknown peer (NULL)");
	s.f[0].toxicity = 1;
	s.f[1].toxicity = 0;
	took = 0;
	for (uint64_t o = 0; o < 1000; o++)
		took += fault_applies(&s, 0, o, NULL) +
			!fault_applies(&s, 1, o, &in);
	is_int(took, 2000,
	       "toxicity 1: always (unknown peer, no from=); 0: "
	       "never");
}

/* A JSON value at *p (RFC 8259, enough for ours): advances past it. */
static bool json_value_at(const char **p)
{
	const char *s = *p;

	if (*s == '{' || *s == '[') {
		char close = *s == '{' ? '}' : ']';

		s++;
		while (*s != close) {
			if (close == '}' && (!json_value_at(&s) || *s++ != ':'))
				return false;
			if (!json_value_at(&s) || (*s != ',' && *s != close))
				return false;
			if (*s == ',' && *++s == close)
				return false;
		}
		s++;
	} else if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if ((unsigned char)*s < 0x20)
				return false;
			if (*s == '\\' && !strchr("\"\\/bfnrtu", *++s))
				return false;
		}
		s++;
	} else if (strncmp(s, "null", 4) == 0) {
		s += 4;
	} else {
		size_t n = strspn(s, "-0123456789.eE+");

		if (n == 0)
			return false;
		s += n;
	}
	*p = s;
	return true;
}

static void test_json(struct fault_registry *r)
{
	struct fault set[2] = {parse("latency:delay=5ms,seed=1"),
			       parse("stall:after=1K,from=2001:db8::/32,"
				     "toxicity=0.25,seed=2")};
	char *text = NULL, err[256];
	struct fault_set *s;
	const char *p;
	size_t len = 0;
	FILE *out;

	/* Names are restricted; a caller's own fault may still hold '"'. */
	strcpy(set[0].name, "a\"b");
	fault_replace(r, set, 2, err, sizeof(err));
	s = fault_acquire(r);
	fault_activate(s, 1);
	out = open_memstream(&text, &len);
	fault_set_json(s, out);
	fclose(out);
	fault_release(s);
	p = text;
	ok(json_value_at(&p) && *p == '\0', "JSON: one valid value: %s", text);
	ok(strstr(text, "\"name\":\"a\\\"b\",\"type\":\"latency\"") != NULL,
	   "... the name escaped, the type");
	ok(strstr(text, "\"spec\":\"latency:delay=5000us,jitter=0us,"
			"dist=uniform,seed=1,name=a\\\"b\"") != NULL,
	   "... the spec");
	ok(strstr(text,
		  "\"delay_us\":5000,\"jitter_us\":0,\"dist\":"
		  "\"uniform\",\"toxicity\":1,\"from\":null,\"seed\":1}") !=
		   NULL,
	   "... latency's parameters, from null");
	ok(strstr(text, "\"activations\":1,\"bytes\":1024,\"toxicity\":0.25,"
			"\"from\":\"2001:db8::/32\",\"seed\":2}") != NULL,
	   "... stall's, its activation, from=");
	ok(strncmp(text, "{\"version\":", 11) == 0, "... the version first");
	free(text);
}

int main(void)
{
	struct fault_registry *r = fault_registry_new();

	ok(r != NULL, "a registry");
	test_types();
	test_errors();
	test_durations();
	test_sizes();
	test_round_trip();
	ok(!fault_registry_enabled(r), "a new registry: not enabled");
	fault_registry_enable(r);
	ok(fault_registry_enabled(r), "... enabled");
	ok(fault_ordinal(r) == 0 && fault_ordinal(r) == 1, "ordinals 0, 1");
	test_registry_changes(r);
	test_counters(r);
	test_threads(r);
	test_applies();
	test_json(r);
	for (int t = 0; t < FAULT_NTYPES; t++)
		ok(fault_type_tcp(t) == (t <= FAULT_CORRUPT) &&
			   fault_type_udp(t) ==
				   (t == FAULT_LATENCY || t >= FAULT_CORRUPT) &&
			   fault_type_live(t) ==
				   (t <= FAULT_BANDWIDTH || t >= FAULT_CORRUPT),
		   "%s: tcp, udp, live", fault_type_name(t));
	ok(fault_type_name(FAULT_NTYPES) == NULL && !fault_type_tcp(-1),
	   "no such type: NULL, false");
	fault_registry_free(r);
	return done_testing();
}
