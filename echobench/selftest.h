// SPDX-License-Identifier: BSD-2-Clause
/* selftest.h - checks echobench runs on itself (hidden options). */
#ifndef ECHOBENCH_SELFTEST_H
#define ECHOBENCH_SELFTEST_H

/* Prints percentiles of the numbers in path; returns the exit status. */
int selftest_histogram(const char *path);

#endif
