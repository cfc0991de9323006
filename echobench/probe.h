// SPDX-License-Identifier: BSD-2-Clause
/* probe.h - start-up checks: is the server there, are there enough fds. */
#ifndef ECHOBENCH_PROBE_H
#define ECHOBENCH_PROBE_H

struct bench_opts;

/* Exits with one line and status 1 unless the server answers. */
void probe_server(const struct bench_opts *o);

/* Raises RLIMIT_NOFILE for the connections; exits if it cannot. */
void probe_nofile(const struct bench_opts *o);

#endif
