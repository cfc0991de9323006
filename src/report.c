// SPDX-License-Identifier: BSD-2-Clause
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
#include "log.h"
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
	char local[NET_ADDR_TEXT], peer[NET_ADDR_TEXT], via[NET_ADDR_TEXT];

	fprintf(f,
		"%-3d %-5d %-11s %7d %7d %-22s %-22s %7.1f %9llu %11llu %11llu %9llu %8.3f %7u %5u %-6s %-21s %s\n",
		row->worker, row->fd, report_state_name(row->state),
		row->recv_q, row->send_q,
		net_addr_text(&row->local.sa, local, sizeof(local)),
		net_addr_text(&row->peer.sa, peer, sizeof(peer)),
		(double)row->age_ms / 1000, (unsigned long long)row->messages,
		(unsigned long long)row->bytes_in,
		(unsigned long long)row->bytes_out,
		(unsigned long long)row->pending, (double)row->rtt_us / 1000,
		row->retrans, row->cwnd, row->faults[0] ? row->faults : "-",
		row->via.sa.sa_family
			? net_addr_text(&row->via.sa, via, sizeof(via))
			: "-",
		row->tls[0] ? row->tls : "-");
}

/*
 * A listener as ss shows it: Recv-Q is the accept queue, clients
 * waiting for accept(); Send-Q its limit, the backlog (TCP_INFO's
 * unacked and sacked fields carry them for a listening socket).
 */
static void listener_info(int fd, union net_addr *a, struct tcp_info *ti)
{
	socklen_t len = sizeof(*a);

	memset(ti, 0, sizeof(*ti));
	memset(a, 0, sizeof(*a));
	getsockname(fd, &a->sa, &len);
	len = sizeof(*ti);
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
}

static void print_listener(FILE *f, int worker, int fd)
{
	char local[NET_ADDR_TEXT];
	union net_addr a;
	struct tcp_info ti;

	listener_info(fd, &a, &ti);
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
	char at[48];

	/* Each part's head line carries the time, as log lines do. */
	log_prefix(at, sizeof(at));
	if (r->rows || r->missing) {
		fprintf(f, "%sechod: connections: %zu open%s\n", at, r->nrows,
			r->missing ? " (some workers did not answer)" : "");
		fprintf(f,
			"W   FD    State        Recv-Q  Send-Q Local                  Peer                       Age  Messages    Bytes-in   Bytes-out   Pending   RTT-ms Retrans  Cwnd Faults Via                   TLS\n");
		for (size_t i = 0; i < r->nrows; i++)
			print_row(f, &r->rows[i]);
		fprintf(f, "%sechod: listening\n", at);
		fprintf(f, "W   FD    State        Recv-Q  Send-Q Local\n");
		for (int i = 0; i < r->nworkers; i++) {
			w = &r->workers[i];
			for (int j = 0; j < w->nlisten; j++)
				print_listener(f, w->id, w->listen_fds[j]);
		}
	}
	fprintf(f, "%sechod: totals\n", at);
	print_memory(f, r);
	for (int i = 0; i < r->nworkers; i++) {
		w = &r->workers[i];
		print_totals(f, w);
		if (w->nudp)
			print_udp(f, w);
	}
	fprintf(f, "%sechod: end of table\n", at);
}

/* A row's fields: the inside of its JSON object. */
static void row_fields(FILE *f, const struct report_row *row)
{
	char local[NET_ADDR_TEXT], peer[NET_ADDR_TEXT], via[NET_ADDR_TEXT];

	fprintf(f,
		"\"worker\":%d,\"fd\":%d,\"local\":\"%s\",\"peer\":\"%s\",\"state\":\"%s\",\"age_ms\":%llu,\"messages\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"pending\":%llu,\"recv_q\":%d,\"send_q\":%d,\"rtt_us\":%u,\"retrans\":%u,\"cwnd\":%u,\"faults\":\"%s\",\"via\":\"%s\",\"tls\":\"%s\"",
		row->worker, row->fd,
		net_addr_text(&row->local.sa, local, sizeof(local)),
		net_addr_text(&row->peer.sa, peer, sizeof(peer)),
		report_state_name(row->state), (unsigned long long)row->age_ms,
		(unsigned long long)row->messages,
		(unsigned long long)row->bytes_in,
		(unsigned long long)row->bytes_out,
		(unsigned long long)row->pending, row->recv_q, row->send_q,
		row->rtt_us, row->retrans, row->cwnd, row->faults,
		row->via.sa.sa_family
			? net_addr_text(&row->via.sa, via, sizeof(via))
			: "",
		row->tls);
}

void report_json(FILE *f, const struct report *r)
{
	fputs("[", f);
	for (size_t i = 0; i < r->nrows; i++) {
		fputs(i ? ",\n{" : "\n{", f);
		row_fields(f, &r->rows[i]);
		fputc('}', f);
	}
	fputs("\n]\n", f);
}

