// SPDX-License-Identifier: BSD-2-Clause
/* core.c - the loop core: admission, settling, deadlines and close. */
#include <sys/resource.h>
#include <sys/socket.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "budget.h"
#include "conn.h"
#include "core.h"
#include "core_internal.h"
#include "compiler.h"
#include "counter.h"
#include "fault.h"
#include "fault_conn.h"
#include "fault_udp.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "report.h"
#include "sys.h"
#include "tls.h"
#include "worker.h"

/* No connection: the end of the queued list. */
#define NO_SLOT UINT32_MAX

int core_init(struct core *k, struct worker *w, size_t priv_size,
	      size_t pool_size)
{
	memset(k, 0, sizeof(*k));
	k->w = w;
	k->o = w->opts;
	k->listen_fds = w->listen_fds;
	k->listen_tls = w->listen_tls;
	k->nlisten = w->nlisten;
	k->udp_fds = w->udp_fds;
	k->nudp = w->nudp;
	k->ctl_fd = w->ctl_fd;
	k->one = w->shared->one.on ? &w->shared->one : NULL;
	k->table.priv_size = priv_size;
	k->due.idle_ms = k->o->idle_timeout * 1000ULL;
	k->due.linger_ms = k->o->linger * 1000ULL;
	k->read_unit = 1;
	k->queued_head = NO_SLOT;
	k->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	core_clock(k);
	k->budget = &w->shared->memory;
	if (outq_pool_init(&k->pool, pool_size, CORE_POOL_CACHE, k->budget) < 0)
		return -ENOMEM;
	if (w->nudp && udp_init(&k->udp, k->o, w->port) < 0)
		return -ENOMEM;
	/* Counted where the table and the metrics thread can read them. */
	k->udp.stats = &w->udp_stats;
	k->faults = w->shared->faults;
	k->tls = w->shared->tls;
	if (k->faults && w->nudp) {
		k->udp.faults = fault_udp_new(k->faults);
		if (k->udp.faults == NULL)
			return -ENOMEM;
	}
	return 0;
}

int core_fail(struct core *k, const char *what, int err)
{
	return worker_failed(k->w, what, err);
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
	wakeup_destroy(&k->wakeups);
	fault_udp_free(k->udp.faults);
	udp_destroy(&k->udp);
	if (k->pool.free)
		outq_pool_destroy(&k->pool);
	free(k->memq);
	if (k->spare_fd >= 0)
		close(k->spare_fd);
}

uint64_t core_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void core_clock(struct core *k)
{
	k->now_ms = core_now_ms();
}

/*
 * Takes one place under --max-conns and under the descriptor budget,
 * counted across workers. A CAS loop, so concurrent accepts never
 * overshoot. Returns 0, or -1 for --max-conns and -2 for the budget.
 */
static int take_place(struct core *k)
{
	atomic_uint *open = &k->w->shared->conns;
	unsigned int max = k->o->max_conns, budget = k->w->shared->fd_budget;
	unsigned int n = atomic_load_explicit(open, memory_order_relaxed);

	do {
		if (max && n >= max)
			return -1;
		if (budget && n >= budget)
			return -2;
	} while (!atomic_compare_exchange_weak_explicit(
		open, &n, n + 1, memory_order_relaxed, memory_order_relaxed));
	return 0;
}

static void give_place(struct core *k)
{
	atomic_fetch_sub_explicit(&k->w->shared->conns, 1,
				  memory_order_relaxed);
}

/* In one-connection mode, once it is over, main may end the process. */
static void check_served(struct core *k)
{
	if (k->one && core_count(k) == 0)
		atomic_store(&k->one->over, true);
}

int core_given_fd(struct core *k)
{
	int fd = k->one ? k->one->fd : -1;

	/* The core owns it from now on: it is served once. */
	if (fd >= 0)
		k->one->fd = -1;
	return fd;
}

/* Closes a descriptor that will not be served (counted by the caller). */
static struct conn *drop(struct core *k, int fd)
{
	close(fd);
	check_served(k);
	return NULL;
}

