/* core.c - the loop core: admission, settling, deadlines and close. */
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "worker.h"

int core_init(struct core *k, struct worker *w, size_t priv_size,
	      size_t pool_size)
{
	memset(k, 0, sizeof(*k));
	k->w = w;
	k->o = w->opts;
	k->table.priv_size = priv_size;
	k->due.idle_ms = k->o->idle_timeout * 1000ULL;
	k->due.linger_ms = k->o->linger * 1000ULL;
	k->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	core_clock(k);
	if (outq_pool_init(&k->pool, pool_size, CORE_POOL_CACHE) < 0)
		return -ENOMEM;
	if (w->nudp && udp_init(&k->udp, k->o, w->port) < 0)
		return -ENOMEM;
	return 0;
}

void core_destroy(struct core *k)
{
	struct conn *c;

	for (uint32_t i = 0; i < k->table.nslots; i++) {
		c = k->table.slots[i];
		if (c != NULL && c->fd >= 0)
			core_free(k, c);
	}
	conn_table_destroy(&k->table);
	k->w->udp_stats = k->udp.stats;
	udp_destroy(&k->udp);
	if (k->pool.free)
		outq_pool_destroy(&k->pool);
	if (k->spare_fd >= 0)
		close(k->spare_fd);
}

void core_clock(struct core *k)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	k->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Takes one place under --max-conns, counted across workers. A CAS
 * loop, so concurrent accepts never overshoot the limit.
 */
