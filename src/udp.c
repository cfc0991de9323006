// SPDX-License-Identifier: BSD-2-Clause
/* udp.c - datagram echo with recvmmsg/sendmmsg and its safety guards. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "fault_udp.h"
#include "log.h"
#include "options.h"
#include "udp.h"

_Static_assert((int)OPTIONS_MAX_BINDS <= (int)UDP_FDS,
	       "a worker's UDP sockets");
_Static_assert((int)UDP_CTRL <= (int)FAULT_UDP_CTRL,
	       "a held answer keeps its control message");

static const char *const verdict_names[UDP_NVERDICTS] = {
	[UDP_ECHO] = "echoed",
	[UDP_DROP_PORT] = "loop-prone source port",
	[UDP_DROP_SOURCE] = "non-unicast source",
	[UDP_DROP_RATE] = "over rate",
	[UDP_DROP_SIZE] = "truncated or too large",
	[UDP_DROP_SEND] = "send failed",
	[UDP_DROP_ACCESS] = "denied by --allow/--deny",
	[UDP_DROP_FAULT] = "lost to a fault",
};

/* For /metrics and the JSON table: one word each. */
static const char *const verdict_labels[UDP_NVERDICTS] = {
	[UDP_ECHO] = "echo",	      [UDP_DROP_PORT] = "port",
	[UDP_DROP_SOURCE] = "source", [UDP_DROP_RATE] = "rate",
	[UDP_DROP_SIZE] = "size",     [UDP_DROP_SEND] = "send",
	[UDP_DROP_ACCESS] = "access", [UDP_DROP_FAULT] = "fault",
};

const char *udp_verdict_name(enum udp_verdict v)
{
	return verdict_names[v];
}

const char *udp_verdict_label(enum udp_verdict v)
{
	return verdict_labels[v];
}

int udp_init(struct udp_worker *u, const struct options *o,
	     unsigned int own_port)
{
	int err;

	memset(u, 0, sizeof(*u));
	u->o = o;
	u->own_port = own_port;
	u->stats = &u->own_stats;
	/* One byte more than the limit, so MSG_TRUNC marks anything over it. */
	u->buf_size = (size_t)o->udp_max_size + 1;
	u->bufs = malloc(UDP_BATCH * u->buf_size);
	u->sources = calloc(UDP_SLOTS, sizeof(*u->sources));
	if (u->bufs == NULL || u->sources == NULL) {
		udp_destroy(u);
		return -ENOMEM;
	}
	err = siphash_key_random(&u->hkey);
	if (err < 0)
		udp_destroy(u);
	return err;
}

void udp_destroy(struct udp_worker *u)
{
	free(u->bufs);
	free(u->sources);
	u->bufs = NULL;
	u->sources = NULL;
}

/* IPv4 (or IPv4-mapped) source address in host order, or false. */
static bool ipv4_of(const union net_addr *a, uint32_t *ip)
{
	const uint8_t *b = a->in6.sin6_addr.s6_addr;

	if (a->sa.sa_family == AF_INET) {
		*ip = ntohl(a->in.sin_addr.s_addr);
		return true;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
		*ip = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
		      (uint32_t)b[14] << 8 | b[15];
		return true;
	}
	return false;
}

/*
 * Whether an IPv4 source (host order) cannot be a single host we can
 * answer, judged without the interfaces' netmasks: "this network"
 * (0.0.0.0/8, a source only while a host learns its address), the
 * limited broadcast 255.255.255.255, the broadcast of the loopback net
 * 127.255.255.255 (its prefix is /8 on every system), and multicast
 * (224.0.0.0/4). A directed broadcast of another subnet looks like a
 * unicast address here; the kernel refuses the reply to it (EACCES
 * without SO_BROADCAST), and that is counted as a failed send.
 */
static bool ipv4_nonunicast(uint32_t ip)
{
	return (ip >> 24) == 0 || ip == 0xffffffff || ip == 0x7fffffff ||
	       (ip >> 28) == 0xe;
}

