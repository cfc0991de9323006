// SPDX-License-Identifier: BSD-2-Clause
/*
 * metrics.h - the --metrics HTTP listener: a thread of its own (httpd.h),
 * off the workers' path, serving GET /metrics in the Prometheus text
 * exposition format and GET /connections as JSON. It only reads: a
 * scraper can never change the service (that is --control's listener).
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include "net.h"

struct fault_registry;
struct metrics;
struct worker;

enum {
	METRICS_MAX_REQUEST = 4096, /* bytes of request line and headers */
};

/*
 * Parses "127.0.0.1:9100", "[::1]:9100" (port 0: any). Returns 0 or
 * -EINVAL.
 */
int metrics_parse_addr(const char *text, union net_addr *a);

/*
 * Listens on a, before anything else is announced, so that a port in
 * use fails echod's start: stores the bound address in *bound and the
 * listener in *fd. Returns the state for metrics_start, or NULL with
 * *err set to a -errno.
 */
struct metrics *metrics_open(const union net_addr *a, union net_addr *bound,
			     int *fd, int *err);

/*
 * Starts the thread serving the n workers' counters on m's listener;
 * backend names the backend in echod_build_info; faults (or NULL) gives
 * echod_faults_total. Returns 0, or -errno after freeing m.
 */
int metrics_start(struct metrics *m, struct worker *workers, int n,
		  const char *backend, struct fault_registry *faults);

/* Stops the thread and closes its sockets; before the workers stop. */
void metrics_stop(struct metrics *m);

#endif
