// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault.c - --fault specs (parse and format back), and the registry of
 * immutable fault sets that the control listener replaces while workers
 * read them.
 */
#include <sys/random.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "number.h"
#include "siphash.h"

/* The parameters a spec may name, in the order fault_format writes them. */
enum param {
	P_DELAY,
	P_JITTER,
	P_DIST,
	P_AFTER, /* a duration: timeout, reset-peer */
	P_AFTER_BYTES, /* a size: stall */
	P_RATE,
	P_SIZE,
	P_BYTES,
	P_CLOSE,
	P_P,
	P_TOXICITY,
	P_FROM,
	P_SEED,
	P_NAME,
	P_NPARAMS,
};

enum kind {
	K_DURATION,
	K_SIZE,
	K_RATE,
	K_FRACTION,
	K_DIST,
	K_CLOSE,
	K_FROM,
	K_SEED,
	K_NAME,
};

struct param_info {
	const char *name; /* as a spec spells it */
	const char *json; /* its key in fault_set_json */
	enum kind kind;
	size_t off; /* of its field in struct fault, for numbers */
};

static const struct param_info params[P_NPARAMS] = {
	[P_DELAY] = {"delay", "delay_us", K_DURATION,
		     offsetof(struct fault, delay_us)},
	[P_JITTER] = {"jitter", "jitter_us", K_DURATION,
		      offsetof(struct fault, jitter_us)},
	[P_DIST] = {"dist", "dist", K_DIST, 0},
	[P_AFTER] = {"after", "after_us", K_DURATION,
		     offsetof(struct fault, after_us)},
	[P_AFTER_BYTES] = {"after", "bytes", K_SIZE,
			   offsetof(struct fault, bytes)},
	[P_RATE] = {"rate", "rate", K_RATE, offsetof(struct fault, rate)},
	[P_SIZE] = {"size", "size", K_SIZE, offsetof(struct fault, size)},
	[P_BYTES] = {"bytes", "bytes", K_SIZE, offsetof(struct fault, bytes)},
	[P_CLOSE] = {"close", "close", K_CLOSE, 0},
	[P_P] = {"p", "p", K_FRACTION, offsetof(struct fault, p)},
	[P_TOXICITY] = {"toxicity", "toxicity", K_FRACTION,
			offsetof(struct fault, toxicity)},
	[P_FROM] = {"from", "from", K_FROM, 0},
	[P_SEED] = {"seed", "seed", K_SEED, offsetof(struct fault, seed)},
	[P_NAME] = {"name", "name", K_NAME, 0},
};

#define BIT(p) (1u << (p))
/* What every type takes besides its own. */
#define COMMON (BIT(P_TOXICITY) | BIT(P_FROM) | BIT(P_SEED) | BIT(P_NAME))

struct type_info {
	const char *name;
	unsigned int takes; /* BIT(P_...) of its own parameters */
	unsigned int needs; /* those of them a spec must give */
	bool tcp, udp, live;
};

static const struct type_info types[FAULT_NTYPES] = {
	[FAULT_LATENCY] = {"latency",
			   BIT(P_DELAY) | BIT(P_JITTER) | BIT(P_DIST),
			   BIT(P_DELAY), true, true, true},
	[FAULT_BANDWIDTH] = {"bandwidth", BIT(P_RATE), BIT(P_RATE), true, false,
			     true},
	[FAULT_SLICER] = {"slicer", BIT(P_SIZE) | BIT(P_DELAY), BIT(P_SIZE),
			  true, false, false},
	[FAULT_LIMIT_DATA] = {"limit-data", BIT(P_BYTES) | BIT(P_CLOSE), 0,
			      true, false, false},
	[FAULT_TIMEOUT] = {"timeout", BIT(P_AFTER), 0, true, false, false},
	[FAULT_RESET_PEER] = {"reset-peer", BIT(P_AFTER), 0, true, false,
			      false},
	[FAULT_SLOW_CLOSE] = {"slow-close", BIT(P_DELAY), BIT(P_DELAY), true,
			      false, false},
	[FAULT_STALL] = {"stall", BIT(P_AFTER_BYTES), 0, true, false, false},
	/* A probability has no default that means anything: say it. */
	[FAULT_CORRUPT] = {"corrupt", BIT(P_P), BIT(P_P), true, true, true},
	[FAULT_LOSS] = {"loss", BIT(P_P), BIT(P_P), false, true, true},
	[FAULT_DUPLICATE] = {"duplicate", BIT(P_P), BIT(P_P), false, true,
			     true},
	[FAULT_REORDER] = {"reorder", BIT(P_P) | BIT(P_DELAY),
			   BIT(P_P) | BIT(P_DELAY), false, true, true},
};

