// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault_conn.c - the faults of one TCP connection: chosen when it opens,
 * applied to each echo as it is read (bits flipped, a time to go) and as
 * it is sent (paced, sliced, cut off), and the times it must be looked
 * at again, which the core keeps in its one timer.
 */
#include <sys/socket.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "fault_conn.h"
#include "fault_draw.h"
#include "outq.h"

enum {
	BANDWIDTH_QUANTA = 100, /* a paced send carries 10 ms of the rate */
};

#define NS_PER_S 1000000000ULL

/* The types of a TCP connection that a change of the set reaches. */
#define LIVE_TYPES \
	(1u << FAULT_LATENCY | 1u << FAULT_BANDWIDTH | 1u << FAULT_CORRUPT)

static uint64_t next_rand(struct fault_conn *f)
{
	return fault_next(&f->rng);
}

static double unit(struct fault_conn *f)
{
	return fault_unit(&f->rng);
}

/*
 * The next byte to flip after byte pos, each byte flipped with
 * probability p: a geometric skip, so that a small p costs nothing per
 * byte.
 */
static uint64_t next_corrupt(struct fault_conn *f, uint64_t pos)
{
	double p = f->p.corrupt_p, skip;

	if (p >= 1.0)
		return pos;
	if (p <= 0.0)
		return UINT64_MAX;
	skip = floor(log(unit(f)) / log1p(-p));
	return skip > 1e18 ? UINT64_MAX : pos + (uint64_t)skip;
}

static void take_live(struct fault_params *p, const struct fault *f,
		      unsigned int i)
{
	p->on |= 1u << f->type;
	p->index[f->type] = (int8_t)i;
	switch (f->type) {
	case FAULT_LATENCY:
		p->delay_ns = f->delay_us * 1000;
		p->jitter_ns = f->jitter_us * 1000;
		p->dist = f->dist;
		break;
	case FAULT_BANDWIDTH:
		p->rate = f->rate ? f->rate : 1;
		break;
	case FAULT_CORRUPT:
		p->corrupt_p = f->p;
		break;
	default:
		break;
	}
}

/* Takes fault i, of a type connections carry, into p. */
static void take(struct fault_params *p, const struct fault *f, unsigned int i)
{
	take_live(p, f, i);
	switch (f->type) {
	case FAULT_SLICER:
		p->slice = f->size ? f->size : 1;
		p->slice_ns = f->delay_us * 1000;
		break;
	case FAULT_LIMIT_DATA:
		p->limit = f->bytes;
		p->limit_rst = f->rst;
		break;
	case FAULT_TIMEOUT:
		p->timeout_ns = f->after_us * 1000;
		break;
	case FAULT_RESET_PEER:
		p->reset_ns = f->after_us * 1000;
		break;
	case FAULT_SLOW_CLOSE:
		p->slow_close_ns = f->delay_us * 1000;
		break;
	case FAULT_STALL:
		p->stall_after = f->bytes;
		break;
	default:
		break;
	}
}

static void add_name(struct fault_conn *f, const char *name)
{
	size_t used = strlen(f->names), n = strlen(name);

	if (used + n + 2 > sizeof(f->names))
		return;
	if (used)
		f->names[used++] = ',';
	memcpy(f->names + used, name, n + 1);
}

/*
 * Takes into f the faults of s, of the types in mask, that apply to it:
 * the first of each type. Returns the bits of the types taken.
 */
static uint32_t choose(struct fault_conn *f, const struct fault_set *s,
		       const union net_addr *peer, uint32_t mask,
		       uint32_t counted)
{
	uint32_t taken = 0;

	for (unsigned int i = 0; i < s->n && i < FAULT_MAX; i++) {
		const struct fault *x = &s->f[i];
		uint32_t bit = 1u << x->type;

		if (!(mask & bit) || (taken & bit) ||
		    !fault_type_tcp(x->type) ||
		    !fault_applies(s, i, f->ordinal, peer))
			continue;
		taken |= bit;
		take(&f->p, x, i);
		/* A connection is counted once for a type it carries on. */
		if (!(counted & bit))
			fault_activate(s, i);
		add_name(f, x->name);
		if (f->rng == 0)
			f->rng = fault_mix(x->seed ^ fault_mix(f->ordinal));
	}
	return taken;
}