unsigned int core_fd_budget(int workers)
{
	struct rlimit rl;
	unsigned int used = 0;
	struct dirent *e;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		used += e->d_name[0] != '.';
	closedir(d);
	/* The directory's own descriptor was counted too; keep it as slack. */
	used += (unsigned int)workers * CORE_FDS_PER_WORKER + CORE_FDS_SLACK;
	return rl.rlim_cur > used ? (unsigned int)(rl.rlim_cur - used) : 1;
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
	/* from= of a fault needs it too: any --fault or --control. */
	if (k->o->access.n || k->o->max_per_source || k->o->proxy_protocol ||
	    k->faults || log_level >= LOG_VERBOSE)
		getpeername(fd, &out->sa, &len);
}

/*
 * A place under --max-conns and the descriptor budget, and a slot, for
 * descriptor fd; NULL (logged, and counted by reason) when there is none.
 */
static struct conn *take_slot(struct core *k, int fd)
{
	_Atomic uint64_t *refused = k->w->stats.refused_by;
	struct conn *c;

	switch (take_place(k)) {
	case -1:
		counter_add(&refused[REFUSE_MAX_CONNS], 1);
		log_verbose("refuse fd %d: --max-conns %u reached", fd,
			    k->o->max_conns);
		return NULL;
	case -2:
		counter_add(&refused[REFUSE_DESCRIPTORS], 1);
		if (!k->exhausted)
			log_warn(
				"%u connections open, as many as the descriptor limit allows; refusing clients until descriptors free up",
				k->w->shared->fd_budget);
		/*
		 * Refusing needs no spare descriptor here (this one is
		 * closed at once), so no worker can take another's way to
		 * refuse, and no client is left waiting in a backlog.
		 */
		k->exhausted = true;
		return NULL;
	}
	c = conn_table_get(&k->table);
	if (c == NULL) {
		counter_add(&refused[REFUSE_MEMORY], 1);
		log_verbose("refuse fd %d: %s", fd, strerror(ENOMEM));
		give_place(k);
	}
	return c;
}

/* The -v accept line, with fd, peer and faults as typed fields in JSON. */
static void log_accept(const struct conn *c, int lfd)
{
	char peer[NET_ADDR_TEXT], fields[256] = "";
	const char *faults =
		c->fault && c->fault->names[0] ? c->fault->names : NULL;

	net_addr_text(&c->peer.sa, peer, sizeof(peer));
	if (log_json_on())
		snprintf(
			fields, sizeof(fields),
			"\"event\":\"accept\",\"fd\":%d,\"peer\":\"%s\",\"listen_fd\":%d,\"faults\":\"%s\"",
			c->fd, peer, lfd, faults ? faults : "");
	log_write_fields(LOG_VERBOSE, fields,
			 "accept fd %d peer %s on fd %d%s%s", c->fd, peer, lfd,
			 faults ? " faults " : "", faults ? faults : "");
}

/* Whether lfd is one of the --tls-port listeners. */
static bool on_tls_listener(const struct core *k, int lfd)
{
	for (int i = 0; i < k->nlisten; i++)
		if (k->listen_fds[i] == lfd)
			return k->listen_tls[i];
	return false;
}

