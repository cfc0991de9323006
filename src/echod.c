// SPDX-License-Identifier: BSD-2-Clause
/*
 * echod.c - main(): parse options, open the listening sockets, start the
 * workers (and the --metrics and --control threads), wait for a signal
 * (printing the table on SIGUSR1, a log line on SIGHUP), let open connections
 * finish
 * (--grace), stop them, and choose the exit status: 0 after
 * SIGINT/SIGTERM, 1 on a run-time error, 2 on a usage error.
 */
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "backend.h"
#include "budget.h"
#include "control.h"
#include "core.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "notify.h"
#include "options.h"
#include "privs.h"
#include "report.h"
#include "tls.h"
#include "worker.h"

/* A usage error: one line naming it, where to look, and exit 2 (GNU). */
static void usage_error(const char *msg)
{
	fprintf(stderr, "echod: %s\nTry 'echod --help'.\n", msg);
	exit(2);
}

/* Each backend, available or why not; the one auto takes says so, and why. */
static int list_backends(void)
{
	const struct backend_ops *b;
	bool chosen = false;
	char why[256];

	for (int i = 0; (b = backend_table[i]); i++) {
		if (backend_probe(b, why, sizeof(why)) < 0) {
			printf("%s unavailable: %s\n", b->name, why);
			continue;
		}
		if (chosen) {
			printf("%s available\n", b->name);
			continue;
		}
		chosen = true;
		printf("%s available, auto's choice: %s\n", b->name,
		       b->preferred_for ? b->preferred_for
					: "the one backend that can run here");
	}
	return 0;
}

/* Exits 2 if a is of the family -4 or -6 excludes. */
static void check_family(const struct options *o, const union net_addr *a,
			 const char *text)
{
	char msg[128];
	int fam = a->sa.sa_family == AF_INET ? 4 : 6;

	if (o->family && o->family != fam) {
		snprintf(msg, sizeof(msg), "bind %s: not IPv%d (-%d)", text,
			 o->family, o->family);
		usage_error(msg);
	}
}

/*
 * The addresses to listen on: each -b, or one wildcard (dual-stack [::]
 * where the system has IPv6; 0.0.0.0 with -4; IPv6-only [::] with -6).
 * An IPv6 address listed beside an IPv4 one, or any with -6, is made
 * IPv6-only so that the two do not collide on the port.
 */
static int resolve_binds(const struct options *o, union net_addr *addrs,
			 int *flags)
{
	int v6 = o->family == 4 ? -EAFNOSUPPORT : net_have_ipv6();
	bool any_v4 = false;
	char msg[128];

	/* -6 where the host has no IPv6 is an error, never IPv4 instead. */
	if (o->family == 6 && v6 < 0) {
		log_error("-6: no IPv6 here: %s", strerror(-v6));
		exit(1);
	}
	if (o->nbinds == 0) {
		net_wildcard(&addrs[0], v6 == 0, o->port);
		flags[0] = o->family == 6 ? NET_V6ONLY : 0;
		return 1;
	}
	for (int i = 0; i < o->nbinds; i++) {
		if (net_parse_addr(o->binds[i], o->port, &addrs[i]) < 0) {
			snprintf(msg, sizeof(msg),
				 "bind %s: not an IPv4 or IPv6 address",
				 o->binds[i]);
			usage_error(msg);
		}
		check_family(o, &addrs[i], o->binds[i]);
		any_v4 |= addrs[i].sa.sa_family == AF_INET;
	}
	for (int i = 0; i < o->nbinds; i++)
		flags[i] = addrs[i].sa.sa_family == AF_INET6 &&
					   (any_v4 || o->family == 6)
				   ? NET_V6ONLY
				   : 0;
	return o->nbinds;
}

/* No Nagle, urgent bytes in line, --send-timeout for what the kernel holds. */
static void tune_stream(const struct options *o, int fd)
{
	int err = net_tune_stream(fd, o->send_timeout * 1000u);

	if (err < 0)
		log_warn(
			"fd %d: TCP_NODELAY, SO_OOBINLINE or TCP_USER_TIMEOUT: %s",
			fd, strerror(-err));
}

/* What a socket echod listens on serves: its word in the log lines. */
enum listen_kind {
	LISTEN_TCP,
	LISTEN_UDP,
	LISTEN_TLS, /* TCP, for --tls-port */
};

enum {
	OPEN_TRIES = 8, /* --port 0 on several addresses: see open_listeners */
};

static const char *const listen_words[] = {"tcp", "udp", "tls"};

/*
 * Opens one socket of the given kind on addrs[i]. The first socket on an
 * address claims the port; with --port 0 every later socket uses the
 * port the kernel chose for the first. Returns the socket, or -errno
 * with the failed address's words in what.
 */
