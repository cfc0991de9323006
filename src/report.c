/* report.c - the live table of connections: rows, gathering, formats. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "close_reason.h"
#include "counter.h"
#include "options.h"
#include "report.h"
#include "worker.h"

/* As ss(8) prints them (misc/ss.c sstate_name), by tcpi_state. */
static const char *const state_names[] = {
	"UNKNOWN",    "ESTAB",	    "SYN-SENT",	 "SYN-RECV",
	"FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN",
	"CLOSE-WAIT", "LAST-ACK",   "LISTEN",	 "CLOSING",
};

const char *report_state_name(int state)
{
	if (state < 0 ||
	    state >= (int)(sizeof(state_names) / sizeof(state_names[0])))
		return "UNKNOWN";
	return state_names[state];
}

static struct timespec deadline_after(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/*
 * Waits for w's answer to request seq until the deadline and appends its
 * rows to r. Returns 0, -ETIMEDOUT or -ENOMEM.
 */
static int take_answer(struct report *r, struct worker *w, uint64_t seq,
		       const struct timespec *until)
{
	struct worker_reply *re = &w->reply;
	struct report_row *all;
	int err = 0;

	pthread_mutex_lock(&re->lock);
	while (re->answered < seq && err == 0)
		err = pthread_cond_timedwait(&re->done, &re->lock, until);
	if (re->answered < seq) {
		pthread_mutex_unlock(&re->lock);
		return -ETIMEDOUT;
	}
	all = realloc(r->rows, (r->nrows + re->nrows + 1) * sizeof(*all));
	if (all) {
		memcpy(all + r->nrows, re->rows, re->nrows * sizeof(*all));
		r->rows = all;
		r->nrows += re->nrows;
	}
	free(re->rows);
	re->rows = NULL;
	re->nrows = 0;
	pthread_mutex_unlock(&re->lock);
	return all ? 0 : -ENOMEM;
}

int report_collect(struct report *r, struct worker *workers, int n,
		   bool with_rows)
{
	/* One report at a time: main's table and the metrics thread. */
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	struct timespec until = deadline_after(REPORT_DEADLINE_MS);
	uint64_t seq[OPTIONS_MAX_THREADS];
	int err = 0, e;

	memset(r, 0, sizeof(*r));
	r->workers = workers;
	r->nworkers = n;
	if (!with_rows)
		return 0;
	pthread_mutex_lock(&one);
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&workers[i].reply.lock);
		seq[i] = ++workers[i].reply.asked;
		pthread_mutex_unlock(&workers[i].reply.lock);
		worker_ask(&workers[i], WORKER_REPORT);
	}
	for (int i = 0; i < n; i++) {
		e = take_answer(r, &workers[i], seq[i], &until);
		if (e == -ETIMEDOUT)
			r->missing++;
		else if (e < 0)
			err = e;
	}
	pthread_mutex_unlock(&one);
	return err;
}

void report_free(struct report *r)
{
	free(r->rows);
	r->rows = NULL;
	r->nrows = 0;
}

static void print_row(FILE *f, const struct report_row *row)
{
	char local[NET_ADDR_TEXT], peer[NET_ADDR_TEXT];

	fprintf(f,
		"%-3d %-5d %-11s %7d %7d %-22s %-22s %7.1f %9llu %11llu %11llu %9llu %8.3f %7u %5u\n",
		row->worker, row->fd, report_state_name(row->state),
		row->recv_q, row->send_q,
		net_addr_text(&row->local.sa, local, sizeof(local)),
		net_addr_text(&row->peer.sa, peer, sizeof(peer)),
		(double)row->age_ms / 1000, (unsigned long long)row->messages,
		(unsigned long long)row->bytes_in,
		(unsigned long long)row->bytes_out,
		(unsigned long long)row->pending, (double)row->rtt_us / 1000,
		row->retrans, row->cwnd);
}

/*
 * A listener as ss shows it: Recv-Q is the accept queue, clients
 * waiting for accept(); Send-Q its limit, the backlog (TCP_INFO's
 * unacked and sacked fields carry them for a listening socket).
 */
static void print_listener(FILE *f, int worker, int fd)
{
	char local[NET_ADDR_TEXT];
	union net_addr a;
	socklen_t len = sizeof(a);
	struct tcp_info ti;

	memset(&ti, 0, sizeof(ti));
	memset(&a, 0, sizeof(a));
	getsockname(fd, &a.sa, &len);
	len = sizeof(ti);
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
	fprintf(f, "%-3d %-5d %-11s %7u %7u %s\n", worker, fd,
		report_state_name(ti.tcpi_state), ti.tcpi_unacked,
		ti.tcpi_sacked, net_addr_text(&a.sa, local, sizeof(local)));
}