static bool take_place(struct core *k)
{
	atomic_uint *open = &k->w->shared->conns;
	unsigned int max = k->o->max_conns;
	unsigned int n = atomic_load_explicit(open, memory_order_relaxed);

	do {
		if (max && n >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		open, &n, n + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

static void give_place(struct core *k)
{
	atomic_fetch_sub_explicit(&k->w->shared->conns, 1,
				  memory_order_relaxed);
}

/* In one-connection mode, once it is over, main may end the process. */
static void check_served(struct core *k)
{
	if (k->one_shot && core_count(k) == 0)
		atomic_store(&k->w->shared->served, true);
}

int core_given_fd(struct core *k)
{
	if (!k->w->given)
		return -1;
	k->w->given = false;
	k->one_shot = true;
	return k->w->given_fd;
}

/* Closes a descriptor that will not be served, and counts it. */
static struct conn *refuse(struct core *k, int fd)
{
	k->w->stats.refused++;
	close(fd);
	check_served(k);
	return NULL;
}

/*
 * One line for a refused peer, at most once a second per worker, so a
 * flood of refused clients cannot flood the log; the next line says how
 * many went unlogged.
 */
static void log_refusal(struct core *k, const union net_addr *peer, int lfd,
			const char *why)
{
	char text[NET_ADDR_TEXT];

	if (k->now_ms < k->log_next_ms) {
		k->log_missed++;
		return;
	}
	log_info("refused %s on fd %d: %s (%llu more refused unlogged)",
		 net_addr_text(&peer->sa, text, sizeof(text)), lfd, why,
		 (unsigned long long)k->log_missed);
	k->log_missed = 0;
	k->log_next_ms = k->now_ms + 1000;
}

/*
 * The access policies, before the connection takes anything: --allow,
 * --deny, then a --max-per-source place (CONN_SOURCE in *flags). Returns
 * false when peer is refused, counted by reason and logged.
 */
static bool admissible(struct core *k, const union net_addr *peer, int lfd,
		       uint32_t *flags)
{
	const struct options *o = k->o;
	uint8_t key[16];
	int err;

	if (o->access.n && !access_allowed(&o->access, peer)) {
		k->w->stats.denied++;
		log_refusal(k, peer, lfd, "denied by --allow/--deny");
		return false;
	}
	if (o->max_per_source == 0)
		return true;
	access_source_key(peer, key);
	err = access_source_take(&k->w->shared->sources, key,
				 o->max_per_source);
	if (err < 0) {
		k->w->stats.over_source++;
		log_refusal(k, peer, lfd,
			    err == -EUSERS ? "over --max-per-source"
					   : "per-source table full");
		return false;
	}
	*flags |= CONN_SOURCE;
	return true;
}

static void give_source(struct core *k, const union net_addr *peer)
{
	uint8_t key[16];

	access_source_key(peer, key);
	access_source_give(&k->w->shared->sources, key);
}

/*
 * The peer's address: the backend's, or asked of the kernel when a rule
 * or the -v lines need it.
 */
static void find_peer(struct core *k, int fd, const union net_addr *peer,
		      union net_addr *out)
{
	socklen_t len = sizeof(*out);

	if (peer) {
		*out = *peer;
		return;
	}
	memset(out, 0, sizeof(*out));
	if (k->o->access.n || k->o->max_per_source || log_level >= LOG_VERBOSE)
		getpeername(fd, &out->sa, &len);
}

struct conn *core_admit(struct core *k, int fd, const union net_addr *peer,
			int lfd)
{
	char text[NET_ADDR_TEXT];
	union net_addr from;
	uint32_t flags = 0;
	struct conn *c;

	if (k->exhausted) {
		log_info("accepting again on fd %d", lfd);
		k->exhausted = false;
	}
	find_peer(k, fd, peer, &from);
	/* No byte is read from a refused peer: it is closed right here. */
	if (!admissible(k, &from, lfd, &flags)) {
		close(fd);
		check_served(k);
		return NULL;
	}
	if (!take_place(k)) {
		log_verbose("refuse fd %d: --max-conns %u reached", fd,
			    k->o->max_conns);
		if (flags & CONN_SOURCE)
			give_source(k, &from);
		return refuse(k, fd);
	}
	c = conn_table_get(&k->table);
	if (c == NULL) {
		log_verbose("refuse fd %d: %s", fd, strerror(ENOMEM));
		give_place(k);
		if (flags & CONN_SOURCE)
			give_source(k, &from);
		return refuse(k, fd);
	}
	c->fd = fd;
	c->peer = from;
	c->flags |= flags;
	net_tune_conn(fd);
	deadline_add(&k->due, c, k->now_ms);
	k->w->stats.accepted++;
	log_verbose("accept fd %d peer %s on fd %d", fd,
		    net_addr_text(&c->peer.sa, text, sizeof(text)), lfd);
	return c;
}

static bool out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

/*
 * Out of descriptors, the spare one is given up to accept and close each
 * waiting client, so they are refused at once instead of hanging in the
 * backlog; if even that fails, accepting pauses for a moment instead of
 * spinning on a listener that stays ready.
 */
enum core_accept core_accept_failed(struct core *k, int lfd, int err)
{
	unsigned long long refused = 0;
	int busy;

	if (!out_of_fds(err)) {
		/* ECONNABORTED, EPROTO, EINTR...: that client only. */
		log_debug("accept on fd %d: %s", lfd, strerror(err));
		return CORE_ACCEPT_GO_ON;
	}
	if (!k->exhausted)
		log_warn(
			"accept on fd %d: %s; refusing clients until descriptors free up",
			lfd, strerror(err));
	k->exhausted = true;
	busy = net_refuse_waiting(lfd, &k->spare_fd, CORE_ACCEPTS_PER_WAKEUP,
				  &refused);
	k->w->stats.refused += refused;
	if (busy == 0)
		return CORE_ACCEPT_EMPTIED;
	k->paused_until = k->now_ms + CORE_ACCEPT_PAUSE_MS;
	return CORE_ACCEPT_PAUSED;
}

bool core_resume_due(struct core *k)
{
	if (k->paused_until == 0 || k->paused_until > k->now_ms)
		return false;
	k->paused_until = 0;
	return true;
}

const char *core_settle(struct core *k, struct conn *c)
{
	if (outq_bytes(&c->out) == 0) {
		if (c->flags & CONN_PEER_EOF)
			return "end of input";
		/*
		 * After the -n'th echo is out: our FIN (the client still
		 * gets every byte), then wait on the linger list for the
		 * client's close while its input is read and discarded.
		 */
		if ((c->flags & (CONN_LIMIT | CONN_SHUT_WR)) == CONN_LIMIT) {
			shutdown(c->fd, SHUT_WR);
			c->flags |= CONN_SHUT_WR;
			deadline_linger(&k->due, c, k->now_ms);
		}
	}
	deadline_touch(&k->due, c, k->now_ms);
	return NULL;
}

struct conn *core_expired(struct core *k, const char **why)
{
	return deadline_expired(&k->due, k->now_ms, why);
}

int core_timeout_ms(const struct core *k)
{
	uint64_t next = deadline_next(&k->due);

	if (k->paused_until && k->paused_until < next)
		next = k->paused_until;
	if (next == UINT64_MAX)
		return -1;
	/* The coarse clock ticks every few ms: round up, never spin. */
	return next > k->now_ms ? (int)(next - k->now_ms) + 5 : 5;
}

void core_retire(struct core *k, struct conn *c, const char *why)
{
	struct worker_stats *s = &k->w->stats;
	char peer[NET_ADDR_TEXT];

	s->closed++;
	s->bytes_in += c->bytes_in;
	s->bytes_out += c->bytes_out;
	s->messages += c->messages;
	log_verbose(
		"close fd %d peer %s (%s): %llu messages, %llu bytes in, %llu bytes out",
		c->fd, net_addr_text(&c->peer.sa, peer, sizeof(peer)), why,
		(unsigned long long)c->messages,
		(unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out);
	deadline_remove(&k->due, c);
	c->flags |= CONN_CLOSING;
}

void core_free(struct core *k, struct conn *c)
{
	outq_release(&k->pool, &c->out);
	/* For epoll, close() also drops fd from the set: it is never dup'd. */
	close(c->fd);
	give_place(k);
	if (c->flags & CONN_SOURCE)
		give_source(k, &c->peer);
	conn_table_put(&k->table, c);
	check_served(k);
}

bool core_control(struct core *k)
{
	unsigned int req = worker_requests(k->w);

	/*
	 * Main shuts the listeners; accepting stays paused for good, and
	 * the backend stops watching them.
	 */
	if (req & WORKER_DRAIN) {
		k->draining = true;
		k->paused_until = UINT64_MAX;
	}
	return req & WORKER_STOP;
}

void core_serve_udp(struct core *k, int i)
{
	int fd = k->w->udp_fds[i];
	int err = udp_serve(&k->udp, fd, k->now_ms);

	/* For --inetd's datagram mode, which ends after --idle-timeout. */
	atomic_store_explicit(&k->w->shared->udp_last_ms, k->now_ms,
			      memory_order_relaxed);
	if (err < 0)
		log_warn("udp fd %d: %s", fd, strerror(-err));
}