static int open_one(const struct options *o, union net_addr *addrs, int naddrs,
		    int i, int flags, enum listen_kind kind, char *what,
		    size_t len)
{
	bool udp = kind == LISTEN_UDP;
	union net_addr bound;
	char text[NET_ADDR_TEXT];
	int fd;

	if (udp)
		fd = net_bind_udp(&addrs[i], flags, &bound);
	else
		fd = net_listen_tcp(&addrs[i], o->backlog, flags, &bound);
	if (fd < 0) {
		snprintf(what, len, "%s%s",
			 kind == LISTEN_TCP   ? ""
			 : kind == LISTEN_UDP ? "udp "
					      : "tls ",
			 net_addr_text(&addrs[i].sa, text, sizeof(text)));
		return fd;
	}
	if (!udp)
		tune_stream(o, fd);
	if (net_addr_port(&addrs[i]) == 0)
		for (int j = 0; j < naddrs; j++)
			net_set_port(&addrs[j], net_addr_port(&bound));
	return fd;
}

/* The listening line of a socket echod opened or was given. */
static unsigned int announce(int fd, enum listen_kind kind, const char *from)
{
	union net_addr a;
	socklen_t len = sizeof(a);
	char text[NET_ADDR_TEXT], fields[256] = "";

	if (getsockname(fd, &a.sa, &len) < 0)
		a.sa.sa_family = AF_UNSPEC;
	net_addr_text(&a.sa, text, sizeof(text));
	if (log_json_on())
		snprintf(
			fields, sizeof(fields),
			"\"event\":\"listen\",\"proto\":\"%s\",\"address\":\"%s\",\"fd\":%d,\"serves\":\"%s\"",
			listen_words[kind], text, fd, activate_family(fd));
	log_write_fields(LOG_INFO, fields, "listening on %s %s (fd %d, %s)%s%s",
			 listen_words[kind], text, fd, activate_family(fd),
			 from ? " from " : "", from ? from : "");
	return a.sa.sa_family == AF_UNSPEC ? 0 : net_addr_port(&a);
}

/*
 * Each worker's sockets: per address the plain TCP and UDP ones, then,
 * with --tls-port, a TLS listener per address (tls_addrs: the same
 * addresses on the TLS port; NULL without TLS), marked in listen_tls.
 */
/* Closes what open_all opened, for another try. */
static void close_all(const struct options *o, struct worker *workers)
{
	for (int t = 0; t < o->threads; t++) {
		struct worker *w = &workers[t];

		while (w->nlisten > 0) {
			close(w->listen_fds[--w->nlisten]);
			w->listen_tls[w->nlisten] = false;
		}
		while (w->nudp > 0)
			close(w->udp_fds[--w->nudp]);
	}
}

/* One socket into *fd; false, with *err and what set, when it failed. */
static bool open_into(const struct options *o, union net_addr *addrs,
		      int naddrs, int i, int flags, enum listen_kind kind,
		      int *fd, int *err, char *what)
{
	*fd = open_one(o, addrs, naddrs, i, flags, kind, what,
		       NET_ADDR_TEXT + 8);
	*err = *fd < 0 ? *fd : 0;
	return *fd >= 0;
}

/* Every worker's sockets, once. Returns 0 or the first -errno. */
static int open_all(const struct options *o, struct worker *workers,
		    union net_addr *addrs, union net_addr *tls_addrs,
		    const int *flags, int naddrs, char *what)
{
	int err = 0, f;

	for (int t = 0; t < o->threads && err == 0; t++) {
		struct worker *w = &workers[t];

		for (int i = 0; i < naddrs && err == 0; i++) {
			f = flags[i] | (t ? NET_REUSEPORT : 0);
			if (o->tcp &&
			    open_into(o, addrs, naddrs, i, f, LISTEN_TCP,
				      &w->listen_fds[w->nlisten], &err, what))
				w->nlisten++;
			if (o->udp && err == 0 &&
			    open_into(o, addrs, naddrs, i, f, LISTEN_UDP,
				      &w->udp_fds[w->nudp], &err, what))
				w->nudp++;
		}
		for (int i = 0; tls_addrs && i < naddrs && err == 0; i++) {
			f = flags[i] | (t ? NET_REUSEPORT : 0);
			if (open_into(o, tls_addrs, naddrs, i, f, LISTEN_TLS,
				      &w->listen_fds[w->nlisten], &err, what))
				w->listen_tls[w->nlisten++] = true;
		}
		w->port = net_addr_port(&addrs[0]);
	}
	return err;
}

/*
 * Opens every worker's sockets, or exits with one line. With --port 0
 * (or --tls-port 0) and several addresses, the port the kernel chose on
 * the first may be taken on another (a client's ephemeral port there):
 * then everything is closed and tried again on a new port, a few times.
 */
static void open_listeners(const struct options *o, struct worker *workers,
			   union net_addr *addrs, union net_addr *tls_addrs,
			   const int *flags, int naddrs)
{
	bool chosen = net_addr_port(&addrs[0]) == 0 ||
		      (tls_addrs && net_addr_port(&tls_addrs[0]) == 0);
	char what[NET_ADDR_TEXT + 8];
	int err;

	for (int tries = 1;; tries++) {
		err = open_all(o, workers, addrs, tls_addrs, flags, naddrs,
			       what);
		if (err == 0)
			return;
		if (err != -EADDRINUSE || !chosen || tries == OPEN_TRIES)
			break;
		close_all(o, workers);
		for (int i = 0; i < naddrs; i++) {
			if (o->port == 0)
				net_set_port(&addrs[i], 0);
			if (tls_addrs && o->tls_port == 0)
				net_set_port(&tls_addrs[i], 0);
		}
	}
	log_error("bind %s: %s", what, strerror(-err));
	exit(1);
}