struct conn *core_admit(struct core *k, int fd, const union net_addr *peer,
			int lfd)
{
	union net_addr from;
	uint32_t flags = 0;
	struct conn *c;
	bool balancer, tls;

	find_peer(k, fd, peer, &from);
	/* No byte is read from a refused peer: it is closed right here. */
	/* A balancer's client is judged once its header names it. */
	balancer = k->o->proxy_protocol &&
		   access_check(&k->o->proxy_from, &from) == ACCESS_OK;
	if (!balancer && !admission_check(k, &from, lfd, &flags))
		return drop(k, fd);
	c = take_slot(k, fd);
	if (c == NULL) {
		if (flags & CONN_SOURCE)
			admission_give_source(k, &from);
		return drop(k, fd);
	}
	if (k->exhausted) {
		log_info("accepting again on fd %d", lfd);
		k->exhausted = false;
	}
	c->fd = fd;
	c->peer = from;
	c->flags |= flags;
	c->born_ms = c->sent_ms = k->now_ms;
	deadline_add(&k->due, c, k->now_ms);
	/* Its idle deadline; with --max-lifetime, the sweep. */
	if (k->due.idle_ms)
		core_wake_by(k, k->now_ms + k->due.idle_ms);
	if (k->o->max_lifetime)
		core_wake_by(k, k->sweep_at);
	counter_add(&k->w->stats.accepted, 1);
	c->wake_pos = WAKEUP_NONE;
	tls = k->tls && on_tls_listener(k, lfd);
	if ((k->faults || k->o->proxy_protocol || tls) &&
	    core_serve_open(k, c, balancer, tls) < 0) {
		core_retire(k, c, CLOSE_MEMORY);
		core_free(k, c);
		return NULL;
	}
	if (log_level >= LOG_VERBOSE)
		log_accept(c, lfd);
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
	counter_add(&k->w->stats.refused_by[REFUSE_DESCRIPTORS], refused);
	if (k->spare_fd < 0)
		core_wake_by(k, k->now_ms + CORE_ACCEPT_PAUSE_MS);
	if (busy == 0)
		return CORE_ACCEPT_EMPTIED;
	k->paused_until = k->now_ms + CORE_ACCEPT_PAUSE_MS;
	core_wake_by(k, k->paused_until);
	return CORE_ACCEPT_PAUSED;
}

bool core_resume_due(struct core *k)
{
	if (k->paused_until == 0 || k->paused_until > k->now_ms)
		return false;
	k->paused_until = 0;
	return true;
}

/*
 * The sweep runs only when it can find something: with --max-lifetime,
 * or with --send-timeout while some connection has echoes waiting. A
 * worker whose echoes all went out at once (the common case) then sleeps
 * with no timer at all, which epoll_wait and io_uring_enter would pay
 * for on every wakeup.
 */
static bool sweeping(const struct core *k)
{
	return core_count(k) &&
	       (k->o->max_lifetime ||
		(k->o->send_timeout && k->queued_head != NO_SLOT));
}

static struct conn *slot_conn(const struct core *k, uint32_t slot)
{
	return slot == NO_SLOT ? NULL : k->table.slots[slot];
}

static void queued_unlink(struct core *k, struct conn *c)
{
	struct conn *prev = slot_conn(k, c->qprev);
	struct conn *next = slot_conn(k, c->qnext);

	if (prev)
		prev->qnext = c->qnext;
	else
		k->queued_head = c->qnext;
	if (next)
		next->qprev = c->qprev;
	c->flags &= ~CONN_QUEUED;
}

/*
 * Keeps the connections with echoes waiting on their own list, so that
 * the --send-timeout sweep visits those and not every open connection:
 * with a million idle clients and one slow reader, a once-a-second walk
 * over all of them would stall the worker for tens of ms each time. The
 * send-timeout clock of one starts when its echoes start to wait.
 */
static void note_queued(struct core *k, struct conn *c, bool queued)
{
	struct conn *head;

	if (queued == !!(c->flags & CONN_QUEUED))
		return;
	if (!queued) {
		queued_unlink(k, c);
		return;
	}
	head = slot_conn(k, k->queued_head);
	/* A first queue: with --send-timeout, the sweep. */
	if (head == NULL && k->o->send_timeout)
		core_wake_by(k, k->sweep_at);
	c->qprev = NO_SLOT;
	c->qnext = k->queued_head;
	if (head)
		head->qprev = c->slot;
	k->queued_head = c->slot;
	c->flags |= CONN_QUEUED;
	c->sent_ms = k->now_ms;
	c->sent_seen = (uint32_t)c->bytes_out;
}

/*
 * Counts each time c's queue fills to where its backend stops reading
 * (less room than one read), once per episode.
 */
static void note_pause(struct core *k, struct conn *c)
{
	bool full = outq_room(&c->out, k->o->max_pending) < k->read_unit;

	if (full && !(c->flags & CONN_PAUSED))
		counter_add(&k->w->stats.pauses, 1);
	c->flags = full ? c->flags | CONN_PAUSED : c->flags & ~CONN_PAUSED;
}