enum udp_verdict udp_check_source(const struct options *o,
				  unsigned int own_port,
				  const union net_addr *src)
{
	unsigned int port = net_addr_port(src);
	uint32_t ip;

	if (o->access.n && !access_allowed(&o->access, src))
		return UDP_DROP_ACCESS;
	/*
	 * A forged datagram from another echo (or chargen, daytime...)
	 * service would make two servers answer each other forever; so
	 * would one from our own port on another host.
	 */
	if (options_udp_denied(o, port) ||
	    (port == own_port && o->udp_deny_own))
		return UDP_DROP_PORT;
	if (o->udp_allow_nonunicast)
		return UDP_ECHO;
	/* IPv4-mapped sources on a dual-stack socket are judged as IPv4. */
	if (ipv4_of(src, &ip))
		return ipv4_nonunicast(ip) ? UDP_DROP_SOURCE : UDP_ECHO;
	if (IN6_IS_ADDR_UNSPECIFIED(&src->in6.sin6_addr) ||
	    IN6_IS_ADDR_MULTICAST(&src->in6.sin6_addr))
		return UDP_DROP_SOURCE;
	return UDP_ECHO;
}

static unsigned int home(const struct udp_worker *u, const uint8_t key[16])
{
	return (unsigned int)siphash24(&u->hkey, key, 16) & (UDP_SLOTS - 1);
}

/* The slot holding key, or the free slot where its probe ends. */
static unsigned int probe(const struct udp_worker *u, const uint8_t key[16])
{
	unsigned int at = home(u, key);

	while (u->sources[at].last_ms &&
	       memcmp(u->sources[at].key, key, 16) != 0)
		at = (at + 1) & (UDP_SLOTS - 1);
	return at;
}

/*
 * Frees slot i and moves back the entries after it that would otherwise
 * be cut off from their hash (backward shift; no tombstones).
 */
static void remove_at(struct udp_worker *u, unsigned int i)
{
	struct udp_source *s = u->sources;
	unsigned int j = i, h;

	s[i].last_ms = 0;
	for (;;) {
		j = (j + 1) & (UDP_SLOTS - 1);
		if (s[j].last_ms == 0)
			break;
		h = home(u, s[j].key);
		/* Stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		s[i] = s[j];
		s[j].last_ms = 0;
		i = j;
	}
	u->nsources--;
}

/*
 * Drops every entry idle for a second: its buckets have refilled to the
 * brim (refill caps them at one second's worth), which is what the
 * source would get as a new one. An entry whose source still has less
 * is never dropped, so no number of other sources can reset it.
 */
static void sweep(struct udp_worker *u, uint64_t now_ms)
{
	struct udp_source *s;

	u->sweep_ms = now_ms;
	for (unsigned int i = 0; i < UDP_SLOTS;) {
		s = &u->sources[i];
		/* Removal moves a later entry into i: look at i again. */
		if (s->last_ms && s->last_ms + 1000 <= now_ms)
			remove_at(u, i);
		else
			i++;
	}
}

/*
 * The source's bucket: its entry; a new entry while the table has room
 * (after sweeping out idle ones, at most every UDP_SWEEP_MS); else the
 * overflow bucket every source without an entry shares.
 */
static struct udp_source *find_source(struct udp_worker *u,
				      const uint8_t key[16], uint64_t now_ms)
{
	unsigned int i = probe(u, key);

	if (u->sources[i].last_ms)
		return &u->sources[i];
	if (u->nsources == UDP_SOURCES &&
	    (u->sweep_ms == 0 || now_ms >= u->sweep_ms + UDP_SWEEP_MS ||
	     now_ms < u->sweep_ms)) {
		sweep(u, now_ms);
		i = probe(u, key);
	}
	if (u->nsources == UDP_SOURCES)
		return &u->overflow;
	memset(&u->sources[i], 0, sizeof(u->sources[i]));
	memcpy(u->sources[i].key, key, 16);
	u->nsources++;
	return &u->sources[i];
}

bool udp_source_has(const struct udp_worker *u, const union net_addr *src)
{
	uint8_t key[16];

	access_source_key(src, key);
	return u->sources[probe(u, key)].last_ms != 0;
}

bool udp_sources_valid(const struct udp_worker *u)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < UDP_SLOTS; i++) {
		if (u->sources[i].last_ms == 0)
			continue;
		n++;
		if (probe(u, u->sources[i].key) != i)
			return false;
	}
	return n == u->nsources && n <= UDP_SOURCES;
}