/*
 * The start-up lines, once every socket is open and every check passed,
 * so that a start that fails prints its one line and nothing else: the
 * backend, the listeners echod opened (given ones were said as taken),
 * the metrics listener.
 */
static void announce_all(const struct options *o, const struct worker *w,
			 const struct backend_ops *backend, const char *note,
			 bool given, int metrics_fd)
{
	union net_addr a;
	socklen_t len = sizeof(a);
	char text[NET_ADDR_TEXT];

	log_info("backend %s%s%s%s", backend->name, note[0] ? " (" : "", note,
		 note[0] ? ")" : "");
	for (int t = 0; t < o->threads && !given; t++) {
		for (int i = 0; i < w[t].nlisten; i++)
			announce(w[t].listen_fds[i],
				 w[t].listen_tls[i] ? LISTEN_TLS : LISTEN_TCP,
				 NULL);
		for (int i = 0; i < w[t].nudp; i++)
			announce(w[t].udp_fds[i], LISTEN_UDP, NULL);
	}
	if (metrics_fd >= 0 && getsockname(metrics_fd, &a.sa, &len) == 0)
		log_info("metrics on http %s (fd %d)",
			 net_addr_text(&a.sa, text, sizeof(text)), metrics_fd);
}

/*
 * Blocks the signals main() waits for in every thread (the workers
 * inherit the mask), so they arrive here, on a signalfd, and nowhere
 * else. A peer that closes early must not kill us with SIGPIPE.
 */
static void setup_signals(sigset_t *set)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/*
 * Raises the soft descriptor limit to the hard one: an echo endpoint is
 * expected to hold thousands of clients, and 1024 is a relic.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit RLIMIT_NOFILE: %s",
				 strerror(errno));
	}
}

/*
 * Stops every worker, then closes each listening socket exactly once. No
 * descriptor is closed while any worker runs: a number freed here could
 * be handed at once to a connection another worker accepts, and a second
 * close would then end that connection instead of failing with EBADF.
 * Given sockets are shared by every worker: worker 0's are all of them.
 */
static void stop_workers(const struct options *o, struct worker *workers,
			 bool given)
{
	for (int i = 0; i < o->threads; i++)
		worker_stop(&workers[i]);
	for (int i = 0; i < (given ? 1 : o->threads); i++) {
		for (int j = 0; j < workers[i].nlisten; j++)
			close(workers[i].listen_fds[j]);
		for (int j = 0; j < workers[i].nudp; j++)
			close(workers[i].udp_fds[j]);
	}
}

/* The UDP counters, summed over workers, on one line. */
static void report_udp(const struct worker *workers, int n)
{
	struct udp_stats sum = {0};

	for (int i = 0; i < n; i++) {
		const struct udp_stats *u = &workers[i].udp_stats;

		sum.received += u->received;
		sum.echoed += u->echoed;
		sum.bytes += u->bytes;
		for (int v = 0; v < UDP_NVERDICTS; v++)
			sum.dropped[v] += u->dropped[v];
	}
	log_info(
		"udp: %llu datagrams received, %llu echoed, %llu bytes out; dropped: %llu loop-prone port, %llu non-unicast source, %llu over rate, %llu truncated or too large, %llu send failed, %llu denied, %llu lost to faults",
		(unsigned long long)sum.received,
		(unsigned long long)sum.echoed, (unsigned long long)sum.bytes,
		(unsigned long long)sum.dropped[UDP_DROP_PORT],
		(unsigned long long)sum.dropped[UDP_DROP_SOURCE],
		(unsigned long long)sum.dropped[UDP_DROP_RATE],
		(unsigned long long)sum.dropped[UDP_DROP_SIZE],
		(unsigned long long)sum.dropped[UDP_DROP_SEND],
		(unsigned long long)sum.dropped[UDP_DROP_ACCESS],
		(unsigned long long)sum.dropped[UDP_DROP_FAULT]);
}

/*
 * The exit summary: every counter the workers keep, summed, one line for
 * TCP and one for UDP. Workers have been joined, so their stats are final.
 */
static void report(const struct options *o, const struct worker *workers)
{
	struct worker_stats sum = {0};
	uint64_t refused, denied, over_source;

	for (int i = 0; i < o->threads; i++) {
		const struct worker_stats *s = &workers[i].stats;

		sum.accepted += s->accepted;
		for (int r = 0; r < REFUSE_NREASONS; r++)
			sum.refused_by[r] += s->refused_by[r];
		sum.closed += s->closed;
		sum.messages += s->messages;
		sum.bytes_in += s->bytes_in;
		sum.bytes_out += s->bytes_out;
	}
	denied = sum.refused_by[REFUSE_DENY] +
		 sum.refused_by[REFUSE_NOT_ALLOWED];
	over_source = sum.refused_by[REFUSE_PER_SOURCE] +
		      sum.refused_by[REFUSE_SOURCE_TABLE];
	refused = worker_refused(&sum) - denied - over_source;
	if (o->tcp)
		log_info(
			"stopped: %llu connections, %llu refused, %llu denied, %llu over per-source limit, %llu closed, %llu messages, %llu bytes in, %llu bytes out",
			(unsigned long long)sum.accepted,
			(unsigned long long)refused, (unsigned long long)denied,
			(unsigned long long)over_source,
			(unsigned long long)sum.closed,
			(unsigned long long)sum.messages,
			(unsigned long long)sum.bytes_in,
			(unsigned long long)sum.bytes_out);
	if (o->udp)
		report_udp(workers, o->threads);
}