enum close_reason core_settle_queue(struct core *k, struct conn *c, bool queued)
{
	note_pause(k, c);
	note_queued(k, c, queued);
	if (!queued) {
		if (c->flags & CONN_PEER_EOF)
			return CLOSE_EOF;
		/*
		 * After the -n'th echo is out: our FIN (the client still
		 * gets every byte), then wait on the linger list for the
		 * client's close while its input is read and discarded.
		 */
		if ((c->flags & (CONN_LIMIT | CONN_SHUT_WR)) == CONN_LIMIT) {
			shutdown(c->fd, SHUT_WR);
			c->flags |= CONN_SHUT_WR;
			core_linger(k, c);
		}
	}
	return CLOSE_NONE;
}

/*
 * Whether c must go for a reason only a periodic look finds: a peer
 * that takes none of its echoes (so it is never idle by our reading, and
 * never touched), or a connection past --max-lifetime (a dribbler that
 * the idle timeout never catches).
 */
static enum close_reason overdue(const struct core *k, struct conn *c)
{
	uint64_t now = k->now_ms;

	if (k->o->max_lifetime &&
	    now - c->born_ms >= k->o->max_lifetime * 1000ULL)
		return CLOSE_LIFETIME;
	/* Echoes a fault holds back are not the peer's to take yet. */
	if (outq_bytes(&c->out) == 0 || (c->fault && !c->fault->blocked) ||
	    (uint32_t)c->bytes_out != c->sent_seen) {
		c->sent_seen = (uint32_t)c->bytes_out;
		c->sent_ms = now;
	} else if (k->o->send_timeout &&
		   now - c->sent_ms >= k->o->send_timeout * 1000ULL) {
		return CLOSE_SEND_TIMEOUT;
	}
	return CLOSE_NONE;
}

/*
 * The connection the sweep visits after c: with --max-lifetime every
 * open one (the idle list, then the linger list), else those with
 * echoes waiting, the only ones a send timeout can catch.
 */
static struct conn *after(const struct core *k, const struct conn *c)
{
	if (!k->o->max_lifetime)
		return slot_conn(k, c->qnext);
	if (c->next || (c->flags & CONN_LINGER))
		return c->next;
	return k->due.linger.head;
}

/* Goes on with this wakeup's sweep from k->sweep_next. */
static struct conn *sweep(struct core *k, enum close_reason *why)
{
	struct conn *c;

	while ((c = k->sweep_next) != NULL) {
		k->sweep_next = after(k, c);
		*why = overdue(k, c);
		if (*why != CLOSE_NONE)
			return c;
	}
	k->sweep_due = false;
	return NULL;
}

static struct conn *expired(struct core *k, enum close_reason *why)
{
	struct conn *c = deadline_expired(&k->due, k->now_ms, why);

	if (c)
		return c;
	if (!sweeping(k)) {
		/* A sweep cut short by the last close must not resume later. */
		k->sweep_due = false;
		return NULL;
	}
	if (!k->sweep_due && k->now_ms >= k->sweep_at) {
		k->sweep_due = true;
		k->sweep_next = k->o->max_lifetime
					? core_any(k)
					: slot_conn(k, k->queued_head);
		k->sweep_at = k->now_ms + CORE_SWEEP_MS;
	}
	return k->sweep_due ? sweep(k, why) : NULL;
}

/*
 * A trim tick from now while there is something to give back (spare
 * pooled buffers, or the backend's part); none otherwise.
 */
static uint64_t next_trim(const struct core *k)
{
	return k->pool.nfree || k->trim_more ? k->now_ms + CORE_TRIM_MS : 0;
}

bool core_trim_due(struct core *k)
{
	if (k->trim_at == 0) {
		k->trim_at = next_trim(k);
		if (k->trim_at)
			core_wake_by(k, k->trim_at);
		return false;
	}
	if (k->trim_at > k->now_ms)
		return false;
	if (core_count(k))
		outq_pool_decay(&k->pool);
	else
		outq_pool_trim(&k->pool);
	k->trim_at = next_trim(k);
	return true;
}

/* Sends the held datagrams whose time came, and counts them. */
static void fault_udp_send(struct core *k, uint64_t now_ns)
{
	struct fault_udp_sent sent;

	fault_udp_flush(k->udp.faults, now_ns, &sent);
	counter_add(&k->udp.stats->echoed, sent.echoed);
	counter_add(&k->udp.stats->bytes, sent.bytes);
	counter_add(&k->udp.stats->dropped[UDP_DROP_SEND], sent.dropped);
}