/* How a line of the JSON table starts: a log line's fields, and its part. */
static void json_head(FILE *f, const char *time, const char *part)
{
	fprintf(f,
		"{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"table %s\",\"table\":\"%s\"",
		time, part, part);
}

static void json_listeners(FILE *f, const char *time, const struct worker *w)
{
	char local[NET_ADDR_TEXT];
	union net_addr a;
	struct tcp_info ti;

	for (int j = 0; j < w->nlisten; j++) {
		listener_info(w->listen_fds[j], &a, &ti);
		json_head(f, time, "listener");
		fprintf(f,
			",\"worker\":%d,\"fd\":%d,\"state\":\"%s\",\"recv_q\":%u,\"send_q\":%u,\"local\":\"%s\"}\n",
			w->id, w->listen_fds[j],
			report_state_name(ti.tcpi_state), ti.tcpi_unacked,
			ti.tcpi_sacked,
			net_addr_text(&a.sa, local, sizeof(local)));
	}
}

/* "\"name\":{\"label\":n,...}" for a list of counters and its labels. */
static void json_counts(FILE *f, const char *name, const _Atomic uint64_t *v,
			int n, const char *(*label)(int))
{
	fprintf(f, ",\"%s\":{", name);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", label(i),
			(unsigned long long)counter_get(&v[i]));
	fputc('}', f);
}

static void json_totals(FILE *f, const char *time, const struct worker *w)
{
	const struct worker_stats *s = &w->stats;
	uint64_t closed = counter_get(&s->closed);

	json_head(f, time, "totals");
	fprintf(f,
		",\"worker\":%d,\"accepted\":%llu,\"open\":%llu,\"closed\":%llu",
		w->id, (unsigned long long)counter_get(&s->accepted),
		(unsigned long long)(counter_get(&s->accepted) - closed),
		(unsigned long long)closed);
	json_counts(f, "closed_by", s->closed_by, CLOSE_NREASONS,
		    close_reason_label);
	json_counts(f, "refused_by", s->refused_by, REFUSE_NREASONS,
		    refuse_reason_label);
	fprintf(f,
		",\"backpressure_pauses\":%llu,\"memory_waits\":%llu,\"messages\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu}\n",
		(unsigned long long)counter_get(&s->pauses),
		(unsigned long long)counter_get(&s->mem_waits),
		(unsigned long long)counter_get(&s->messages),
		(unsigned long long)counter_get(&s->bytes_in),
		(unsigned long long)counter_get(&s->bytes_out));
}

static void json_udp(FILE *f, const char *time, const struct worker *w)
{
	const struct udp_stats *u = &w->udp_stats;

	json_head(f, time, "udp");
	fprintf(f,
		",\"worker\":%d,\"received\":%llu,\"bytes_in\":%llu,\"echoed\":%llu,\"bytes_out\":%llu,\"dropped\":{",
		w->id, (unsigned long long)counter_get(&u->received),
		(unsigned long long)counter_get(&u->bytes_in),
		(unsigned long long)counter_get(&u->echoed),
		(unsigned long long)counter_get(&u->bytes));
	for (int v = UDP_DROP_PORT; v < UDP_NVERDICTS; v++)
		fprintf(f, "%s\"%s\":%llu", v == UDP_DROP_PORT ? "" : ",",
			udp_verdict_label(v),
			(unsigned long long)counter_get(&u->dropped[v]));
	fputs("}}\n", f);
}

void report_log_json(FILE *f, const struct report *r)
{
	const struct budget *b = &r->workers[0].shared->memory;
	char time[40];

	log_stamp(time, sizeof(time));
	for (size_t i = 0; i < r->nrows; i++) {
		json_head(f, time, "connection");
		fputc(',', f);
		row_fields(f, &r->rows[i]);
		fputs("}\n", f);
	}
	for (int i = 0; i < r->nworkers && (r->rows || r->missing); i++)
		json_listeners(f, time, &r->workers[i]);
	json_head(f, time, "memory");
	fprintf(f, ",\"held_bytes\":%zu,\"budget_bytes\":%zu,\"waiting\":%u}\n",
		budget_used(b), b->limit,
		atomic_load_explicit((atomic_uint *)&b->waiting,
				     memory_order_relaxed));
	for (int i = 0; i < r->nworkers; i++) {
		json_totals(f, time, &r->workers[i]);
		if (r->workers[i].nudp)
			json_udp(f, time, &r->workers[i]);
	}
	json_head(f, time, "end");
	fprintf(f, ",\"connections\":%zu,\"workers_missing\":%d}\n", r->nrows,
		r->missing);
}
