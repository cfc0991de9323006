// SPDX-License-Identifier: BSD-2-Clause
/* runs.h - `echobench merge` and `echobench plot` (runs.c). */
#ifndef ECHOBENCH_RUNS_H
#define ECHOBENCH_RUNS_H

/*
 * Each takes the arguments after the subcommand's name (argv[0] is the
 * name) and returns the exit status: 0, 1 when a run failed or a file
 * could not be read or written, 2 on a usage error.
 */
int merge_main(int argc, char **argv);
int plot_main(int argc, char **argv);

#endif
