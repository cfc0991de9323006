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
#include "counter.h"
#include "fault.h"
#include "fault_conn.h"
#include "fault_udp.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "report.h"
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
 * One line for a refused peer, at most once a second per worker, so a
 * flood of refused clients cannot flood the log; the next line says how
 * many went unlogged.
 */
static void log_refusal(struct core *k, const union net_addr *peer, int lfd,
			enum refuse_reason why)
{
	char text[NET_ADDR_TEXT], fields[256] = "";

	counter_add(&k->w->stats.refused_by[why], 1);
	if (k->now_ms < k->log_next_ms) {
		k->log_missed++;
		return;
	}
	net_addr_text(&peer->sa, text, sizeof(text));
	if (log_json_on())
		snprintf(
			fields, sizeof(fields),
			"\"event\":\"refuse\",\"peer\":\"%s\",\"listen_fd\":%d,\"reason\":\"%s\",\"unlogged\":%llu",
			text, lfd, refuse_reason_label(why),
			(unsigned long long)k->log_missed);
	log_write_fields(LOG_INFO, fields,
			 "refused %s on fd %d: %s (%llu more refused unlogged)",
			 text, lfd, refuse_reason_words(why),
			 (unsigned long long)k->log_missed);
	k->log_missed = 0;
	k->log_next_ms = k->now_ms + 1000;
}

/*
 * The access policies, before the connection takes anything: --allow,
 * --deny, then a --max-per-source place (CONN_SOURCE in *flags). Returns
 * false when peer is refused, counted by reason and logged (log_refusal).
 */
