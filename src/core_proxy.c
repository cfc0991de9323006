// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_proxy.c - a connection's PROXY header (--proxy-protocol), as the
 * core serves it before anything else: peeked, never read past, consumed
 * whole when a --proxy-from balancer sent it, and the client it names
 * admitted by the same rules as one of its own; a header from elsewhere,
 * or a bad or late one from a balancer, closes that connection only.
 */
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "close_reason.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "counter.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "proxy.h"
#include "worker.h"

enum {
	PROXY_POLL_MAX_MS = 250, /* the longest look-again wait (proxy_more) */
};

uint64_t core_proxy_deadline_ns(const struct core *k, const struct conn *c)
{
	return c->born_ms * 1000000ULL + k->o->proxy_timeout * 1000000000ULL;
}

/* proxy_step's refusal: counted by outcome, logged with -v. */
static enum close_reason proxy_refuse(struct core *k, struct conn *c,
				      enum proxy_outcome why)
{
	char peer[NET_ADDR_TEXT];

	counter_add(&k->w->stats.proxy[why], 1);
	if (log_level >= LOG_VERBOSE)
		log_verbose("proxy fd %d peer %s: %s", c->fd,
			    net_addr_text(&c->peer.sa, peer, sizeof(peer)),
			    proxy_outcome_words(why));
	return CLOSE_PROXY;
}

/* No header, and none due: c is its own client. */
static enum close_reason proxy_plain(struct core *k, struct conn *c)
{
	c->flags &= ~CONN_PROXY_WAIT;
	c->proxy_poll_ms = 0;
	counter_add(&k->w->stats.proxy[PROXY_OUT_PLAIN], 1);
	return CLOSE_NONE;
}

/*
 * A balancer's whole header, consumed: the client it names is c's peer
 * from now on, admitted by the same rules as a client of its own (a
 * LOCAL header, or one without an address, leaves the balancer as the
 * peer). The balancer itself was exempt from them at accept.
 */
static enum close_reason proxy_client(struct core *k, struct conn *c,
				      const struct proxy_header *h)
{
	char peer[NET_ADDR_TEXT], via[NET_ADDR_TEXT];
	bool named = h->command == PROXY_CMD_PROXY && h->has_addr;
	uint32_t flags = 0;

	c->flags &= ~CONN_PROXY_WAIT;
	c->proxy_poll_ms = 0;
	if (named) {
		c->via = c->peer;
		c->peer = h->src;
		c->flags |= CONN_VIA;
	}
	counter_add(&k->w->stats.proxy[named ? PROXY_OUT_OK : PROXY_OUT_LOCAL],
		    1);
	if (log_level >= LOG_VERBOSE)
		log_verbose("proxy fd %d peer %s via %s (v%d%s)", c->fd,
			    net_addr_text(&c->peer.sa, peer, sizeof(peer)),
			    net_addr_text(named ? &c->via.sa : &c->peer.sa, via,
					  sizeof(via)),
			    h->version, named ? "" : ", the balancer's own");
	if (!admission_check(k, &c->peer, -1, &flags))
		return CLOSE_PROXY;
	c->flags |= flags;
	return CLOSE_NONE;
}

/* Whether data[0, n) holds a whole v1 or v2 signature. */
static bool signed_header(const char *data, size_t n)
{
	static const char v2[12] = "\r\n\r\n\0\r\nQUIT\n";

	return (n >= 6 && memcmp(data, "PROXY ", 6) == 0) ||
	       (n >= sizeof(v2) && memcmp(data, v2, sizeof(v2)) == 0);
}

/* Whether c's peer has shut its side (a FIN behind the bytes waiting). */
static bool peer_shut(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

/*
 * Only the start of a header so far (started), or nothing yet. What came
 * is left in the socket, so c is looked at again by time, at 10 ms then
 * twice as long each time up to 250 ms (a socket that stays readable
 * cannot be watched for more), until --proxy-timeout.
 */
static enum close_reason proxy_more(struct core *k, struct conn *c,
				    uint64_t now_ns, bool started)
{
	bool balancer = c->flags & CONN_BALANCER;
	bool shut = started && peer_shut(c->fd);

	if (now_ns >= core_proxy_deadline_ns(k, c) || shut) {
		if (!balancer)
			return proxy_plain(k, c);
		return proxy_refuse(
			k, c, shut ? PROXY_OUT_TRUNCATED : PROXY_OUT_TIMEOUT);
	}
	if (!started)
		c->proxy_poll_ms = 0;
	else if (c->proxy_poll_ms < PROXY_POLL_MAX_MS)
		c->proxy_poll_ms = c->proxy_poll_ms ? 2 * c->proxy_poll_ms : 10;
	return CLOSE_NONE;
}

enum close_reason core_proxy_step(struct core *k, struct conn *c,
				  uint64_t now_ns)
{
	char buf[PROXY_MAX];
	struct proxy_header h;
	enum proxy_result r;
	ssize_t n;

	do {
		n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return close_reason_of(-errno);
	if (n == 0) {
		/* A connect and a close (a health check): nothing to do. */
		c->flags |= CONN_PEER_EOF;
		return proxy_plain(k, c);
	}
	r = n < 0 ? PROXY_MORE : proxy_parse(buf, (size_t)n, &h);
	/*
	 * A client of its own is not kept waiting on what merely could
	 * start a header (a blank line starts v2's signature): only a whole
	 * signature is refused.
	 */
	if (r == PROXY_MORE && n > 0 && !(c->flags & CONN_BALANCER))
		return signed_header(buf, (size_t)n)
			       ? proxy_refuse(k, c, PROXY_OUT_NOT_ALLOWED)
			       : proxy_plain(k, c);
	if (r == PROXY_MORE)
		return proxy_more(k, c, now_ns, n > 0);
	if (!(c->flags & CONN_BALANCER))
		return r == PROXY_NONE
			       ? proxy_plain(k, c)
			       : proxy_refuse(k, c, PROXY_OUT_NOT_ALLOWED);
	if (r != PROXY_OK)
		return proxy_refuse(k, c,
				    r == PROXY_NONE ? PROXY_OUT_MISSING
				    : r == PROXY_OVERSIZED
					    ? PROXY_OUT_OVERSIZED
					    : PROXY_OUT_MALFORMED);
	/* Peeked whole, so it is there to take: nothing of it is echoed. */
	if (recv(c->fd, buf, h.length, MSG_DONTWAIT) != (ssize_t)h.length)
		return CLOSE_ERROR;
	return proxy_client(k, c, &h);
}
