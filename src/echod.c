/*
 * echod.c - main(): parse options, open the listening sockets, start the
 * workers (and the --metrics thread), wait for a signal, printing the
 * table on SIGUSR1, stop them, and choose the exit status:
 * 0 after SIGINT/SIGTERM, 1 on a run-time error, 2 on a usage error.
 */
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "options.h"
#include "report.h"
#include "worker.h"

static void usage_error(const char *msg)
{
	fprintf(stderr, "echod: %s\n%s", msg, options_usage);
	exit(2);
}

static int list_backends(void)
{
	char why[256];

	for (int i = 0; backend_table[i]; i++) {
		if (backend_probe(backend_table[i], why, sizeof(why)) == 0)
			printf("%s available\n", backend_table[i]->name);
		else
			printf("%s unavailable: %s\n", backend_table[i]->name,
			       why);
	}
	return 0;
}

/*
 * The addresses to listen on: each -b, or one wildcard (dual-stack [::]
 * where the system has IPv6). An IPv6 address listed beside an IPv4 one
 * is made IPv6-only so that the two do not collide on the port.
 */
static int resolve_binds(const struct options *o, union net_addr *addrs,
			 int *flags)
{
	bool any_v4 = false;
	char msg[128];

	if (o->nbinds == 0) {
		net_wildcard(&addrs[0], net_have_ipv6() == 0, o->port);
		flags[0] = 0;
		return 1;
	}
	for (int i = 0; i < o->nbinds; i++) {
		if (net_parse_addr(o->binds[i], o->port, &addrs[i]) < 0) {
			snprintf(msg, sizeof(msg),
				 "bind %s: not an IPv4 or IPv6 address",
				 o->binds[i]);
			usage_error(msg);
		}
		any_v4 |= addrs[i].sa.sa_family == AF_INET;
	}
	for (int i = 0; i < o->nbinds; i++)
		flags[i] = addrs[i].sa.sa_family == AF_INET6 && any_v4
				   ? NET_V6ONLY
				   : 0;
	return o->nbinds;
}

/*
 * Opens one socket of protocol udp (or TCP) on addrs[i] for worker t.
 * The first socket on an address claims the port (failing if it is
 * taken); with --port 0 every later socket uses the port the kernel
 * chose for the first. Exits with one line on failure.
 */
static int open_one(const struct options *o, union net_addr *addrs, int naddrs,
		    int i, int flags, bool udp)
{
	union net_addr bound;
	char text[NET_ADDR_TEXT];
	int fd;

	if (udp)
		fd = net_bind_udp(&addrs[i], flags, &bound);
	else
		fd = net_listen_tcp(&addrs[i], o->backlog, flags, &bound);
	if (fd < 0) {
		log_error("bind %s%s: %s", udp ? "udp " : "",
			  net_addr_text(&addrs[i].sa, text, sizeof(text)),
			  strerror(-fd));
		exit(1);
	}
	if (net_addr_port(&addrs[i]) == 0)
		for (int j = 0; j < naddrs; j++)
			net_set_port(&addrs[j], net_addr_port(&bound));
	log_info("listening on %s %s (fd %d)", udp ? "udp" : "tcp",
		 net_addr_text(&bound.sa, text, sizeof(text)), fd);
	return fd;
}

static void open_listeners(const struct options *o, struct worker *workers,
			   union net_addr *addrs, const int *flags, int naddrs)
{
	for (int t = 0; t < o->threads; t++) {
		struct worker *w = &workers[t];
		int f;

		for (int i = 0; i < naddrs; i++) {
			f = flags[i] | (t ? NET_REUSEPORT : 0);
			if (o->tcp)
				w->listen_fds[w->nlisten++] =
					open_one(o, addrs, naddrs, i, f, false);
			if (o->udp)
				w->udp_fds[w->nudp++] =
					open_one(o, addrs, naddrs, i, f, true);
		}
		w->port = net_addr_port(&addrs[0]);
	}
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
 */
static void stop_workers(const struct options *o, struct worker *workers)
{
	for (int i = 0; i < o->threads; i++)
		worker_stop(&workers[i]);
	for (int i = 0; i < o->threads; i++) {
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
		"udp: %llu datagrams received, %llu echoed, %llu bytes out; dropped: %llu loop-prone port, %llu non-unicast source, %llu over rate, %llu truncated or too large, %llu send failed",
		(unsigned long long)sum.received,
		(unsigned long long)sum.echoed, (unsigned long long)sum.bytes,
		(unsigned long long)sum.dropped[UDP_DROP_PORT],
		(unsigned long long)sum.dropped[UDP_DROP_SOURCE],
		(unsigned long long)sum.dropped[UDP_DROP_RATE],
		(unsigned long long)sum.dropped[UDP_DROP_SIZE],
		(unsigned long long)sum.dropped[UDP_DROP_SEND]);
}

/*
 * The exit summary: every counter the workers keep, summed, one line for
 * TCP and one for UDP. Workers have been joined, so their stats are final.
 */
static void report(const struct options *o, const struct worker *workers)
{
	struct worker_stats sum = {0};

	for (int i = 0; i < o->threads; i++) {
		const struct worker_stats *s = &workers[i].stats;

		sum.accepted += s->accepted;
		sum.refused += s->refused;
		sum.closed += s->closed;
		sum.messages += s->messages;
		sum.bytes_in += s->bytes_in;
		sum.bytes_out += s->bytes_out;
	}
	if (o->tcp)
		log_info(
			"stopped: %llu connections, %llu refused, %llu closed, %llu messages, %llu bytes in, %llu bytes out",
			(unsigned long long)sum.accepted,
			(unsigned long long)sum.refused,
			(unsigned long long)sum.closed,
			(unsigned long long)sum.messages,
			(unsigned long long)sum.bytes_in,
			(unsigned long long)sum.bytes_out);
	if (o->udp)
		report_udp(workers, o->threads);
}

/* The backend --backend names, logged with why; exits 1 if none can run. */
static const struct backend_ops *choose_backend(const struct options *o)
{
	const struct backend_ops *backend;
	char err[256], note[256];

	backend = backend_select(o->backend, err, sizeof(err), note,
				 sizeof(note));
	if (backend == NULL) {
		log_error("%s", err);
		exit(1);
	}
	log_info("backend %s%s%s%s", backend->name, note[0] ? " (" : "", note,
		 note[0] ? ")" : "");
	return backend;
}

/* Starts every worker's thread; exits 1 if one cannot start. */
static void start_workers(const struct options *o, struct worker *workers,
			  const struct backend_ops *backend,
			  struct worker_shared *shared)
{
	int err;