/* The backend --backend names, logged with why; exits 1 if none can run. */
static const struct backend_ops *choose_backend(const struct options *o,
						char *note, size_t len)
{
	const struct backend_ops *backend;
	char err[256];

	backend = backend_select(o->backend, err, sizeof(err), note, len);
	if (backend == NULL) {
		log_error("%s", err);
		exit(1);
	}
	return backend;
}

/* Starts every worker's thread; exits 1 if one cannot start. */
static void start_workers(const struct options *o, struct worker *workers,
			  const struct backend_ops *backend,
			  struct worker_shared *shared)
{
	int err;

	log_verbose(
		"%d worker%s, framing %s, max pending %zu bytes, memory %zu bytes",
		o->threads, o->threads > 1 ? "s" : "",
		options_framing_name(o->framing), o->max_pending, o->memory);
	budget_init(&shared->memory, o->memory);
	for (int i = 0; i < o->threads; i++) {
		workers[i].id = i;
		workers[i].opts = o;
		workers[i].backend = backend;
		workers[i].shared = shared;
		err = worker_start(&workers[i]);
		if (err < 0) {
			log_error("start worker %d: %s", i, strerror(-err));
			exit(1);
		}
	}
}

/*
 * Prints the live table (report.h) to stderr in one write, so that no
 * log line lands inside it; rows only when asked for.
 */
static void print_table(struct worker *workers, int n, bool rows)
{
	struct report r;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&text, &len);
	if (f == NULL)
		return;
	if (report_collect(&r, workers, n, rows) < 0)
		log_warn("table: %s", strerror(ENOMEM));
	if (log_json_on())
		report_log_json(f, &r);
	else
		report_table(f, &r);
	report_free(&r);
	fclose(f);
	if (write(STDERR_FILENO, text, len) < 0)
		log_debug("table: %s", strerror(errno));
	free(text);
}

/* A timerfd firing every s seconds (--stats-interval), or -1 for none. */
static int interval_timer(unsigned int s)
{
	struct itimerspec its = {.it_interval.tv_sec = s, .it_value.tv_sec = s};
	int fd;

	if (s == 0)
		return -1;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		log_warn("stats-interval: timerfd: %s", strerror(errno));
	return fd;
}

/* The --metrics address, checked before anything starts; exits 2 if bad. */
static void parse_metrics(const struct options *o, union net_addr *a)
{
	char msg[128];

	if (o->metrics && metrics_parse_addr(o->metrics, a) < 0) {
		snprintf(msg, sizeof(msg),
			 "metrics %s: expected ADDRESS:PORT, as 127.0.0.1:9100",
			 o->metrics);
		usage_error(msg);
	}
}

/*
 * Opens the --metrics listener before any echo socket, so that a port in
 * use fails the start before anything is announced; exits 1 if it
 * cannot listen. Its thread starts once the workers run.
 */
static struct metrics *open_metrics(const struct options *o,
				    const union net_addr *a, int *fd)
{
	union net_addr bound;
	struct metrics *m;
	int err;

	*fd = -1;
	if (o->metrics == NULL)
		return NULL;
	m = metrics_open(a, &bound, fd, &err);
	if (m == NULL) {
		log_error("metrics %s: %s", o->metrics, strerror(-err));
		exit(1);
	}
	return m;
}

static void start_metrics(struct metrics *m, const struct options *o,
			  struct worker *workers,
			  const struct backend_ops *backend,
			  struct fault_registry *faults)
{
	int err;

	if (m == NULL)
		return;
	err = metrics_start(m, workers, o->threads, backend->name, faults);
	if (err < 0) {
		log_error("metrics thread: %s", strerror(-err));
		exit(1);
	}
}

/* The --control address, checked before anything starts; exits 2 if bad. */
static void parse_control(const struct options *o)
{
	char msg[160];

	if (o->control && control_check_addr(o->control) < 0) {
		snprintf(
			msg, sizeof(msg),
			"control %s: expected ADDRESS:PORT or unix:PATH, as 127.0.0.1:9101",
			o->control);
		usage_error(msg);
	}
}

/*
 * The fault registry, when --fault or --control asks for one (NULL
 * otherwise: connections then skip the fault path at no cost), holding
 * the --fault set. Exits 1 if it cannot be made.
 */
static struct fault_registry *setup_faults(const struct options *o)
{
	struct fault f[OPTIONS_MAX_FAULTS];
	struct fault_registry *r;
	char err[FAULT_SPEC_MAX + 128];
	int e = -ENOMEM;

