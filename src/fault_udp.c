// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault_udp.c - datagram faults: each answer judged against the faults
 * that apply to its source (chosen per source, by a hash of its address,
 * so toxicity picks sources, not datagrams), and the worker's queue of
 * answers held for later, kept in time order in a heap.
 */
#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "fault.h"
#include "fault_draw.h"
#include "fault_udp.h"
#include "net.h"
#include "wakeup.h"

/* An answer held for later, with all a sendmsg of it needs. */
struct held {
	uint32_t pos; /* in the heap */
	int fd;
	union net_addr to;
	socklen_t tolen;
	size_t ctrllen;
	_Alignas(struct cmsghdr) char ctrl[FAULT_UDP_CTRL];
	size_t len;
	char data[];
};

struct fault_udp {
	struct fault_registry *registry;
	struct fault_set *set; /* referenced; looked at again on a change */
	uint64_t rng;
	uint64_t seq; /* held answers so far: equal times keep their order */
	struct wakeups held;
	size_t held_bytes;
	uint64_t unheld; /* copies with no room, since the last flush */
};

struct fault_udp *fault_udp_new(struct fault_registry *r)
{
	struct fault_udp *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->registry = r;
	u->set = fault_acquire(r);
	u->rng = u->set->n ? fault_mix(u->set->f[0].seed) : 0;
	return u;
}

void fault_udp_free(struct fault_udp *u)
{
	struct held *h;

	if (u == NULL)
		return;
	while ((h = wakeup_pop(&u->held, UINT64_MAX)))
		free(h);
	wakeup_destroy(&u->held);
	fault_release(u->set);
	free(u);
}

/* The current set, and a generator seeded from it on a change. */
static const struct fault_set *current(struct fault_udp *u)
{
	if (fault_version(u->registry) != u->set->version) {
		fault_release(u->set);
		u->set = fault_acquire(u->registry);
		u->rng = u->set->n ? fault_mix(u->set->f[0].seed) : 0;
	}
	return u->set;
}

/* The same number for a source every run: toxicity's "ordinal". */
static uint64_t source_ordinal(const union net_addr *src)
{
	uint8_t key[16];
	uint64_t a, b;

	access_source_key(src, key);
	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	return fault_mix(a ^ fault_mix(b));
}

static int hold(struct fault_udp *u, int fd, const struct msghdr *m,
		uint64_t at)
{
	size_t len = m->msg_iov[0].iov_len;
	struct held *h;

	if (u->held.n >= FAULT_UDP_HELD_MAX ||
	    u->held_bytes + len > FAULT_UDP_HELD_BYTES)
		return -ENOSPC;
	h = malloc(sizeof(*h) + len);
	if (h == NULL)
		return -ENOMEM;
	h->pos = WAKEUP_NONE;
	h->fd = fd;
	memcpy(&h->to, m->msg_name, m->msg_namelen);
	h->tolen = m->msg_namelen;
	h->ctrllen = m->msg_controllen;
	if (h->ctrllen > sizeof(h->ctrl))
		h->ctrllen = 0; /* never: udp.c's are smaller */
	if (h->ctrllen)
		memcpy(h->ctrl, m->msg_control, h->ctrllen);
	h->len = len;
	memcpy(h->data, m->msg_iov[0].iov_base, len);
	/* The heap orders by time; the sequence breaks ties in order. */
	if (wakeup_set(&u->held, &h->pos, h, at + (u->seq++ & 0x3ff)) < 0) {
		free(h);
		return -ENOMEM;
	}
	u->held_bytes += len;
	return 0;
}

/* Flips one bit of each byte with probability p. */
static void corrupt(uint64_t *rng, char *data, size_t len, double p)
{
	for (size_t i = 0; i < len; i++)
		if (fault_chance(rng, p))
			data[i] ^= (char)(1u << (fault_next(rng) & 7));
}

/* What fault x does to the answer m: its verdict, *at for a hold. */
static enum fault_udp_verdict act(struct fault_udp *u, const struct fault *x,
				  struct msghdr *m, uint64_t *at, bool *copy)
{
	switch (x->type) {
	case FAULT_LOSS:
		return fault_chance(&u->rng, x->p) ? FAULT_UDP_LOST
						   : FAULT_UDP_SEND;
	case FAULT_CORRUPT:
		corrupt(&u->rng, m->msg_iov[0].iov_base, m->msg_iov[0].iov_len,
			x->p);
		return FAULT_UDP_SEND;
	case FAULT_DUPLICATE:
		*copy = fault_chance(&u->rng, x->p);
		return FAULT_UDP_SEND;
	case FAULT_LATENCY:
		*at += fault_draw_delay(&u->rng, x->delay_us * 1000,
					x->jitter_us * 1000, x->dist);
		return FAULT_UDP_HELD;
	case FAULT_REORDER:
		if (!fault_chance(&u->rng, x->p))
			return FAULT_UDP_SEND;
		*at += x->delay_us * 1000;
		return FAULT_UDP_HELD;
	default:
		return FAULT_UDP_SEND;
	}
}

enum fault_udp_verdict fault_udp_judge(struct fault_udp *u, int fd,
				       struct msghdr *reply)
{
	const struct fault_set *s = current(u);
	uint64_t ordinal, at;
	enum fault_udp_verdict v, verdict = FAULT_UDP_SEND;
	bool copy = false;

	if (s->n == 0)
		return FAULT_UDP_SEND;
	ordinal = source_ordinal(reply->msg_name);
	at = fault_now_ns();
	for (unsigned int i = 0; i < s->n; i++) {
		const struct fault *x = &s->f[i];

		if (!fault_type_udp(x->type) ||
		    !fault_applies(s, i, ordinal, reply->msg_name))
			continue;
		v = act(u, x, reply, &at, &copy);
		if (v != FAULT_UDP_SEND || x->type == FAULT_CORRUPT ||
		    (x->type == FAULT_DUPLICATE && copy))
			fault_activate(s, i);
		if (v == FAULT_UDP_LOST)
			return v;
		if (v == FAULT_UDP_HELD)
			verdict = v;
	}
	/* The copy goes at the same time as the answer, just behind it. */
	if (copy && hold(u, fd, reply, at) < 0)
		u->unheld++;
	if (verdict == FAULT_UDP_HELD && hold(u, fd, reply, at) < 0)
		return FAULT_UDP_FULL;
	return verdict;
}

static void send_held(struct held *h, struct fault_udp_sent *sent)
{
	struct iovec iov = {.iov_base = h->data, .iov_len = h->len};
	struct msghdr m = {.msg_name = &h->to,
			   .msg_namelen = h->tolen,
			   .msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = h->ctrllen ? h->ctrl : NULL,
			   .msg_controllen = h->ctrllen};
	ssize_t n;

	do {
		n = sendmsg(h->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		sent->dropped++;
		return;
	}
	sent->echoed++;
	sent->bytes += h->len;
}

void fault_udp_flush(struct fault_udp *u, uint64_t now_ns,
		     struct fault_udp_sent *sent)
{
	struct held *h;

	*sent = (struct fault_udp_sent){.dropped = u->unheld};
	u->unheld = 0;
	while ((h = wakeup_pop(&u->held, now_ns))) {
		send_held(h, sent);
		u->held_bytes -= h->len;
		free(h);
	}
}

uint64_t fault_udp_next(const struct fault_udp *u)
{
	return wakeup_next(&u->held);
}