/* Adds what elapsed at rate per second, capped at one second's worth. */
static void refill(int64_t *tokens, uint64_t rate, uint64_t elapsed_ms)
{
	int64_t cap = (int64_t)rate * 1000;

	*tokens += (int64_t)(rate * elapsed_ms);
	if (*tokens > cap)
		*tokens = cap;
}

/*
 * Shedding. A source flooding faster than the worker drains its socket
 * keeps the socket's receive queue full, and the kernel then drops what
 * every other source whose datagrams land on that socket sends (one
 * source's datagrams all go to one worker's socket: the port's steering
 * program hashes the source's address and port). Judging the excess
 * here comes too late, after the queue, so the socket's filter drops
 * most of it instead, before it is queued, without a copy or a wakeup;
 * what still gets through keeps the source's rate budget served and
 * measures its rate, judged again every UDP_TICK_MS.
 */
static struct udp_shed *shed_find(struct udp_worker *u, const uint8_t key[16])
{
	for (unsigned int i = 0; i < u->nshed; i++)
		if (memcmp(u->shed[i].f.key, key, 16) == 0)
			return &u->shed[i];
	return NULL;
}

/*
 * The shift that lets a source sending rate datagrams a second through
 * at between one and two times the target; 0 when it sends less.
 */
static unsigned int shed_shift(const struct udp_worker *u, uint64_t rate)
{
	uint64_t target = 2 * (uint64_t)u->o->udp_rate;
	unsigned int shift = 0;

	if (target < UDP_SHED_PASS)
		target = UDP_SHED_PASS;
	while (shift < 20 && target << (shift + 1) <= rate)
		shift++;
	return shift;
}

static void shed_log(const uint8_t key[16], unsigned int shift, uint64_t rate)
{
	char text[INET6_ADDRSTRLEN + 3];
	bool v4 = IN6_IS_ADDR_V4MAPPED(
		(const struct in6_addr *)(const void *)key);

	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? key + 12 : key, text,
		  INET6_ADDRSTRLEN);
	if (!v4)
		strcat(text, "/64");
	if (shift)
		log_info(
			"udp: flood from %s (%llu/s or more): 1 datagram in %u let through",
			text, (unsigned long long)rate, 1u << shift);
	else
		log_info("udp: flood from %s over (%llu/s)", text,
			 (unsigned long long)rate);
}

/* Counts a drop over rate; a source with UDP_SHED_AT in a tick is shed. */
static void note_over(struct udp_worker *u, struct udp_source *s,
		      const uint8_t key[16], uint64_t now_ms)
{
	struct udp_shed *sh;
	uint64_t rate;

	/* The overflow bucket is many sources: none to single out. */
	if (s == &u->overflow)
		return;
	if (s->over_tick != u->tick) {
		s->over_tick = u->tick;
		s->over = 0;
	}
	if (++s->over != UDP_SHED_AT || u->nshed == NET_SHED_MAX ||
	    u->tick_ms == 0 || now_ms <= u->tick_ms || shed_find(u, key))
		return;
	/* At least: its drops may have begun after the tick did. */
	rate = (uint64_t)UDP_SHED_AT * 1000 / (now_ms - u->tick_ms);
	sh = &u->shed[u->nshed];
	sh->f.shift = shed_shift(u, rate);
	if (sh->f.shift == 0)
		return;
	memcpy(sh->f.key, key, 16);
	sh->seen = 0;
	u->nshed++;
	u->shed_gen++;
	shed_log(key, sh->f.shift, rate);
}

/* Every UDP_TICK_MS: each shed source's rate judged again. */
static void shed_tick(struct udp_worker *u, uint64_t now_ms)
{
	uint64_t ms, rate;
	unsigned int shift;

	if (u->tick_ms == 0 || now_ms < u->tick_ms) {
		u->tick_ms = now_ms ? now_ms : 1;
		return;
	}
	ms = now_ms - u->tick_ms;
	if (ms < UDP_TICK_MS)
		return;
	for (unsigned int i = 0; i < u->nshed;) {
		struct udp_shed *sh = &u->shed[i];

		rate = (sh->seen << sh->f.shift) * 1000 / ms;
		shift = shed_shift(u, rate);
		sh->seen = 0;
		if (shift != sh->f.shift)
			u->shed_gen++;
		if (shift == 0) {
			shed_log(sh->f.key, 0, rate);
			*sh = u->shed[--u->nshed];
			continue;
		}
		sh->f.shift = shift;
		i++;
	}
	u->tick++;
	u->tick_ms = now_ms;
}