	if (o->nfaults == 0 && o->control == NULL)
		return NULL;
	/* Parsed again (options_parse only checked): seeds drawn here. */
	for (int i = 0; i < o->nfaults; i++)
		if (fault_parse(o->faults[i], &f[i], err, sizeof(err)) < 0)
			usage_error(err);
	r = fault_registry_new();
	if (r)
		e = fault_replace(r, f, (unsigned int)o->nfaults, err,
				  sizeof(err));
	if (e == -EEXIST)
		usage_error(err);
	if (e < 0) {
		log_error("fault registry: %s", strerror(-e));
		exit(1);
	}
	fault_registry_enable(r);
	return r;
}

/* A start-up line per fault whose seed was drawn, to repeat the run. */
static void announce_seeds(struct fault_registry *r)
{
	struct fault_set *s;

	if (r == NULL)
		return;
	s = fault_acquire(r);
	for (unsigned int i = 0; i < s->n; i++)
		if (!s->f[i].seeded)
			log_info("fault %s: seed %llu (use seed= to repeat)",
				 s->f[i].name,
				 (unsigned long long)s->f[i].seed);
	fault_release(s);
}

/*
 * Opens the --control listener before any echo socket, as --metrics's;
 * exits 1 if it cannot listen. Its thread starts once the workers run.
 */
static struct control *open_control(const struct options *o, int *fd)
{
	struct control *c;
	int err;

	*fd = -1;
	if (o->control == NULL)
		return NULL;
	c = control_open(o->control, fd, &err);
	if (c == NULL) {
		log_error("bind control %s: %s", o->control, strerror(-err));
		exit(1);
	}
	return c;
}

/* The control listener's start-up line, in the metrics line's words. */
static void announce_control(int fd)
{
	union net_addr a;
	struct sockaddr_un sun = {0};
	socklen_t len = sizeof(a), ulen = sizeof(sun);
	char text[NET_ADDR_TEXT];

	if (fd < 0)
		return;
	if (getsockname(fd, (struct sockaddr *)&sun, &ulen) == 0 &&
	    sun.sun_family == AF_UNIX)
		log_info("control on unix %s (fd %d)", sun.sun_path, fd);
	else if (getsockname(fd, &a.sa, &len) == 0)
		log_info("control on tcp %s (fd %d)",
			 net_addr_text(&a.sa, text, sizeof(text)), fd);
}

static void start_control(struct control *c, struct fault_registry *r)
{
	int err;

	if (c == NULL)
		return;
	err = control_start(c, r);
	if (err < 0) {
		log_error("control thread: %s", strerror(-err));
		exit(1);
	}
}

/* How serving ended: wait_for_end's answers. */
enum {
	END_SIGNAL = 0, /* SIGINT or SIGTERM: exit 0 after the grace */
	END_FAILED = 1, /* a worker failed: exit 1 */
	END_SERVED = 2, /* the one connection, or inetd's datagrams: exit 0 */
	END_NONE = -1, /* nothing ended: wait_event's time is up */
};

enum {
	/* How often main looks at the open count and the one connection. */
	WAIT_POLL_MS = 50,
};

