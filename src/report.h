// SPDX-License-Identifier: BSD-2-Clause
/*
 * report.h - the live table of connections (SIGUSR1, --stats-interval,
 * GET /connections): each worker describes its own open connections on
 * its own thread (the core answers WORKER_REPORT with conn_describe's
 * rows), with what the kernel holds for each (state, queues, TCP_INFO); the
 * asking thread gathers the rows with a deadline (report_collect) and formats
 * them as ss words in a table or as JSON, with the listeners and the counters.
 */
#ifndef ECHOD_REPORT_H
#define ECHOD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "net.h"

struct core;
struct worker;

/* One open TCP connection as echod and the kernel see it. */
struct report_row {
	int worker;
	int fd;
	union net_addr local, peer;
	int state; /* tcpi_state: TCP_ESTABLISHED... */
	uint64_t age_ms;
	uint64_t messages, bytes_in, bytes_out;
	uint64_t pending; /* bytes queued in echod, not yet sent */
	int recv_q, send_q; /* SIOCINQ, SIOCOUTQ; -1 if unknown */
	uint32_t rtt_us, retrans, cwnd; /* TCP_INFO */
	char faults[64]; /* the names of the faults it carries, by commas */
	union net_addr via; /* the balancer a PROXY header came from; or 0 */
	char tls[64]; /* "TLSv1.3/TLS_AES_256_GCM_SHA384", or "" */
};

/* Everything a report holds; owned by whoever called report_collect. */
struct report {
	struct worker *workers;
	int nworkers;
	struct report_row *rows;
	size_t nrows;
	int missing; /* workers that did not answer by the deadline */
};

enum {
	REPORT_DEADLINE_MS = 1000, /* how long a worker may take to answer */
};

/*
 * Asks each of the n workers for its rows and waits for them until
 * deadline_ms has passed; one report at a time process-wide. With
 * with_rows false only the counters are reported. Returns 0 or -ENOMEM;
 * free r with report_free.
 */
int report_collect(struct report *r, struct worker *workers, int n,
		   bool with_rows);

void report_free(struct report *r);

/* The table, as SIGUSR1 prints it; listeners and totals follow. */
void report_table(FILE *f, const struct report *r);

/* The rows as a JSON array (GET /connections). */
void report_json(FILE *f, const struct report *r);

/*
 * The table as --log-format json writes it: one JSON object a line, each
 * with the log's time, level and msg beside its "table" part
 * (connection, listener, memory, totals, udp) and typed fields; "end"
 * last, with the number of connections.
 */
void report_log_json(FILE *f, const struct report *r);

/* ss's word for a TCP state (tcpi_state), "ESTAB", "CLOSE-WAIT"... */
const char *report_state_name(int state);

#endif