static const char *const dists[] = {
	[FAULT_DIST_UNIFORM] = "uniform",
	[FAULT_DIST_NORMAL] = "normal",
	[FAULT_DIST_PARETO] = "pareto",
};

enum {
	/*
	 * Durations stop at an hour: longer is no test's fault, and the
	 * runtime adds them to clock readings without overflow checks.
	 */
	DURATION_MAX_US = 3600ull * 1000 * 1000,
	/*
	 * Sizes and rates stop at 1 TiB: more than any test sends, and a
	 * size times 10^6 (bytes at a rate to microseconds) fits 64 bits.
	 */
	SIZE_MAX_BYTES = 1ull << 40,
	QUOTE_MAX = 64, /* of a spec or parameter quoted in an error */
};

/* A counter shared by the sets holding copies of one fault. */
struct fault_counter {
	_Atomic uint64_t n;
	_Atomic unsigned int refs; /* sets that point to it */
};

/*
 * Writers and fault_acquire take lock: a reader that took the current
 * set without it could reference a set a writer has just let go of.
 */
struct fault_registry {
	pthread_mutex_t lock;
	struct fault_set *cur; /* holds one reference */
	_Atomic uint64_t version;
	_Atomic uint64_t ordinal;
	bool enabled; /* written before the workers start */
};

const char *fault_type_name(enum fault_type t)
{
	return (unsigned int)t < FAULT_NTYPES ? types[t].name : NULL;
}

bool fault_type_tcp(enum fault_type t)
{
	return (unsigned int)t < FAULT_NTYPES && types[t].tcp;
}

bool fault_type_udp(enum fault_type t)
{
	return (unsigned int)t < FAULT_NTYPES && types[t].udp;
}

bool fault_type_live(enum fault_type t)
{
	return (unsigned int)t < FAULT_NTYPES && types[t].live;
}

/* The number param p stands for in f (by the table's offset). */
static uint64_t *u64_of(struct fault *f, enum param p)
{
	return (uint64_t *)(void *)((char *)f + params[p].off);
}

static double *double_of(struct fault *f, enum param p)
{
	return (double *)(void *)((char *)f + params[p].off);
}

/* What parsing one spec carries from step to step. */
struct parse {
	const char *spec;
	char *err;
	size_t errlen;
	struct fault *f;
	unsigned int seen; /* BIT(P_...) of the parameters given */
};

/*
 * s for an error line: at most QUOTE_MAX bytes, control bytes as '?' so
 * that the line stays one line whatever the spec holds. dst has
 * QUOTE_MAX + 4 bytes.
 */
static void quote(char *dst, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < QUOTE_MAX; i++)
		dst[i] =
			(unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	strcpy(dst + i, s[i] != '\0' ? "..." : "");
}

static int fail(const struct parse *ps, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes "fault 'SPEC': [PARAM: ]MESSAGE" to err; returns -EINVAL. */
static int fail(const struct parse *ps, const char *param, const char *fmt, ...)
{
	char spec[QUOTE_MAX + 4], name[QUOTE_MAX + 4], msg[256];
	va_list ap;

	if (ps->err == NULL || ps->errlen == 0)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	quote(spec, ps->spec);
	if (param) {
		quote(name, param);
		snprintf(ps->err, ps->errlen, "fault '%s': %s: %s", spec, name,
			 msg);
	} else {
		snprintf(ps->err, ps->errlen, "fault '%s': %s", spec, msg);
	}
	return -EINVAL;
}

/* The names of types, or of the parameters in mask, as "a, b, c". */
static void list_names(char *buf, size_t len, bool of_types, unsigned int mask)
{
	unsigned int count = of_types ? FAULT_NTYPES : P_NPARAMS;
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < count && at < len; i++) {
		if (!of_types && !(mask & BIT(i)))
			continue;
		at += (size_t)snprintf(
			buf + at, len - at, "%s%s", at ? ", " : "",
			of_types ? types[i].name : params[i].name);
	}
}