/* Gives fd the filter of the latest shed list, if it has an older one. */
static void shed_apply(struct udp_worker *u, int fd)
{
	struct net_shed f[NET_SHED_MAX];
	unsigned int i;
	int err;

	for (i = 0; i < u->nfds && u->fds[i] != fd; i++)
		;
	if (i == u->nfds) {
		if (i == UDP_FDS)
			return;
		u->fds[u->nfds++] = fd;
		u->fd_gen[i] = 0;
	}
	if (u->fd_gen[i] == u->shed_gen)
		return;
	u->fd_gen[i] = u->shed_gen;
	for (unsigned int j = 0; j < u->nshed; j++)
		f[j] = u->shed[j].f;
	err = net_udp_shed(fd, f, u->nshed);
	if (err < 0)
		log_warn("udp fd %d: filter: %s", fd, strerror(-err));
}

bool udp_rate_allow(struct udp_worker *u, const union net_addr *src, size_t n,
		    uint64_t now_ms)
{
	const struct options *o = u->o;
	struct udp_source *s;
	struct udp_shed *sh;
	uint8_t key[16];

	if (o->udp_rate == 0 && o->udp_byte_rate == 0)
		return true;
	access_source_key(src, key);
	if (u->nshed && (sh = shed_find(u, key)))
		sh->seen++;
	s = find_source(u, key, now_ms);
	if (s->last_ms == 0) {
		/*
		 * A new entry starts with a full second's budget: what an
		 * entry has when it may be dropped, so dropping and coming
		 * back gains nothing.
		 */
		s->packets = (int64_t)o->udp_rate * 1000;
		s->bytes = (int64_t)o->udp_byte_rate * 1000;
	} else {
		refill(&s->packets, o->udp_rate, now_ms - s->last_ms);
		refill(&s->bytes, o->udp_byte_rate, now_ms - s->last_ms);
	}
	s->last_ms = now_ms ? now_ms : 1;
	if ((o->udp_rate && s->packets < 1000) ||
	    (o->udp_byte_rate && s->bytes < (int64_t)n * 1000)) {
		note_over(u, s, key, now_ms);
		return false;
	}
	s->packets -= 1000;
	s->bytes -= (int64_t)n * 1000;
	return true;
}

static void log_refusal(struct udp_worker *u, const union net_addr *src,
			enum udp_verdict v, uint64_t now_ms)
{
	char text[NET_ADDR_TEXT];

	if (now_ms < u->log_next_ms) {
		u->log_missed++;
		return;
	}
	log_info(
		"udp: drop from %s: %s (%llu more dropped since the last such line)",
		net_addr_text(&src->sa, text, sizeof(text)),
		udp_verdict_name(v), (unsigned long long)u->log_missed);
	u->log_missed = 0;
	u->log_next_ms = now_ms + 1000;
}

/*
 * Turns the destination the datagram was sent to (its pktinfo) into the
 * control message that makes the reply leave from that same address.
 * Returns the control length, or 0 when there was none.
 */
static size_t reply_control(struct msghdr *in, char *out)
{
	struct msghdr m = {.msg_control = out, .msg_controllen = UDP_CTRL};
	struct cmsghdr *c, *oc = CMSG_FIRSTHDR(&m);

	for (c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR(in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			pi.ipi_spec_dst = pi.ipi_addr;
			pi.ipi_ifindex = 0;
			oc->cmsg_level = IPPROTO_IP;
			oc->cmsg_type = IP_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
			return CMSG_SPACE(sizeof(pi));
		}
		if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO) {
			oc->cmsg_level = IPPROTO_IPV6;
			oc->cmsg_type = IPV6_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
			memcpy(CMSG_DATA(oc), CMSG_DATA(c),
			       sizeof(struct in6_pktinfo));
			return CMSG_SPACE(sizeof(struct in6_pktinfo));
		}
	}
	return 0;
}