struct fault_conn *fault_conn_new(const struct fault_set *s, uint64_t ordinal,
				  const union net_addr *peer, uint64_t now_ns)
{
	struct fault_conn *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->ordinal = ordinal;
	f->version = s ? s->version : 0;
	f->born_ns = now_ns;
	memset(f->p.index, -1, sizeof(f->p.index));
	f->corrupt_at = UINT64_MAX;
	if (s == NULL)
		return f;
	/* The names of those decided for good first: refresh keeps them. */
	choose(f, s, peer, ~LIVE_TYPES, 0);
	f->fixed_names = (uint8_t)strlen(f->names);
	choose(f, s, peer, LIVE_TYPES, 0);
	if (f->rng == 0)
		f->rng = fault_mix(ordinal);
	f->corrupt_at = next_corrupt(f, 0);
	return f;
}

void fault_conn_free(struct fault_conn *f)
{
	free(f);
}

void fault_conn_refresh(struct fault_conn *f, const struct fault_set *s,
			const union net_addr *peer)
{
	uint32_t before = f->p.on & LIVE_TYPES;

	f->version = s->version;
	f->p.on &= ~LIVE_TYPES;
	f->p.delay_ns = f->p.jitter_ns = 0;
	f->p.corrupt_p = 0;
	f->names[f->fixed_names] = '\0';
	choose(f, s, peer, LIVE_TYPES, before);
	f->corrupt_at = next_corrupt(f, f->queued);
}

size_t fault_conn_read_room(const struct fault_conn *f, size_t room)
{
	if (f->p.on & (1u << FAULT_STALL)) {
		if (f->taken >= f->p.stall_after)
			return 0;
		if (f->p.stall_after - f->taken < room)
			room = (size_t)(f->p.stall_after - f->taken);
	}
	if ((f->p.on & (1u << FAULT_LATENCY)) && f->nmarks == FAULT_MARKS)
		return 0;
	return room;
}

/* Holds the bytes up to f->queued until now_ns plus a delay, in order. */
static void hold(struct fault_conn *f, uint64_t now_ns)
{
	uint64_t at = now_ns + fault_draw_delay(&f->rng, f->p.delay_ns,
						f->p.jitter_ns, f->p.dist);
	struct fault_mark *last = NULL;

	if (f->nmarks)
		last = &f->marks[(f->mark_head + f->nmarks - 1) % FAULT_MARKS];
	/* Order within a connection is kept: never before the one ahead. */
	if (last && at <= last->at_ns) {
		last->end = f->queued;
		return;
	}
	f->marks[(f->mark_head + f->nmarks) % FAULT_MARKS] =
		(struct fault_mark){.end = f->queued, .at_ns = at};
	f->nmarks++;
}

void fault_conn_took(struct fault_conn *f, char *buf, size_t n, size_t echo,
		     uint64_t now_ns)
{
	uint64_t end = f->queued + echo;

	f->taken += n;
	while (f->corrupt_at < end) {
		buf[f->corrupt_at - f->queued] ^=
			(char)(1u << (next_rand(f) & 7));
		f->corrupt_at = next_corrupt(f, f->corrupt_at + 1);
	}
	f->queued = end;
	if (echo && (f->p.on & (1u << FAULT_LATENCY)))
		hold(f, now_ns);
}

/* The queue's bytes (counted from the start) that may go at now_ns. */
static uint64_t released(struct fault_conn *f, uint64_t now_ns)
{
	while (f->nmarks && f->marks[f->mark_head].at_ns <= now_ns) {
		f->released = f->marks[f->mark_head].end;
		f->mark_head = (f->mark_head + 1) % FAULT_MARKS;
		f->nmarks--;
	}
	/* What the first mark still holds holds everything behind it. */
	if (f->nmarks == 0)
		f->released = f->queued;
	return f->released;
}