/* The leading digits of s, leading zeros skipped (one kept): n bytes. */
static const char *skip_zeros(const char *s, size_t *n)
{
	while (*n > 1 && *s == '0') {
		s++;
		(*n)--;
	}
	return s;
}

/*
 * A duration in microseconds: digits and us, ms or s (bare: ms), at
 * most an hour. Returns NULL or what is wrong.
 */
static const char *parse_duration(const char *v, uint64_t *us)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"", 1000}, {"us", 1}, {"ms", 1000}, {"s", 1000000}};

	size_t n = strspn(v, "0123456789"), i = 0;
	const char *errstr;
	char digits[24];
	long long x;

	while (i < 4 && strcmp(v + n, units[i].suffix) != 0)
		i++;
	if (n == 0 || i == 4)
		return "not a duration (us, ms or s)";
	v = skip_zeros(v, &n);
	if (n >= sizeof(digits))
		return "over an hour (3600s)";
	memcpy(digits, v, n);
	digits[n] = '\0';
	x = number_parse(digits, 0, DURATION_MAX_US / units[i].mult, &errstr);
	if (errstr)
		return "over an hour (3600s)";
	*us = (uint64_t)x * units[i].mult;
	return NULL;
}

/* A size or rate: digits, then K or M (1024-based) or nothing. */
static const char *parse_size(const char *v, enum kind k, uint64_t *out)
{
	size_t n = strspn(v, "0123456789");
	const char *errstr;
	long long x;

	if (n == 0 ||
	    (v[n] != '\0' && (strchr("KkMm", v[n]) == NULL || v[n + 1])))
		return k == K_RATE ? "not a rate (bytes per second, K or M)"
				   : "not a size (bytes, K or M)";
	v = skip_zeros(v, &n);
	x = number_parse_size(v, 0, (long long)SIZE_MAX_BYTES, &errstr);
	if (errstr)
		return "over 1 TiB";
	*out = (uint64_t)x;
	return NULL;
}

/*
 * A fraction in [0, 1], as strtod reads it but without the sign, blanks,
 * hexadecimal, inf or nan that it would take too.
 */
static const char *parse_fraction(const char *v, double *out)
{
	char *end;
	double x;

	if ((*v < '0' || *v > '9') && *v != '.')
		return "not a number in [0, 1]";
	if (v[strspn(v, "0123456789.eE+-")] != '\0')
		return "not a number in [0, 1]";
	x = strtod(v, &end);
	if (*end != '\0' || !(x >= 0 && x <= 1))
		return "not a number in [0, 1]";
	*out = x;
	return NULL;
}

static const char *parse_seed(const char *v, uint64_t *seed)
{
	size_t n = strspn(v, "0123456789");
	unsigned long long x;

	if (n == 0 || v[n] != '\0')
		return "not a number (0 to 18446744073709551615)";
	errno = 0;
	x = strtoull(v, NULL, 10);
	if (errno == ERANGE)
		return "over 18446744073709551615";
	*seed = x;
	return NULL;
}