/* When the worker's first held datagram is due; 0: none. */
static uint64_t fault_udp_next_of(const struct core *k)
{
	return k->udp.faults ? fault_udp_next(k->udp.faults) : 0;
}

/* The next connection with faults whose time came, after its step. */
static struct conn *fault_woken(struct core *k, enum close_reason *why)
{
	uint64_t now_ns;
	struct conn *c;

	if (k->wakeups.n == 0 && !fault_udp_next_of(k))
		return NULL;
	now_ns = fault_now_ns();
	if (k->udp.faults)
		fault_udp_send(k, now_ns);
	c = wakeup_pop(&k->wakeups, now_ns);
	if (c == NULL)
		return NULL;
	/* TLS reads too: records its library holds raise no readiness. */
	*why = c->tls ? core_serve_io(k, c, false, false)
		      : core_serve_step(k, c, now_ns);
	if (*why == CLOSE_NONE)
		*why = core_settle(k, c);
	return c;
}

/*
 * A refusal that gave the spare descriptor up can lose it for good:
 * another worker may take its number before it is opened again. It is
 * taken back at this worker's next close, or, with none to come, tried
 * again every CORE_ACCEPT_PAUSE_MS (core_timeout_ms wakes the worker).
 */
static void spare_back(struct core *k)
{
	if (k->spare_fd < 0)
		k->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* core_due when not quiet: apart, so that a quiet wakeup pays no frame. */
static NOINLINE struct conn *due(struct core *k, enum close_reason *why)
{
	struct conn *c = expired(k, why);

	spare_back(k);
	if (c)
		return c;
	c = fault_woken(k, why);
	if (c)
		return c;
	*why = CLOSE_NONE;
	return core_mem_resumed(k);
}

struct conn *core_due(struct core *k, enum close_reason *why)
{
	*why = CLOSE_NONE;
	return core_quiet(k) ? NULL : due(k, why);
}

/*
 * The sooner of ms and the first fault's time, which is kept to the
 * nanosecond (a held echo must not go early by a coarse tick): rounded
 * up, so that the wait never ends before it.
 */
static int fault_timeout_ms(const struct core *k, int ms)
{
	uint64_t at = wakeup_next(&k->wakeups), now, wait;
	uint64_t held = fault_udp_next_of(k);

	if (at == 0 || (held && held < at))
		at = held;
	if (at == 0)
		return ms;
	now = fault_now_ns();
	wait = at > now ? (at - now + 999999) / 1000000 : 0;
	if (wait > INT32_MAX)
		wait = INT32_MAX;
	return ms < 0 || (int)wait < ms ? (int)wait : ms;
}

int core_timeout_recompute(struct core *k)
{
	uint64_t next = deadline_next(&k->due);

	if (k->trim_at && k->trim_at < next)
		next = k->trim_at;
	if (sweeping(k) && k->sweep_at < next)
		next = k->sweep_at;
	if (k->paused_until && k->paused_until < next)
		next = k->paused_until;
	/* Memory another worker gives back wakes nobody: look again soon. */
	if (k->nmemwait && k->now_ms + CORE_MEM_RETRY_MS < next)
		next = k->now_ms + CORE_MEM_RETRY_MS;
	if (k->spare_fd < 0 && k->now_ms + CORE_ACCEPT_PAUSE_MS < next)
		next = k->now_ms + CORE_ACCEPT_PAUSE_MS;
	/* Held faults' times are in ns, and memory may come any time. */
	k->quiet_until = next;
	if (k->wakeups.n || k->udp.faults || k->memq_n || k->sweep_due)
		k->quiet_until = 0;
	return fault_timeout_ms(k, core_wait_ms(k, next));
}

/* Counts c's lifetime in its histogram bucket. */
static void count_lifetime(struct core *k, const struct conn *c)
{
	static const uint64_t bounds[] = WORKER_LIFETIME_BOUNDS_MS;
	struct worker_stats *s = &k->w->stats;
	uint64_t ms = k->now_ms - c->born_ms;
	int i = 0;

	while (i < WORKER_NLIFETIMES - 1 && ms > bounds[i])
		i++;
	counter_add(&s->lifetimes[i], 1);
	counter_add(&s->lifetime_ms, ms);
}

/* The -v close line, with its counts as typed fields in JSON. */
static void log_close(const struct conn *c, enum close_reason why)
{
	char peer[NET_ADDR_TEXT], fields[320] = "";

	net_addr_text(&c->peer.sa, peer, sizeof(peer));
	if (log_json_on())
		snprintf(
			fields, sizeof(fields),
			"\"event\":\"close\",\"fd\":%d,\"peer\":\"%s\",\"reason\":\"%s\",\"messages\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu",
			c->fd, peer, close_reason_label(why),
			(unsigned long long)c->messages,
			(unsigned long long)c->bytes_in,
			(unsigned long long)c->bytes_out);
	log_write_fields(
		LOG_VERBOSE, fields,
		"close fd %d peer %s (%s): %llu messages, %llu bytes in, %llu bytes out",
		c->fd, peer, close_reason_words(why),
		(unsigned long long)c->messages,
		(unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out);
}

void core_retire(struct core *k, struct conn *c, enum close_reason why)
{
	struct worker_stats *s = &k->w->stats;

	counter_add(&s->closed_by[why], 1);
	count_lifetime(k, c);
	core_count_moved(k, c);
	/* Last, so that a reader never sees more closed than reasons. */
	counter_add(&s->closed, 1);
	if (log_level >= LOG_VERBOSE)
		log_close(c, why);
	/* The sweep goes on past c, whoever closed it. */
	if (k->sweep_next == c)
		k->sweep_next = after(k, c);
	deadline_remove(&k->due, c);
	if (c->flags & CONN_QUEUED)
		queued_unlink(k, c);
	core_mem_unwait(k, c);
	wakeup_set(&k->wakeups, &c->wake_pos, c, 0);
	c->flags |= CONN_CLOSING;
	if (core_count(k) == 0) {
		k->trim_at = k->now_ms + CORE_TRIM_MS;
		core_wake_by(k, k->trim_at);
	}
}

void core_free(struct core *k, struct conn *c)
{
	outq_release(&k->pool, &c->out);
	fault_conn_free(c->fault);
	c->fault = NULL;
	if (c->tls) {
		/* Best effort, never waited for: the peer may be gone. */
		if (c->flags & CONN_TLS_UP)
			tls_conn_close_notify(c->tls);
		tls_conn_free(c->tls);
		c->tls = NULL;
	}
	/*
	 * For epoll, close() also drops fd from the set: it is never dup'd.
	 * -1: the backend has its close under way (io_uring).
	 */
	if (c->fd >= 0)
		sys_close(c->fd);
	/* A spare lost to another worker: the number just freed. */
	spare_back(k);
	give_place(k);
	if (c->flags & CONN_SOURCE)
		admission_give_source(k, &c->peer);
	conn_table_put(&k->table, c);
	check_served(k);
}

/* Describes every open connection and hands the rows to main. */
static void answer_report(struct core *k)
{
	size_t max = core_count(k), n = 0;
	struct report_row *rows;
	const struct conn_list *lists[] = {&k->due.idle, &k->due.linger};

	core_clock(k);
	rows = calloc(max ? max : 1, sizeof(*rows));
	for (int i = 0; i < 2 && rows; i++) {
		for (struct conn *c = lists[i]->head; c && n < max;
		     c = c->next) {
			conn_describe(c, k->now_ms, &rows[n]);
			rows[n++].worker = k->w->id;
		}
	}
	worker_answer(k->w, rows, n);
}

bool core_control(struct core *k)
{
	unsigned int req = worker_requests(k->w);

	if (req & WORKER_REPORT)
		answer_report(k);
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
	int fd = k->udp_fds[i];
	int err = udp_serve(&k->udp, fd, k->now_ms);

	/* For --inetd's datagram mode, which ends after --idle-timeout. */
	if (k->one)
		atomic_store_explicit(&k->one->last_datagram_ms, k->now_ms,
				      memory_order_relaxed);
	if (err < 0)
		log_warn("udp fd %d: %s", fd, strerror(-err));
}