/* Tells systemd (when it listens) a state, "KEY=value" lines. */
static void notify_status(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void notify_status(const char *fmt, ...)
{
	char state[256];
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	err = notify_send(state);
	if (err < 0)
		log_warn("NOTIFY_SOCKET: %s", strerror(-err));
}

/*
 * What main() waits on while echod serves: signals (on a signalfd), a
 * worker's failure (on an eventfd no other process can write to), and
 * the --stats-interval timer.
 */
struct waiter {
	struct pollfd p[3];
	const struct options *o;
	struct worker *workers;
	struct tls_server *tls; /* reloaded at SIGHUP; NULL without TLS */
};

/*
 * Returns 0, or -1 after logging why main() cannot wait for signals. The
 * workers (for the table) are set once they are started.
 */
static int waiter_open(struct waiter *wt, const struct options *o,
		       const sigset_t *set, int fail_fd)
{
	wt->o = o;
	wt->workers = NULL;
	wt->tls = NULL;
	wt->p[0].fd = signalfd(-1, set, SFD_CLOEXEC);
	wt->p[1].fd = fail_fd;
	wt->p[2].fd = interval_timer(o->stats_interval);
	for (int i = 0; i < 3; i++)
		wt->p[i].events = POLLIN;
	if (fail_fd >= 0 && wt->p[0].fd >= 0)
		return 0;
	log_error("%s: %s", fail_fd < 0 ? "eventfd" : "signalfd",
		  strerror(errno));
	return -1;
}

static void waiter_close(struct waiter *wt)
{
	if (wt->p[0].fd >= 0)
		close(wt->p[0].fd);
	if (wt->p[2].fd >= 0)
		close(wt->p[2].fd);
}

/*
 * SIGHUP with --tls-port: the certificate and key are read again for
 * the connections to come; a pair that does not load leaves the one in
 * use serving, so that a botched renewal does not take TLS down.
 */
static void reload_tls(struct tls_server *tls)
{
	char err[512];

	if (tls_server_reload(tls, err, sizeof(err)) < 0)
		log_error("%s; keeping the certificate in use", err);
	else
		log_info("tls: certificate reloaded");
}

/*
 * A signal main() took: SIGINT or SIGTERM end serving (END_SIGNAL, with
 * the signal in *sig); SIGUSR1 prints the table and SIGHUP reloads the
 * TLS certificate (or, without TLS, gets a log line), and serving goes
 * on (END_NONE).
 */
static int take_signal(struct waiter *wt, int *sig)
{
	struct signalfd_siginfo si;

	if (read(wt->p[0].fd, &si, sizeof(si)) != sizeof(si))
		return END_NONE;
	*sig = (int)si.ssi_signo;
	if (*sig == SIGINT || *sig == SIGTERM)
		return END_SIGNAL;
	if (*sig == SIGUSR1)
		print_table(wt->workers, wt->o->threads, true);
	else if (wt->tls)
		reload_tls(wt->tls);
	else
		log_info("SIG%s: nothing to reload, still serving",
			 sigabbrev_np(*sig));
	return END_NONE;
}

/*
 * Waits up to timeout_ms (-1: for ever) for SIGINT or SIGTERM
 * (END_SIGNAL, the signal in *sig) or a worker's failure (END_FAILED);
 * meanwhile answers SIGUSR1, SIGHUP and the --stats-interval timer.
 * Returns END_NONE when the time is up.
 */
static int wait_event(struct waiter *wt, int timeout_ms, int *sig)
{
	uint64_t end =
		core_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	uint64_t ticks;
	int left = timeout_ms, n;

	for (;;) {
		n = poll(wt->p, 3, left);
		if (n > 0 && wt->p[1].revents)
			return END_FAILED;
		if (n > 0 && wt->p[2].revents &&
		    read(wt->p[2].fd, &ticks, sizeof(ticks)) > 0)
			print_table(wt->workers, wt->o->threads,
				    !wt->o->stats_totals_only);
		if (n > 0 && (wt->p[0].revents & POLLIN) &&
		    take_signal(wt, sig) == END_SIGNAL)
			return END_SIGNAL;
		if (timeout_ms < 0)
			continue;
		left = core_now_ms() < end ? (int)(end - core_now_ms()) : 0;
		if (left == 0)
			return END_NONE;
	}
}

/*
 * SIGTERM's grace: every worker stops accepting and serves what is open
 * until the peers have closed, --grace seconds have passed, or a second
 * signal comes. Returns the exit status (1 if a worker failed). Given
 * listeners are not shut: systemd holds them too, and queues clients
 * for the next echod.
 */
static int drain(const struct options *o, struct worker *workers,
		 struct worker_shared *shared, struct waiter *wt, int sig,
		 bool given)
{
	uint64_t end = core_now_ms() + o->grace * 1000ULL;
	unsigned int open;
	int again;

	/*
	 * shutdown, not close (see stop_workers): a shut listener refuses
	 * clients at once, where one nobody accepts from would leave them
	 * hanging in its backlog.
	 */
	atomic_store(&shared->draining, true);
	for (int i = 0; i < o->threads; i++) {
		worker_ask(&workers[i], WORKER_DRAIN);
		for (int j = 0; j < workers[i].nlisten && !given; j++)
			shutdown(workers[i].listen_fds[j], SHUT_RD);
	}
	open = atomic_load(&shared->conns);
	log_info("SIG%s: no new connections; %u open get up to %u s",
		 sigabbrev_np(sig), open, o->grace);
	notify_status("STOPPING=1\nSTATUS=stopping: %u connections open", open);
	while (core_now_ms() < end) {
		if (atomic_load(&shared->conns) == 0)
			return 0;
		switch (wait_event(wt, WAIT_POLL_MS, &again)) {
		case END_FAILED:
			return 1;
		case END_SIGNAL:
			log_info("SIG%s again: stopping now",
				 sigabbrev_np(again));
			return 0;
		}
	}
	open = atomic_load(&shared->conns);
	if (open)
		log_info("grace over: closing %u connections", open);
	return 0;
}

/*
 * Waits for a signal that ends serving (0, or 1 for a worker's failure),
 * or, with one connection to serve (--inetd, Accept=yes), for its end,
 * or, serving inetd's datagram socket, for --idle-timeout seconds
 * without a datagram (both END_SERVED).
 */
static int wait_for_end(const struct options *o, struct worker_one *one,
			struct waiter *wt, int *sig)
{
	uint64_t start = core_now_ms(), last;
	int status;

	if (!one->on)
		return wait_event(wt, -1, sig);
	for (;;) {
		status = wait_event(wt, WAIT_POLL_MS, sig);
		if (status != END_NONE)
			return status;
		if (atomic_load(&one->over)) {
			log_info("the connection is over");
			return END_SERVED;
		}
		last = atomic_load(&one->last_datagram_ms);
		if (last < start)
			last = start;
		if (o->udp && o->idle_timeout &&
		    core_now_ms() - last >= o->idle_timeout * 1000ULL) {
			log_info("no datagram for %u s", o->idle_timeout);
			return END_SERVED;
		}
	}
}

/*
 * --inetd, before the first log line: inetd gives the socket as standard
 * output and error too (as systemd does with StandardError=socket), and
 * log lines must not reach the client. When standard error is the
 * socket on standard input, or any TCP or UDP socket, it becomes
 * /dev/null: logs go nowhere then (inetd keeps no log of ours; under
 * systemd, StandardError=journal keeps them). A journal stream (an
 * AF_UNIX socket of its own) is left as it is.
 */
static void spare_the_client(void)
{
	struct stat in, err;
	int domain = AF_UNSPEC, fd;
	socklen_t len = sizeof(domain);

	if (fstat(STDERR_FILENO, &err) < 0)
		return;
	if (S_ISSOCK(err.st_mode))
		getsockopt(STDERR_FILENO, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	if (domain != AF_INET && domain != AF_INET6 &&
	    (fstat(STDIN_FILENO, &in) < 0 || in.st_dev != err.st_dev ||
	     in.st_ino != err.st_ino))
		return;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

/*
 * Sockets given by systemd (socket activation) or inetd (--inetd),
 * shared by every worker; -p and -b do not apply. One connection, or
 * inetd's datagram socket, is served by one worker. Returns false when
 * echod is to open its own; exits 1 on a socket it cannot serve.
 */
static bool take_given(struct options *o, struct worker *workers,
		       struct worker_one *one)
{
	const char *from = o->inetd ? "inetd" : "systemd";
	unsigned int port = 0;
	struct activation a;
	char err[256];
	int r;

	r = o->inetd ? activate_inetd(&a, err, sizeof(err))
		     : activate_systemd(&a, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		exit(1);
	}
	if (r == 0 && !o->inetd)
		return false;
	/* Which given socket would be TLS cannot be told: refused. */
	if (o->tls_port >= 0) {
		log_error("tls-port: not supported with sockets given by %s",
			  from);
		exit(1);
	}
	one->on = a.conn >= 0 || o->inetd;
	one->fd = a.conn;
	if (one->on)
		o->threads = 1;
	o->tcp = a.nstream > 0 || a.conn >= 0;
	o->udp = a.ndgram > 0;
	for (int i = 0; i < a.nstream; i++)
		port = announce(a.stream[i], LISTEN_TCP, from);
	for (int i = 0; i < a.nstream; i++)
		tune_stream(o, a.stream[i]);
	if (a.conn >= 0)
		tune_stream(o, a.conn);
	for (int i = 0; i < a.ndgram; i++)
		port = announce(a.dgram[i], LISTEN_UDP, from);
	for (int t = 0; t < o->threads; t++) {
		memcpy(workers[t].listen_fds, a.stream, sizeof(a.stream));
		memcpy(workers[t].udp_fds, a.dgram, sizeof(a.dgram));
		workers[t].nlisten = a.nstream;
		workers[t].nudp = a.ndgram;
		workers[t].port = port;
	}
	if (a.conn >= 0)
		log_info("serving one connection (fd %d) from %s", a.conn,
			 from);
	return true;
}

/*
 * A descriptor limit that leaves room for fewer connections than there
 * are workers refuses clients as soon as one is open: said once, at
 * start, with the way out.
 */
static void warn_fd_budget(const struct options *o, unsigned int budget)
{
	struct rlimit rl;

	if (budget == 0 || budget >= (unsigned int)o->threads * 4 ||
	    getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	log_warn(
		"descriptor limit %llu leaves room for %u connection%s with %d workers: raise it (ulimit -n) or run fewer workers (-t)",
		(unsigned long long)rl.rlim_cur, budget, budget == 1 ? "" : "s",
		o->threads);
}

/* --user names someone who exists, checked before any socket opens. */
static void resolve_user(const struct options *o, struct privs_ids *ids)
{
	char err[256];

	if (o->user && privs_resolve(o->user, ids, err, sizeof(err)) < 0) {
		log_error("%s", err);
		exit(1);
	}
}

/*
 * --user: every socket is open, so root is not needed any more; a drop
 * that fails or does not hold is fatal. Without --user, root is worth a
 * warning, except under systemd (INVOCATION_ID), whose unit decides.
 */
static void drop_root(const struct options *o, const struct privs_ids *ids)
{
	char err[256];

	if (o->user == NULL)
		return;
	if (privs_drop(o->user, ids, err, sizeof(err)) < 0) {
		log_error("%s", err);
		exit(1);
	}
	log_info("running as %s (uid %u, gid %u), no supplementary groups",
		 o->user, (unsigned int)getuid(), (unsigned int)getgid());
}

static void warn_root(const struct options *o)
{
	if (geteuid() == 0 && o->user == NULL && !getenv("INVOCATION_ID"))
		log_warn(
			"running as root: --user NAME drops root once the sockets are open");
}

/*
 * --tls-port: the certificate and key loaded before any socket is
 * announced (a bad pair is one line and exit 1), and the addresses the
 * TLS listeners take: addrs on the TLS port. NULL without --tls-port.
 */
static struct tls_server *setup_tls(const struct options *o,
				    const union net_addr *addrs,
				    union net_addr *tls_addrs, int naddrs)
{
	struct tls_settings set = {
		.cert = o->tls_cert,
		.key = o->tls_key,
		.ciphers = o->tls_ciphers,
		.min_version = o->tls_min ? 13 : 12,
	};
	struct tls_server *tls;
	char err[512];

	if (o->tls_port < 0)
		return NULL;
	tls = tls_server_new(&set, err, sizeof(err));
	if (tls == NULL) {
		log_error("%s", err);
		exit(1);
	}
	for (int i = 0; i < naddrs; i++) {
		tls_addrs[i] = addrs[i];
		net_set_port(&tls_addrs[i], (unsigned int)o->tls_port);
	}
	return tls;
}

/*
 * The threads beside the workers, and the registry they share: owned by
 * main, stopped before the workers (they read the workers' counters),
 * the registry freed after them.
 */
struct side {
	struct metrics *metrics;
	struct control *control;
	struct fault_registry *faults;
	struct tls_server *tls; /* --tls-port's, freed after the workers */
};

/*
 * Everything before serving: the sockets (given, or opened on the
 * addresses resolved from -b, -4, -6, -p), root dropped, the workers
 * and the --metrics and --control threads started. Returns the workers;
 * *given says whether the listeners were given (systemd), shared->one
 * whether echod serves one connection.
 */
static struct worker *start(struct options *o, struct worker_shared *shared,
			    struct side *side, bool *given)
{
	union net_addr addrs[OPTIONS_MAX_BINDS], tls_addrs[OPTIONS_MAX_BINDS];
	union net_addr maddr;
	int flags[OPTIONS_MAX_BINDS], naddrs;
	const struct backend_ops *backend;
	struct privs_ids ids;
	struct worker *workers;
	char note[256];
	int mfd, cfd;

	/* Everything that can fail is tried before a listening line. */
	naddrs = resolve_binds(o, addrs, flags);
	parse_metrics(o, &maddr);
	parse_control(o);
	backend = choose_backend(o, note, sizeof(note));
	resolve_user(o, &ids);
	shared->tls = side->tls = setup_tls(o, addrs, tls_addrs, naddrs);
	if (notify_init() < 0)
		log_warn(
			"NOTIFY_SOCKET: not an AF_UNIX path or @name: ignored");
	raise_nofile();
	workers = calloc((size_t)o->threads, sizeof(*workers));
	if (workers == NULL) {
		log_error("start: %s", strerror(ENOMEM));
		exit(1);
	}
	shared->faults = side->faults = setup_faults(o);
	side->metrics = open_metrics(o, &maddr, &mfd);
	side->control = open_control(o, &cfd);
	*given = take_given(o, workers, &shared->one);
	if (!*given)
		open_listeners(o, workers, addrs, side->tls ? tls_addrs : NULL,
			       flags, naddrs);
	announce_all(o, workers, backend, note, *given, mfd);
	announce_control(cfd);
	announce_seeds(side->faults);
	shared->fd_budget = core_fd_budget(o->threads);
	warn_fd_budget(o, shared->fd_budget);
	drop_root(o, &ids);
	pthread_barrier_init(&shared->started, NULL,
			     (unsigned int)o->threads + 1);
	start_workers(o, workers, backend, shared);
	pthread_barrier_wait(&shared->started);
	start_metrics(side->metrics, o, workers, backend, side->faults);
	start_control(side->control, side->faults);
	warn_root(o);
	return workers;
}

/*
 * The end: the threads beside the workers first (the metrics thread
 * reads the workers' counters), then the workers, their summary, and
 * the fault registry no one reads any more.
 */
static void stop_all(const struct options *o, struct worker *workers,
		     struct side *side, bool given)
{
	if (side->metrics)
		metrics_stop(side->metrics);
	if (side->control)
		control_stop(side->control);
	stop_workers(o, workers, given);
	report(o, workers);
	if (side->faults)
		fault_registry_free(side->faults);
	tls_server_free(side->tls);
	free(workers);
}

int main(int argc, char **argv)
{
	static struct worker_shared shared = {
		.sources.lock = PTHREAD_MUTEX_INITIALIZER,
		.one.fd = -1,
	};
	struct side side = {0};
	struct worker *workers;
	struct waiter wt;
	struct options o;
	bool given;
	int status, sig;
	char err[256];
	sigset_t set;

	switch (options_parse(&o, argc, argv, err, sizeof(err))) {
	case 1:
		return 0;
	case -1:
		usage_error(err);
	}
	log_level = LOG_INFO + (o.verbose > 2 ? 2 : o.verbose);
	if (o.inetd)
		spare_the_client();
	log_setup(o.log_json);
	if (o.list_backends)
		return list_backends();
	setup_signals(&set);
	/* main's own descriptors first: no worker may take the last ones. */
	shared.fail_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (waiter_open(&wt, &o, &set, shared.fail_fd) < 0)
		return 1;
	workers = start(&o, &shared, &side, &given);
	wt.workers = workers;
	wt.tls = side.tls;
	/*
	 * The last start-up line: every socket is open and every worker has
	 * set up its loop, so clients may come. Scripts and tests wait for it
	 * rather than guess how many "listening on" lines there will be.
	 */
	log_info("ready");
	notify_status("READY=1\nSTATUS=serving with %d worker%s", o.threads,
		      o.threads > 1 ? "s" : "");
	status = wait_for_end(&o, &shared.one, &wt, &sig);
	if (status == END_SIGNAL && o.grace && !shared.one.on) {
		status = drain(&o, workers, &shared, &wt, sig, given);
	} else {
		notify_status("STOPPING=1");
		status = status == END_FAILED ? 1 : 0;
	}
	waiter_close(&wt);
	stop_all(&o, workers, &side, given);
	return status;
}