static const char *parse_name(const char *v, char name[FAULT_NAME_MAX])
{
	size_t n = strlen(v);

	if (n == 0 || n >= FAULT_NAME_MAX ||
	    v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789_.-")] != '\0')
		return "not 1 to 31 of A-Z a-z 0-9 _ . -";
	memcpy(name, v, n + 1);
	return NULL;
}

static const char *parse_word(const char *v, const char *const *words,
			      unsigned int n, unsigned int *out)
{
	for (unsigned int i = 0; i < n; i++) {
		if (strcmp(v, words[i]) == 0) {
			*out = i;
			return NULL;
		}
	}
	return n == 2 ? "not fin or rst" : "not uniform, normal or pareto";
}

/* Stores value v of param p in f. Returns NULL or what is wrong. */
static const char *set_value(struct fault *f, enum param p, const char *v)
{
	static const char *const closes[] = {"fin", "rst"};
	const char *errstr = NULL;
	unsigned int w = 0;

	switch (params[p].kind) {
	case K_DURATION:
		return parse_duration(v, u64_of(f, p));
	case K_SIZE:
	case K_RATE:
		errstr = parse_size(v, params[p].kind, u64_of(f, p));
		if (!errstr && (p == P_RATE || p == P_SIZE) &&
		    *u64_of(f, p) == 0)
			errstr = "must be more than 0";
		return errstr;
	case K_FRACTION:
		return parse_fraction(v, double_of(f, p));
	case K_DIST:
		errstr = parse_word(v, dists, 3, &w);
		f->dist = (enum fault_dist)w;
		return errstr;
	case K_CLOSE:
		errstr = parse_word(v, closes, 2, &w);
		f->rst = w == 1;
		return errstr;
	case K_FROM:
		return access_add(&f->from, v, false) < 0
			       ? "not an address or CIDR"
			       : NULL;
	case K_SEED:
		f->seeded = true;
		return parse_seed(v, &f->seed);
	case K_NAME:
		return parse_name(v, f->name);
	}
	return NULL;
}

static int parse_type(struct parse *ps, const char *name)
{
	char list[256];

	for (unsigned int t = 0; t < FAULT_NTYPES; t++) {
		if (strcmp(name, types[t].name) == 0) {
			ps->f->type = (enum fault_type)t;
			return 0;
		}
	}
	list_names(list, sizeof(list), true, 0);
	if (*name == '\0')
		return fail(ps, NULL, "no type (%s)", list);
	return fail(ps, name, "not a type (%s)", list);
}

/* One PARAM=VALUE of the spec, NUL-terminated in a copy we may change. */
static int parse_param(struct parse *ps, char *item)
{
	unsigned int takes = types[ps->f->type].takes | COMMON;
	char *v = strchr(item, '='), list[256];
	const char *errstr;
	enum param p;

	if (*item == '\0')
		return fail(ps, NULL, "an empty parameter");
	if (v == NULL)
		return fail(ps, item, "no value (PARAM=VALUE)");
	*v++ = '\0';
	for (p = 0; p < P_NPARAMS; p++) {
		/* "after" is a duration or a size by type: the mask tells. */
		if ((takes & BIT(p)) && strcmp(item, params[p].name) == 0)
			break;
	}
	if (p == P_NPARAMS) {
		list_names(list, sizeof(list), false, takes);
		return fail(ps, item, "not a parameter of %s (%s)",
			    types[ps->f->type].name, list);
	}
	if (ps->seen & BIT(p))
		return fail(ps, item, "given twice");
	ps->seen |= BIT(p);
	errstr = set_value(ps->f, p, v);
	if (errstr)
		return fail(ps, item, "%s", errstr);
	return 0;
}

/* What the parameters given leave to do: required ones, defaults. */
static int finish(struct parse *ps)
{
	const struct type_info *t = &types[ps->f->type];
	unsigned int missing = t->needs & ~ps->seen;

	if (missing)
		return fail(ps, params[__builtin_ctz(missing)].name,
			    "required");
	if (!(ps->seen & BIT(P_NAME)))
		strcpy(ps->f->name, t->name);
	if (!(ps->seen & BIT(P_SEED)) &&
	    getrandom(&ps->f->seed, sizeof(ps->f->seed), 0) !=
		    (ssize_t)sizeof(ps->f->seed))
		return fail(ps, "seed",
			    "no random one (getrandom: %s); give one",
			    strerror(errno));
	return 0;
}

/*
 * The spec is split in a copy: the type before the first ':', then
 * PARAM=VALUE items at ','. Only the first ':' splits, so from= may be an
 * IPv6 CIDR. jitter may exceed delay: the runtime clamps a delay that
 * comes out negative at 0, which is what a wide jitter asks for.
 */
int fault_parse(const char *spec, struct fault *f, char *err, size_t errlen)
{
	struct parse ps = {spec, err, errlen, f, 0};
	size_t n = strnlen(spec, FAULT_SPEC_MAX);
	char buf[FAULT_SPEC_MAX], *item, *next;
	int rc;

	memset(f, 0, sizeof(*f));
	f->toxicity = 1;
	if (n == FAULT_SPEC_MAX)
		return fail(&ps, NULL, "longer than %d bytes",
			    FAULT_SPEC_MAX - 1);
	memcpy(buf, spec, n + 1);
	next = strchr(buf, ':');
	if (next)
		*next++ = '\0';
	rc = parse_type(&ps, buf);
	while (rc == 0 && next) {
		item = next;
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		rc = parse_param(&ps, item);
	}
	return rc ? rc : finish(&ps);
}

static const uint64_t *u64_in(const struct fault *f, enum param p)
{
	return (const uint64_t *)(const void *)((const char *)f +
						params[p].off);
}

static double double_in(const struct fault *f, enum param p)
{
	return *(const double *)(const void *)((const char *)f + params[p].off);
}

/*
 * from= as CIDR text. IPv4 rules are stored IPv4-mapped with 96 + the
 * prefix length; an IPv6 rule that looks the same (::ffff:0:0/96 and
 * longer) prints as IPv4 and parses back to the same rule.
 */
static int cidr_text(const struct access_rule *r, char *buf, size_t len)
{
	const struct in6_addr *a =
		(const struct in6_addr *)(const void *)r->net;
	bool v4 = r->bits >= 96 && IN6_IS_ADDR_V4MAPPED(a);
	char text[INET6_ADDRSTRLEN];

	if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? r->net + 12 : r->net, text,
		       sizeof(text)))
		text[0] = '\0';
	return snprintf(buf, len, "%s/%u", text, v4 ? r->bits - 96u : r->bits);
}