/* "3 eof, 0 idle, ...": closed connections by reason, every reason. */
static void print_reasons(FILE *f, const struct worker_stats *s)
{
	for (int r = 0; r < CLOSE_NREASONS; r++)
		fprintf(f, "%s%llu %s", r ? ", " : "",
			(unsigned long long)counter_get(&s->closed_by[r]),
			close_reason_label(r));
}

static void print_totals(FILE *f, const struct worker *w)
{
	const struct worker_stats *s = &w->stats;
	uint64_t closed = counter_get(&s->closed);

	fprintf(f,
		"worker %d: %llu accepted, %llu open, %llu refused, %llu closed (",
		w->id, (unsigned long long)counter_get(&s->accepted),
		(unsigned long long)(counter_get(&s->accepted) - closed),
		(unsigned long long)worker_refused(s),
		(unsigned long long)closed);
	print_reasons(f, s);
	fprintf(f,
		"), %llu backpressure pauses, %llu memory waits; echoed: %llu messages, %llu bytes in, %llu bytes out\n",
		(unsigned long long)counter_get(&s->pauses),
		(unsigned long long)counter_get(&s->mem_waits),
		(unsigned long long)counter_get(&s->messages),
		(unsigned long long)counter_get(&s->bytes_in),
		(unsigned long long)counter_get(&s->bytes_out));
}

static void print_udp(FILE *f, const struct worker *w)
{
	const struct udp_stats *u = &w->udp_stats;

	fprintf(f, "worker %d udp: %llu received, %llu echoed, %llu bytes out",
		w->id, (unsigned long long)counter_get(&u->received),
		(unsigned long long)counter_get(&u->echoed),
		(unsigned long long)counter_get(&u->bytes));
	for (int v = UDP_DROP_PORT; v < UDP_NVERDICTS; v++)
		fprintf(f, "; %llu %s",
			(unsigned long long)counter_get(&u->dropped[v]),
			udp_verdict_name(v));
	fputc('\n', f);
}

/* The --memory budget, process-wide: what is held, of how much. */
static void print_memory(FILE *f, const struct report *r)
{
	const struct budget *b;

	if (r->nworkers == 0)
		return;
	b = &r->workers[0].shared->memory;
	fprintf(f,
		"memory: %zu bytes held for connections' data, budget %zu (0 = none), %u connections waiting for memory\n",
		budget_used(b), b->limit,
		atomic_load_explicit((atomic_uint *)&b->waiting,
				     memory_order_relaxed));
}

void report_table(FILE *f, const struct report *r)
{
	const struct worker *w;

	if (r->rows || r->missing) {
		fprintf(f, "echod: connections: %zu open%s\n", r->nrows,
			r->missing ? " (some workers did not answer)" : "");
		fprintf(f,
			"W   FD    State        Recv-Q  Send-Q Local                  Peer                       Age  Messages    Bytes-in   Bytes-out   Pending   RTT-ms Retrans  Cwnd\n");
		for (size_t i = 0; i < r->nrows; i++)
			print_row(f, &r->rows[i]);
		fprintf(f, "echod: listening\n");
		fprintf(f, "W   FD    State        Recv-Q  Send-Q Local\n");
		for (int i = 0; i < r->nworkers; i++) {
			w = &r->workers[i];
			for (int j = 0; j < w->nlisten; j++)
				print_listener(f, w->id, w->listen_fds[j]);
		}
	}
	fprintf(f, "echod: totals\n");
	print_memory(f, r);
	for (int i = 0; i < r->nworkers; i++) {
		w = &r->workers[i];
		print_totals(f, w);
		if (w->nudp)
			print_udp(f, w);
	}
	fprintf(f, "echod: end of table\n");
}

void report_json(FILE *f, const struct report *r)
{
	char local[NET_ADDR_TEXT], peer[NET_ADDR_TEXT];
	const struct report_row *row;

	fputs("[", f);
	for (size_t i = 0; i < r->nrows; i++) {
		row = &r->rows[i];
		fprintf(f,
			"%s\n{\"worker\":%d,\"fd\":%d,\"local\":\"%s\",\"peer\":\"%s\",\"state\":\"%s\",\"age_ms\":%llu,\"messages\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"pending\":%llu,\"recv_q\":%d,\"send_q\":%d,\"rtt_us\":%u,\"retrans\":%u,\"cwnd\":%u}",
			i ? "," : "", row->worker, row->fd,
			net_addr_text(&row->local.sa, local, sizeof(local)),
			net_addr_text(&row->peer.sa, peer, sizeof(peer)),
			report_state_name(row->state),
			(unsigned long long)row->age_ms,
			(unsigned long long)row->messages,
			(unsigned long long)row->bytes_in,
			(unsigned long long)row->bytes_out,
			(unsigned long long)row->pending, row->recv_q,
			row->send_q, row->rtt_us, row->retrans, row->cwnd);
	}
	fputs("\n]\n", f);
}