static bool admissible(struct core *k, const union net_addr *peer, int lfd,
		       uint32_t *flags)
{
	const struct options *o = k->o;
	enum access_verdict v;
	uint8_t key[16];
	int err;

	v = o->access.n ? access_check(&o->access, peer) : ACCESS_OK;
	if (v != ACCESS_OK) {
		log_refusal(k, peer, lfd,
			    v == ACCESS_DENIED ? REFUSE_DENY
					       : REFUSE_NOT_ALLOWED);
		return false;
	}
	if (o->max_per_source == 0)
		return true;
	access_source_key(peer, key);
	err = access_source_take(&k->w->shared->sources, key,
				 o->max_per_source);
	if (err < 0) {
		log_refusal(k, peer, lfd,
			    err == -EUSERS ? REFUSE_PER_SOURCE
					   : REFUSE_SOURCE_TABLE);
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

/* Gives c the faults that apply to it; -ENOMEM when it cannot. */
static int fault_open(struct core *k, struct conn *c)
{
	struct fault_set *s = fault_acquire(k->faults);

	c->fault = fault_conn_new(s, fault_ordinal(k->faults), &c->peer,
				  fault_now_ns());
	fault_release(s);
	if (c->fault == NULL)
		return -ENOMEM;
	/* reset-peer's and timeout's time: core_due's from the start. */
	return wakeup_set(&k->wakeups, &c->fault->heap_pos, c,
			  fault_conn_next_ns(c->fault, c));
}

struct conn *core_admit(struct core *k, int fd, const union net_addr *peer,
			int lfd)
{
	union net_addr from;
	uint32_t flags = 0;
	struct conn *c;

	find_peer(k, fd, peer, &from);
	/* No byte is read from a refused peer: it is closed right here. */
	if (!admissible(k, &from, lfd, &flags))
		return drop(k, fd);
	c = take_slot(k, fd);
	if (c == NULL) {
		if (flags & CONN_SOURCE)
			give_source(k, &from);
		return drop(k, fd);
	}
	if (k->exhausted) {
		log_info("accepting again on fd %d", lfd);
		k->exhausted = false;
	}
	c->fd = fd;
	c->peer = from;
	c->flags |= flags;
	net_tune_conn(fd);
	c->born_ms = c->sent_ms = k->now_ms;
	deadline_add(&k->due, c, k->now_ms);
	counter_add(&k->w->stats.accepted, 1);
	if (k->faults && fault_open(k, c) < 0) {
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

/*
 * Adds what c moved since the last call to the worker's counters, so
 * that they grow with the work, not at close. One event never moves
 * 4 GiB, so the low 32 bits tell the difference.
 */
static void count_moved(struct core *k, struct conn *c)
{
	struct worker_stats *s = &k->w->stats;
	uint32_t in = (uint32_t)c->bytes_in, out = (uint32_t)c->bytes_out;
	uint32_t messages = (uint32_t)c->messages;

	if (in != c->counted_in)
		counter_add(&s->bytes_in, (uint32_t)(in - c->counted_in));
	if (out != c->counted_out)
		counter_add(&s->bytes_out, (uint32_t)(out - c->counted_out));
	if (messages != c->counted_messages)
		counter_add(&s->messages,
			    (uint32_t)(messages - c->counted_messages));
	c->counted_in = in;
	c->counted_out = out;
	c->counted_messages = messages;
}

enum close_reason core_settle(struct core *k, struct conn *c)
{
	bool queued = outq_bytes(&c->out) > 0;

	count_moved(k, c);
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
			deadline_linger(&k->due, c, k->now_ms);
		}
	}
	deadline_touch(&k->due, c, k->now_ms);
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

/* Appends c's entry to the memory queue; false if there is no room. */
static bool memq_push(struct core *k, struct conn *c)
{
	uint32_t cap = k->memq_cap ? k->memq_cap * 2 : 64, at;
	uint64_t *q;

	if (k->memq_n == k->memq_cap) {
		q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return false;
		for (uint32_t i = 0; i < k->memq_n; i++)
			q[i] = k->memq[(k->memq_head + i) % k->memq_cap];
		free(k->memq);
		k->memq = q;
		k->memq_cap = cap;
		k->memq_head = 0;
	}
	at = (k->memq_head + k->memq_n++) % k->memq_cap;
	k->memq[at] = (uint64_t)c->gen << 32 | c->slot;
	c->flags |= CONN_MEMQ;
	return true;
}

/*
 * Queues c to wait for memory, behind those already waiting. One entry
 * per connection: one that waits again before its entry came up keeps
 * that place, so a slow reader that waits, reads a little and waits
 * again cannot grow the queue without bound.
 */
static void mem_wait(struct core *k, struct conn *c)
{
	/* No room to queue: c tries again when its echoes go out. */
	if (!(c->flags & CONN_MEMQ) && !memq_push(k, c))
		return;
	c->flags |= CONN_MEMWAIT;
	k->nmemwait++;
	atomic_fetch_add_explicit(&k->budget->waiting, 1, memory_order_relaxed);
	counter_add(&k->w->stats.mem_waits, 1);
}

/* c waits no more; its place in the queue, if any, is skipped. */
static void mem_unwait(struct core *k, struct conn *c)
{
	if (!(c->flags & CONN_MEMWAIT))
		return;
	c->flags &= ~CONN_MEMWAIT;
	k->nmemwait--;
	atomic_fetch_sub_explicit(&k->budget->waiting, 1, memory_order_relaxed);
}

/*
 * What one read of a connection with nothing queued may bring: what is
 * left of the budget shared by every open connection, and only a small
 * read's worth while memory is tight. A backend that arms receives in
 * advance (io_uring) may see each of them filled before it knows whose
 * peer does not read, so the sum of what they can bring past the budget
 * stays within what was left of it.
 */
static size_t fair_share(const struct core *k)
{
	const struct budget *b = k->budget;
	unsigned int conns = atomic_load_explicit(&k->w->shared->conns,
						  memory_order_relaxed);
	size_t used = budget_used(b), left;

	if (b->limit == 0)
		return SIZE_MAX;
	if (budget_tight(b))
		return BUDGET_SMALL_READ;
	left = (b->limit - used) / (conns ? conns : 1);
	return left > BUDGET_SMALL_READ ? left : BUDGET_SMALL_READ;
}

size_t core_read_room(struct core *k, struct conn *c, size_t room)
{
	size_t n;

	if (room == 0)
		return 0;
	if (c->out.buf == NULL) {
		mem_unwait(k, c);
		n = fair_share(k);
		return room < n ? room : n;
	}
	/*
	 * Waiting, it reads again into the pages it holds as its peer takes
	 * echoes (a slow reader), since that costs the budget nothing; new
	 * pages are for core_due to give, to those before it first.
	 */
	if (c->flags & CONN_MEMWAIT) {
		n = outq_charged_room(&k->pool, &c->out, k->pool.size);
		if (n)
			mem_unwait(k, c);
		return n < room ? n : room;
	}
	n = outq_reserve(&k->pool, &c->out, k->pool.size, room);
	if (n == 0)
		mem_wait(k, c);
	return n;
}

/* The next connection that waited for memory and now has some. */
static struct conn *resumed(struct core *k)
{
	uint64_t e;
	struct conn *c;

	while (k->memq_n) {
		e = k->memq[k->memq_head];
		c = conn_table_find(&k->table, (uint32_t)e,
				    (uint32_t)(e >> 32));
		/* One whose queue emptied meanwhile reads freely: no charge. */
		if (c && (c->flags & CONN_MEMWAIT) && c->out.buf &&
		    outq_reserve(&k->pool, &c->out, k->pool.size,
				 outq_room(&c->out, k->o->max_pending)) == 0)
			return NULL; /* the first in line keeps its place */
		k->memq_head = (k->memq_head + 1) % k->memq_cap;
		k->memq_n--;
		if (c)
			c->flags &= ~CONN_MEMQ;
		if (c && (c->flags & CONN_MEMWAIT)) {
			mem_unwait(k, c);
			return c;
		}
	}
	return NULL;
}

static enum close_reason fault_step(struct core *k, struct conn *c,
				    uint64_t now_ns);

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
	*why = fault_step(k, c, now_ns);
	if (*why == CLOSE_NONE)
		*why = core_settle(k, c);
	return c;
}

struct conn *core_due(struct core *k, enum close_reason *why)
{
	struct conn *c = expired(k, why);

	if (c)
		return c;
	c = fault_woken(k, why);
	if (c)
		return c;
	*why = CLOSE_NONE;
	return resumed(k);
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

int core_timeout_ms(const struct core *k)
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
	if (next == UINT64_MAX)
		return fault_timeout_ms(k, -1);
	/* The coarse clock ticks every few ms: round up, never spin. */
	return fault_timeout_ms(
		k, next > k->now_ms ? (int)(next - k->now_ms) + 5 : 5);
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
	count_moved(k, c);
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
	mem_unwait(k, c);
	if (c->fault)
		wakeup_set(&k->wakeups, &c->fault->heap_pos, c, 0);
	c->flags |= CONN_CLOSING;
	if (core_count(k) == 0)
		k->trim_at = k->now_ms + CORE_TRIM_MS;
}

void core_free(struct core *k, struct conn *c)
{
	outq_release(&k->pool, &c->out);
	fault_conn_free(c->fault);
	c->fault = NULL;
	/* For epoll, close() also drops fd from the set: it is never dup'd. */
	close(c->fd);
	/*
	 * A refusal that gave the spare up can lose it for good: another
	 * worker may take its number before it is opened again. The number
	 * just freed brings it back.
	 */
	if (k->spare_fd < 0)
		k->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	give_place(k);
	if (c->flags & CONN_SOURCE)
		give_source(k, &c->peer);
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

/* ----------------------------------------------- connections with faults */

/* How many bytes c may read now, in pages charged for it; 0: none. */
static size_t fault_room(struct core *k, struct conn *c)
{
	size_t room = fault_conn_read_room(
		c->fault, outq_room(&c->out, k->o->max_pending));

	if (room == 0)
		return 0;
	if (c->out.buf == NULL) {
		/* Everything read is queued here: charged before it is. */
		room = core_read_room(k, c, room);
		return room ? outq_reserve(&k->pool, &c->out, k->o->max_pending,
					   room)
			    : 0;
	}
	return core_read_room(k, c, room);
}

/*
 * One recv for c into its queue, or dropped (timeout's silence, input
 * after limit-data's FIN: MSG_TRUNC discards in the kernel). Returns the
 * bytes read, 0 at end of input, -EAGAIN when there is nothing to read
 * or no room, or another -errno.
 */
static ssize_t fault_recv(struct core *k, struct conn *c, uint64_t now_ns)
{
	struct fault_conn *f = c->fault;
	size_t room, echo;
	ssize_t n;
	char *buf;

	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR)) {
		n = recv(c->fd, NULL, 65536, MSG_TRUNC | MSG_DONTWAIT);
		if (n > 0)
			c->bytes_in += (uint64_t)n;
		return n < 0 ? -errno : n;
	}
	room = fault_room(k, c);
	buf = outq_tail(&k->pool, &c->out, k->o->max_pending, &echo);
	if (echo < room)
		room = echo;
	if (room == 0)
		return -EAGAIN;
	n = recv(c->fd, buf, room, MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	echo = conn_consume(k->o, c, buf, (size_t)n);
	fault_conn_took(f, buf, (size_t)n, echo, now_ns);
	outq_tail_filled(&c->out, echo);
	return n;
}

/* Reads while c's socket has bytes and c has room, a few times at most. */
static int fault_read(struct core *k, struct conn *c, uint64_t now_ns)
{
	ssize_t n;

	for (int i = 0; i < CORE_FAULT_READS; i++) {
		if ((c->flags & CONN_PEER_EOF) || c->fault->eof_ns)
			return 0;
		n = fault_recv(k, c, now_ns);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;
		if (n < 0)
			return (int)n;
		/* slow-close holds the peer's FIN back for its delay. */
		if (n == 0 && !fault_conn_eof(c->fault, now_ns))
			c->flags |= CONN_PEER_EOF;
		if (n == 0)
			return 0;
	}
	return 0;
}

/*
 * limit-data's FIN: ours now; what waits is dropped, what comes is
 * discarded, and the peer's close is awaited on the linger list, as after
 * the -n'th echo.
 */
static void fault_shut(struct core *k, struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->flags |= CONN_SHUT_WR;
	outq_release(&k->pool, &c->out);
	deadline_linger(&k->due, c, k->now_ms);
}

/*
 * Sends what of c's queue may go at now_ns, ends c when a fault says so,
 * and sets its next wake-up. Returns why c must close, or CLOSE_NONE.
 */
static enum close_reason fault_step(struct core *k, struct conn *c,
				    uint64_t now_ns)
{
	struct fault_conn *f = c->fault;
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	uint64_t at;
	int err;

	err = fault_conn_send(f, &k->pool, c, now_ns, &f->blocked);
	if (err < 0)
		return close_reason_of(err);
	switch (fault_conn_end(f, c, now_ns)) {
	case FAULT_END_RST:
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		return CLOSE_FAULT;
	case FAULT_END_FIN:
		return CLOSE_FAULT;
	case FAULT_END_SHUT:
		fault_shut(k, c);
		break;
	case FAULT_GO_ON:
		break;
	}
	if (f->eof_ns && now_ns >= f->eof_ns) {
		f->eof_ns = 0;
		c->flags |= CONN_PEER_EOF;
	}
	at = fault_conn_next_ns(f, c);
	/* A time already past is a slip of ours: a millisecond, not a spin. */
	if (at && at <= now_ns)
		at = now_ns + 1000000;
	if (wakeup_set(&k->wakeups, &f->heap_pos, c, at) < 0)
		return CLOSE_MEMORY;
	return CLOSE_NONE;
}

/* A change of the set reaches c's live faults at its next echo. */
static void fault_refresh(struct core *k, struct conn *c)
{
	struct fault_set *s;

	if (fault_version(k->faults) == c->fault->version)
		return;
	s = fault_acquire(k->faults);
	fault_conn_refresh(c->fault, s, &c->peer);
	fault_release(s);
}

enum close_reason core_fault_io(struct core *k, struct conn *c, bool readable,
				bool writable)
{
	uint64_t now_ns = fault_now_ns();
	int err = 0;

	(void)writable; /* every call sends what may go */
	fault_refresh(k, c);
	if (readable)
		err = fault_read(k, c, now_ns);
	if (err < 0) {
		log_debug("fd %d: %s", c->fd, strerror(-err));
		return close_reason_of(err);
	}
	return fault_step(k, c, now_ns);
}

unsigned int core_fault_wants(const struct core *k, const struct conn *c)
{
	const struct fault_conn *f = c->fault;
	unsigned int want = 0;

	if (f->blocked && outq_bytes(&c->out))
		want |= CORE_WANT_WRITE;
	if (c->flags & (CONN_PEER_EOF | CONN_MEMWAIT | CONN_CLOSING) ||
	    f->eof_ns)
		return want;
	if (fault_conn_silent(f) || (c->flags & CONN_SHUT_WR) ||
	    fault_conn_read_room(f, outq_room(&c->out, k->o->max_pending)))
		want |= CORE_WANT_READ;
	return want;
}