/* Param p of f as a spec writes it; returns snprintf's count. */
static int value_text(const struct fault *f, enum param p, char *buf,
		      size_t len)
{
	switch (params[p].kind) {
	case K_DURATION:
		return snprintf(buf, len, "%lluus",
				(unsigned long long)*u64_in(f, p));
	case K_SIZE:
	case K_RATE:
	case K_SEED:
		return snprintf(buf, len, "%llu",
				(unsigned long long)*u64_in(f, p));
	case K_FRACTION:
		/* 17 significant digits read back as the same double. */
		return snprintf(buf, len, "%.17g", double_in(f, p));
	case K_DIST:
		return snprintf(buf, len, "%s",
				(unsigned int)f->dist < 3 ? dists[f->dist]
							  : "uniform");
	case K_CLOSE:
		return snprintf(buf, len, "%s", f->rst ? "rst" : "fin");
	case K_FROM:
		return f->from.n ? cidr_text(&f->from.rule[0], buf, len)
				 : snprintf(buf, len, "%s", "");
	case K_NAME:
		return snprintf(buf, len, "%.*s", FAULT_NAME_MAX - 1, f->name);
	}
	return 0;
}

/*
 * The type's own parameters, always (defaults too, so that the spec
 * says everything the fault does), then toxicity and from= when they
 * restrict it, then seed and name. A from= of more than one rule (not
 * from fault_parse) writes its first.
 */
int fault_format(const struct fault *f, char *buf, size_t n)
{
	unsigned int mask;
	char v[FAULT_SPEC_MAX];
	size_t len;

	if ((unsigned int)f->type >= FAULT_NTYPES)
		return -EINVAL;
	mask = types[f->type].takes | BIT(P_SEED) | BIT(P_NAME);
	if (f->toxicity != 1)
		mask |= BIT(P_TOXICITY);
	if (f->from.n > 0)
		mask |= BIT(P_FROM);
	len = (size_t)snprintf(buf, n, "%s", types[f->type].name);
	for (unsigned int p = 0; p < P_NPARAMS; p++) {
		if (!(mask & BIT(p)))
			continue;
		value_text(f, p, v, sizeof(v));
		len += (size_t)snprintf(
			buf + (len < n ? len : n), len < n ? n - len : 0,
			"%c%s=%s",
			p == (unsigned int)__builtin_ctz(mask) ? ':' : ',',
			params[p].name, v);
	}
	if (len >= n || len > INT32_MAX)
		return -ENOSPC;
	return (int)len;
}

static struct fault_counter *counter_new(void)
{
	struct fault_counter *c = calloc(1, sizeof(*c));

	if (c)
		atomic_init(&c->refs, 1);
	return c;
}