/* How much of len may go in one send now: 0 when nothing may. */
static size_t send_cap(struct fault_conn *f, const struct conn *c, size_t len,
		       uint64_t now_ns)
{
	uint64_t may = released(f, now_ns) - c->bytes_out;

	if (may < len)
		len = (size_t)may;
	if (f->p.on & (1u << FAULT_BANDWIDTH)) {
		uint64_t quantum = f->p.rate / BANDWIDTH_QUANTA;

		if (now_ns < f->paid_ns)
			return 0;
		if (len > (quantum ? quantum : 1))
			len = (size_t)(quantum ? quantum : 1);
	}
	if (f->p.on & (1u << FAULT_SLICER)) {
		if (now_ns < f->slice_at_ns)
			return 0;
		if (len > f->p.slice)
			len = (size_t)f->p.slice;
	}
	if ((f->p.on & (1u << FAULT_LIMIT_DATA)) &&
	    f->p.limit - c->bytes_out < len)
		len = (size_t)(f->p.limit - c->bytes_out);
	return len;
}

/* n bytes went at now_ns: the pacing that follows from them. */
static void paid(struct fault_conn *f, size_t n, uint64_t now_ns)
{
	if (f->p.on & (1u << FAULT_BANDWIDTH)) {
		if (f->paid_ns < now_ns)
			f->paid_ns = now_ns;
		f->paid_ns += (uint64_t)n * NS_PER_S / f->p.rate;
	}
	if (f->p.on & (1u << FAULT_SLICER))
		f->slice_at_ns = now_ns + f->p.slice_ns;
}

int fault_conn_send(struct fault_conn *f, struct outq_pool *pool,
		    struct conn *c, uint64_t now_ns, bool *blocked,
		    fault_writer write)
{
	uint16_t unused[OUTQ_LENT_MAX];
	const char *data;
	size_t len;
	ssize_t n;

	*blocked = false;
	while ((len = outq_front(pool, &c->out, &data)) > 0) {
		len = send_cap(f, c, len, now_ns);
		if (len == 0)
			return 0;
		n = write(c, data, len);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			*blocked = true;
			return 0;
		}
		if (n < 0)
			return (int)n;
		c->bytes_out += (uint64_t)n;
		if (outq_sent(pool, &c->out, (size_t)n, unused) < 0)
			return -ENOMEM;
		paid(f, (size_t)n, now_ns);
		if ((size_t)n < len) {
			*blocked = true;
			return 0;
		}
	}
	return 0;
}

enum fault_end fault_conn_end(struct fault_conn *f, const struct conn *c,
			      uint64_t now_ns)
{
	const struct fault_params *p = &f->p;
	uint64_t age = now_ns - f->born_ns;

	if ((p->on & (1u << FAULT_RESET_PEER)) && age >= p->reset_ns)
		return FAULT_END_RST;
	if ((p->on & (1u << FAULT_TIMEOUT)) && p->timeout_ns &&
	    age >= p->timeout_ns)
		return FAULT_END_FIN;
	if ((p->on & (1u << FAULT_LIMIT_DATA)) && c->bytes_out >= p->limit &&
	    !(c->flags & CONN_SHUT_WR))
		return p->limit_rst ? FAULT_END_RST : FAULT_END_SHUT;
	return FAULT_GO_ON;
}

bool fault_conn_eof(struct fault_conn *f, uint64_t now_ns)
{
	if (!(f->p.on & (1u << FAULT_SLOW_CLOSE)))
		return false;
	if (f->eof_ns == 0)
		f->eof_ns = now_ns + f->p.slow_close_ns;
	return now_ns < f->eof_ns;
}

/* The earliest of a and b, 0 being none. */
static uint64_t earliest(uint64_t a, uint64_t b)
{
	return a == 0 || (b != 0 && b < a) ? b : a;
}

uint64_t fault_conn_next_ns(const struct fault_conn *f, const struct conn *c)
{
	const struct fault_params *p = &f->p;
	uint64_t t = 0;

	if ((p->on & (1u << FAULT_RESET_PEER)))
		t = earliest(t, f->born_ns + p->reset_ns);
	if ((p->on & (1u << FAULT_TIMEOUT)) && p->timeout_ns)
		t = earliest(t, f->born_ns + p->timeout_ns);
	if (f->eof_ns)
		t = earliest(t, f->eof_ns);
	if (outq_bytes(&c->out) == 0 || f->blocked)
		return t;
	if (f->nmarks)
		t = earliest(t, f->marks[f->mark_head].at_ns);
	if ((p->on & (1u << FAULT_BANDWIDTH)))
		t = earliest(t, f->paid_ns);
	if ((p->on & (1u << FAULT_SLICER)))
		t = earliest(t, f->slice_at_ns);
	return t;
}