	log_verbose("%d worker%s, framing %s, max pending %zu bytes",
		    o->threads, o->threads > 1 ? "s" : "",
		    options_framing_name(o->framing), o->max_pending);
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

/*
 * Waits for SIGINT or SIGTERM (status 0) or a worker's failure, which a
 * worker reports on fail_fd (status 1); meanwhile prints the table on
 * SIGUSR1, and every --stats-interval seconds.
 */
static int wait_for_signal(const struct options *o, const sigset_t *set,
			   struct worker *workers, int fail_fd)
{
	struct pollfd p[3] = {{.fd = signalfd(-1, set, SFD_CLOEXEC)},
			      {.fd = fail_fd},
			      {.fd = interval_timer(o->stats_interval)}};
	struct signalfd_siginfo si;
	int status = 1;
	uint64_t ticks;

	for (int i = 0; i < 3; i++)
		p[i].events = POLLIN;
	while (p[0].fd >= 0 && !p[1].revents) {
		if (poll(p, 3, -1) < 0)
			continue; /* EINTR: nothing else can fail here */
		if (p[2].revents && read(p[2].fd, &ticks, sizeof(ticks)) > 0)
			print_table(workers, o->threads, !o->stats_totals_only);
		if (!(p[0].revents & POLLIN) ||
		    read(p[0].fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGUSR1) {
			status = 0;
			break;
		}
		print_table(workers, o->threads, true);
	}
	if (p[0].fd < 0)
		log_error("signalfd: %s", strerror(errno));
	else
		close(p[0].fd);
	if (p[2].fd >= 0)
		close(p[2].fd);
	return status;
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

/* Starts the --metrics listener and thread; exits 1 if it cannot listen. */
static struct metrics *start_metrics(const struct options *o,
				     const union net_addr *a,
				     struct worker *workers,
				     const struct backend_ops *backend)
{
	char text[NET_ADDR_TEXT];
	union net_addr bound;
	struct metrics *m;
	int fd, err;

	if (o->metrics == NULL)
		return NULL;
	m = metrics_start(a, workers, o->threads, backend->name, &bound, &fd,
			  &err);
	if (m == NULL) {
		log_error("metrics %s: %s", o->metrics, strerror(-err));
		exit(1);
	}
	log_info("metrics on http %s (fd %d)",
		 net_addr_text(&bound.sa, text, sizeof(text)), fd);
	return m;
}

int main(int argc, char **argv)
{
	static struct worker_shared shared;
	struct metrics *metrics;
	union net_addr addrs[OPTIONS_MAX_BINDS], maddr;
	int flags[OPTIONS_MAX_BINDS], naddrs, status;
	const struct backend_ops *backend;
	struct worker *workers;
	struct options o;
	char err[256];
	sigset_t set;

	switch (options_parse(&o, argc, argv, err, sizeof(err))) {
	case 1:
		return 0;
	case -1:
		usage_error(err);
	}
	log_level = LOG_INFO + (o.verbose > 2 ? 2 : o.verbose);
	if (o.list_backends)
		return list_backends();
	naddrs = resolve_binds(&o, addrs, flags);
	parse_metrics(&o, &maddr);
	backend = choose_backend(&o);
	setup_signals(&set);
	raise_nofile();
	workers = calloc((size_t)o.threads, sizeof(*workers));
	if (workers == NULL) {
		log_error("start: %s", strerror(ENOMEM));
		return 1;
	}
	shared.fail_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (shared.fail_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		return 1;
	}
	open_listeners(&o, workers, addrs, flags, naddrs);
	shared.fd_budget = core_fd_budget(o.threads);
	start_workers(&o, workers, backend, &shared);
	metrics = start_metrics(&o, &maddr, workers, backend);
	/*
	 * The last start-up line: every socket is open and every worker has
	 * started, so clients may come. Scripts and tests wait for it rather
	 * than guess how many "listening on" lines there will be.
	 */
	log_info("ready");
	status = wait_for_signal(&o, &set, workers, shared.fail_fd);
	/* The metrics thread reads the workers: it stops first. */
	if (metrics)
		metrics_stop(metrics);
	stop_workers(&o, workers);
	report(&o, workers);
	free(workers);
	return status;
}