/* Only with a reference held (a set the caller holds points to c). */
static struct fault_counter *counter_get(struct fault_counter *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void counter_put(struct fault_counter *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

void fault_activate(const struct fault_set *s, unsigned int i)
{
	atomic_fetch_add_explicit(&s->counter[i]->n, 1, memory_order_relaxed);
}

uint64_t fault_activations(const struct fault_set *s, unsigned int i)
{
	return atomic_load_explicit(&s->counter[i]->n, memory_order_relaxed);
}

/* Frees s and lets go of its counters: s->n of them are held. */
static void set_free(struct fault_set *s)
{
	for (unsigned int i = 0; i < s->n; i++)
		counter_put(s->counter[i]);
	free(s);
}

static int find(const struct fault_set *s, const char *name)
{
	for (unsigned int i = 0; i < s->n; i++)
		if (strcmp(s->f[i].name, name) == 0)
			return (int)i;
	return -1;
}

/*
 * A new set, unpublished, of faults f[0, n): each takes the counter of
 * the fault of cur with its name, if that one has its type too, else a
 * new one. Returns NULL when out of memory.
 */
static struct fault_set *set_build(const struct fault_set *cur,
				   const struct fault *f, unsigned int n)
{
	struct fault_set *s = calloc(1, sizeof(*s));
	int j;

	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	if (n)
		memcpy(s->f, f, n * sizeof(*f));
	for (s->n = 0; s->n < n; s->n++) {
		j = find(cur, f[s->n].name);
		if (j >= 0 && cur->f[j].type == f[s->n].type)
			s->counter[s->n] = counter_get(cur->counter[j]);
		else
			s->counter[s->n] = counter_new();
		if (s->counter[s->n] == NULL) {
			set_free(s);
			return NULL;
		}
	}
	return s;
}

struct fault_registry *fault_registry_new(void)
{
	struct fault_registry *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->cur = calloc(1, sizeof(*r->cur));
	if (r->cur == NULL) {
		free(r);
		return NULL;
	}
	atomic_init(&r->cur->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

/* Sets workers still hold stay theirs: a set needs no registry. */
void fault_registry_free(struct fault_registry *r)
{
	if (r == NULL)
		return;
	fault_release(r->cur);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void fault_registry_enable(struct fault_registry *r)
{
	r->enabled = true;
}

bool fault_registry_enabled(const struct fault_registry *r)
{
	return r->enabled;
}

uint64_t fault_version(const struct fault_registry *r)
{
	return atomic_load_explicit(&r->version, memory_order_relaxed);
}

uint64_t fault_ordinal(struct fault_registry *r)
{
	return atomic_fetch_add_explicit(&r->ordinal, 1, memory_order_relaxed);
}

struct fault_set *fault_acquire(struct fault_registry *r)
{
	struct fault_set *s;

	pthread_mutex_lock(&r->lock);
	s = r->cur;
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
	return s;
}

void fault_release(struct fault_set *s)
{
	if (s &&
	    atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		set_free(s);
}

/*
 * Makes s current, with r->lock held; returns the set it replaced, for
 * the caller to release once the lock is let go. The version is stored
 * after the set, under the lock: whoever sees the new version and then
 * takes the lock in fault_acquire gets this set or a later one.
 */
static struct fault_set *publish(struct fault_registry *r, struct fault_set *s)
{
	struct fault_set *old = r->cur;

	s->version =
		atomic_load_explicit(&r->version, memory_order_relaxed) + 1;
	r->cur = s;
	atomic_store_explicit(&r->version, s->version, memory_order_relaxed);
	return old;
}

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Appends f to s, unpublished, with a new counter. */
static int append(struct fault_set *s, const struct fault *f)
{
	s->f[s->n] = *f;
	s->counter[s->n] = counter_new();
	if (s->counter[s->n] == NULL)
		return -ENOMEM;
	s->n++;
	return 0;
}

int fault_add(struct fault_registry *r, const struct fault *f, char *err,
	      size_t errlen)
{
	struct fault_set *s = NULL;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (find(r->cur, f->name) >= 0) {
		say(err, errlen, "fault '%s': the name is taken", f->name);
		rc = -EEXIST;
	} else if (r->cur->n == FAULT_MAX) {
		say(err, errlen, "fault '%s': %d faults already", f->name,
		    FAULT_MAX);
		rc = -ENOSPC;
	} else {
		s = set_build(r->cur, r->cur->f, r->cur->n);
		rc = s ? append(s, f) : -ENOMEM;
		if (rc == 0)
			s = publish(r, s);
		else
			say(err, errlen, "fault '%s': out of memory", f->name);
	}
	pthread_mutex_unlock(&r->lock);
	/* The set replaced, or the copy that could not be finished. */
	fault_release(s);
	return rc;
}

int fault_remove(struct fault_registry *r, const char *name)
{
	struct fault_set *s = NULL;
	int i, rc = 0;

	pthread_mutex_lock(&r->lock);
	i = find(r->cur, name);
	if (i < 0) {
		rc = -ENOENT;
		goto out;
	}
	s = set_build(r->cur, r->cur->f, r->cur->n);
	if (s == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	counter_put(s->counter[i]);
	s->n--;
	memmove(&s->f[i], &s->f[i + 1],
		(s->n - (unsigned int)i) * sizeof(s->f[0]));
	memmove(&s->counter[i], &s->counter[i + 1],
		(s->n - (unsigned int)i) * sizeof(s->counter[0]));
	s = publish(r, s);
out:
	pthread_mutex_unlock(&r->lock);
	fault_release(s);
	return rc;
}

/* Whether faults[0, n) may be a set: err says why not. */
static int check_set(const struct fault *faults, unsigned int n, char *err,
		     size_t errlen)
{
	if (n > FAULT_MAX) {
		say(err, errlen, "%u faults: at most %d", n, FAULT_MAX);
		return -ENOSPC;
	}
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int j = 0; j < i; j++) {
			if (strcmp(faults[i].name, faults[j].name) != 0)
				continue;
			say(err, errlen, "fault '%s': the name is given twice",
			    faults[i].name);
			return -EEXIST;
		}
	}
	return 0;
}

int fault_replace(struct fault_registry *r, const struct fault *faults,
		  unsigned int n, char *err, size_t errlen)
{
	struct fault_set *s = NULL;
	int rc = check_set(faults, n, err, errlen);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	s = set_build(r->cur, faults, n);
	if (s)
		s = publish(r, s);
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&r->lock);
	if (rc == -ENOMEM)
		say(err, errlen, "faults: out of memory");
	fault_release(s);
	return rc;
}

/* Writes s as a JSON string, escaped (names are restricted, specs not). */
static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* Param p of f as JSON: durations in microseconds, words as strings. */
static void json_value(FILE *out, const struct fault *f, enum param p)
{
	char v[FAULT_SPEC_MAX];

	switch (params[p].kind) {
	case K_DURATION:
		fprintf(out, "%llu", (unsigned long long)*u64_in(f, p));
		return;
	case K_FROM:
		if (f->from.n == 0) {
			fputs("null", out);
			return;
		}
		/* fall through */
	case K_DIST:
	case K_CLOSE:
	case K_NAME:
		value_text(f, p, v, sizeof(v));
		json_string(out, v);
		return;
	default:
		value_text(f, p, v, sizeof(v));
		fputs(v, out);
	}
}

static void fault_json(const struct fault_set *s, unsigned int i, FILE *out)
{
	const struct fault *f = &s->f[i];
	unsigned int mask = types[f->type].takes | COMMON;
	char spec[FAULT_SPEC_MAX];

	if (fault_format(f, spec, sizeof(spec)) < 0)
		spec[0] = '\0';
	fputs("{\"name\":", out);
	json_value(out, f, P_NAME);
	fprintf(out, ",\"type\":\"%s\",\"spec\":", types[f->type].name);
	json_string(out, spec);
	fprintf(out, ",\"activations\":%llu",
		(unsigned long long)fault_activations(s, i));
	for (unsigned int p = 0; p < P_NAME; p++) {
		if (!(mask & BIT(p)))
			continue;
		fprintf(out, ",\"%s\":", params[p].json);
		json_value(out, f, p);
	}
	fputc('}', out);
}

void fault_set_json(const struct fault_set *s, FILE *out)
{
	fprintf(out, "{\"version\":%llu,\"faults\":[",
		(unsigned long long)s->version);
	for (unsigned int i = 0; i < s->n; i++) {
		if (i > 0)
			fputc(',', out);
		fault_json(s, i, out);
	}
	fputs("]}", out);
}

/*
 * A keyed hash of the ordinal under the fault's seed (SipHash, already
 * ours), its top 53 bits as a double in [0, 1): the same seed and
 * ordinal choose the same way in every run. A peer not known (NULL)
 * matches no from=, so a restricted fault never applies to it.
 */
bool fault_applies(const struct fault_set *s, unsigned int i, uint64_t ordinal,
		   const union net_addr *peer)
{
	const struct fault *f = &s->f[i];
	struct siphash_key k = {f->seed, 0};
	uint8_t b[8];

	if (f->from.n > 0 &&
	    (peer == NULL || access_check(&f->from, peer) != ACCESS_OK))
		return false;
	if (f->toxicity >= 1)
		return true;
	if (f->toxicity <= 0)
		return false;
	for (int j = 0; j < 8; j++)
		b[j] = (uint8_t)(ordinal >> (8 * j));
	return (double)(siphash24(&k, b, sizeof(b)) >> 11) * 0x1p-53 <
	       f->toxicity;
}
