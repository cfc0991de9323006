// SPDX-License-Identifier: BSD-2-Clause
/* cpu.h - CPU time of echobench itself and of the server under test. */
#ifndef ECHOBENCH_CPU_H
#define ECHOBENCH_CPU_H

#include <sys/types.h>

#include <stdint.h>

struct cpu_sample {
	uint64_t user_us;
	uint64_t sys_us;
};

/* This process, all threads (getrusage). Returns 0 or -errno. */
int cpu_self(struct cpu_sample *s);

/*
 * Process pid, its live descendants and the children it has reaped, from
 * /proc: a forking server such as socat runs each connection in a child.
 * The live processes' CPU time is read from their CPU-time clocks (ns);
 * the reaped children's, and the split between user and system, come in
 * the kernel's clock ticks (10 ms at USER_HZ 100), as does all of it if a
 * clock cannot be read. Returns 0 or -errno (-ESRCH when pid is gone).
 */
int cpu_tree(pid_t pid, struct cpu_sample *s);

#endif