static void prepare_batch(struct udp_worker *u)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct msghdr *m = &u->in[i].msg_hdr;

		u->iov[i].iov_base = u->bufs + (size_t)i * u->buf_size;
		u->iov[i].iov_len = u->buf_size;
		m->msg_name = &u->names[i];
		m->msg_namelen = sizeof(u->names[i]);
		m->msg_iov = &u->iov[i];
		m->msg_iovlen = 1;
		m->msg_control = u->ctrl_in[i];
		m->msg_controllen = UDP_CTRL;
		m->msg_flags = 0;
	}
}

/* Judges one received datagram; UDP_ECHO means it gets a reply. */
static enum udp_verdict judge(struct udp_worker *u, struct mmsghdr *h,
			      uint64_t now_ms)
{
	const union net_addr *src = h->msg_hdr.msg_name;
	enum udp_verdict v;

	if ((h->msg_hdr.msg_flags & MSG_TRUNC) ||
	    h->msg_len > u->o->udp_max_size)
		return UDP_DROP_SIZE;
	v = udp_check_source(u->o, u->own_port, src);
	if (v == UDP_ECHO && !udp_rate_allow(u, src, h->msg_len, now_ms))
		v = UDP_DROP_RATE;
	return v;
}

/*
 * Sends the n replies in u->out. A reply the kernel refuses (no route,
 * buffer full) is dropped and counted: UDP promises nothing, and
 * waiting would let one destination stall every other.
 */
static void send_batch(struct udp_worker *u, int fd, int n)
{
	int done = 0, r;

	while (done < n) {
		r = sendmmsg(fd, &u->out[done], (unsigned int)(n - done),
			     MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_debug("udp sendmmsg: %s", strerror(errno));
			counter_add(&u->stats->dropped[UDP_DROP_SEND], 1);
			done++;
			continue;
		}
		for (int i = done; i < done + r; i++) {
			counter_add(&u->stats->echoed, 1);
			counter_add(&u->stats->bytes, u->out[i].msg_len);
		}
		done += r;
	}
}

/*
 * Whether the answer m goes out in this batch: faults may drop it
 * (counted) or hold it for later (fault_udp_flush sends it).
 */
static bool fault_passes(struct udp_worker *u, int fd, struct msghdr *m)
{
	switch (fault_udp_judge(u->faults, fd, m)) {
	case FAULT_UDP_SEND:
		return true;
	case FAULT_UDP_LOST:
	case FAULT_UDP_FULL:
		counter_add(&u->stats->dropped[UDP_DROP_FAULT], 1);
		return false;
	case FAULT_UDP_HELD:
		return false;
	}
	return true;
}

int udp_serve(struct udp_worker *u, int fd, uint64_t now_ms)
{
	enum udp_verdict v;
	int n, k;

	shed_tick(u, now_ms);
	shed_apply(u, fd);
	for (int b = 0; b < UDP_BATCHES_PER_CALL; b++) {
		prepare_batch(u);
		n = recvmmsg(fd, u->in, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return 0;
			/* ICMP errors of earlier replies surface here. */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH)
				continue;
			return -errno;
		}
		k = 0;
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &u->out[k].msg_hdr;

			counter_add(&u->stats->received, 1);
			counter_add(&u->stats->bytes_in, u->in[i].msg_len);
			v = judge(u, &u->in[i], now_ms);
			if (v != UDP_ECHO) {
				counter_add(&u->stats->dropped[v], 1);
				log_refusal(u, &u->names[i], v, now_ms);
				continue;
			}
			u->iov[i].iov_len = u->in[i].msg_len;
			memset(m, 0, sizeof(*m));
			m->msg_name = &u->names[i];
			m->msg_namelen = u->in[i].msg_hdr.msg_namelen;
			m->msg_iov = &u->iov[i];
			m->msg_iovlen = 1;
			m->msg_control = u->ctrl_out[k];
			m->msg_controllen = reply_control(&u->in[i].msg_hdr,
							  u->ctrl_out[k]);
			if (m->msg_controllen == 0)
				m->msg_control = NULL;
			if (u->faults && !fault_passes(u, fd, m))
				continue;
			k++;
		}
		if (k)
			send_batch(u, fd, k);
		if (n < UDP_BATCH)
			return 0;
	}
	return 0;
}
