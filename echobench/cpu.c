// SPDX-License-Identifier: BSD-2-Clause
/*
 * cpu.c - CPU accounting from getrusage(2), /proc/PID/stat and the
 * processes' CPU-time clocks.
 */
#include <sys/types.h>
#include <sys/resource.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

/* What we need of one /proc/PID/stat, in clock ticks. */
struct pstat {
	pid_t pid;
	pid_t ppid;
	uint64_t utime, stime; /* the process, all its threads */
	uint64_t cutime, cstime; /* children it has waited for */
};

int cpu_self(struct cpu_sample *s)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -errno;
	s->user_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 +
		     (uint64_t)ru.ru_utime.tv_usec;
	s->sys_us = (uint64_t)ru.ru_stime.tv_sec * 1000000 +
		    (uint64_t)ru.ru_stime.tv_usec;
	return 0;
}

/*
 * Reads /proc/PID/stat. The command name may hold spaces and parentheses,
 * so fields are counted from the last ')'. Returns 0 or -errno.
 */
static int read_stat(pid_t pid, struct pstat *p)
{
	char path[64], buf[1024], *s;
	unsigned long long ut, st, cut, cst;
	int ppid;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	s = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime */
	if (!s ||
	    sscanf(s + 1,
		   " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
		   &ppid, &ut, &st, &cut, &cst) != 5)
		return -EINVAL;
	p->pid = pid;
	p->ppid = ppid;
	p->utime = ut;
	p->stime = st;
	p->cutime = cut;
	p->cstime = cst;
	return 0;
}

/* All processes now; *n set. The caller frees. NULL on failure. */
static struct pstat *read_all(size_t *n)
{
	struct pstat *all = NULL, *grown;
	size_t cap = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	*n = 0;
	if (!dir)
		return NULL;
	while ((d = readdir(dir))) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 512;
			grown = realloc(all, cap * sizeof(*all));
			if (!grown)
				break;
			all = grown;
		}
		if (!read_stat(atoi(d->d_name), &all[*n]))
			(*n)++;
	}
	closedir(dir);
	return all;
}

/* Marks pid's descendants in mark[]; a few passes cover any depth. */
static void mark_tree(const struct pstat *all, size_t n, pid_t pid, char *mark)
{
	int changed = 1;

	for (size_t i = 0; i < n; i++)
		mark[i] = all[i].pid == pid;
	while (changed) {
		changed = 0;
		for (size_t i = 0; i < n; i++) {
			if (mark[i])
				continue;
			for (size_t j = 0; j < n; j++) {
				if (mark[j] && all[j].pid == all[i].ppid) {
					mark[i] = 1;
					changed = 1;
					break;
				}
			}
		}
	}
}

/*
 * The CPU time of live process pid, all its threads, in ns: the
 * scheduler's own sum, of which /proc/PID/stat shows the same total in
 * clock ticks. Returns false if its clock cannot be read.
 */
static bool clock_ns(pid_t pid, uint64_t *ns)
{
	struct timespec ts;
	clockid_t clk;

	if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
		return false;
	*ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return true;
}

int cpu_tree(pid_t pid, struct cpu_sample *s)
{
	uint64_t u = 0, sy = 0, hz = (uint64_t)sysconf(_SC_CLK_TCK);
	uint64_t reaped = 0, live_ns = 0, ns, total;
	bool precise = true;
	struct pstat *all;
	size_t n;
	char *mark;
	int found = 0;

	all = read_all(&n);
	mark = calloc(n ? n : 1, 1);
	if (!all || !mark) {
		free(all);
		free(mark);
		return -ENOMEM;
	}
	mark_tree(all, n, pid, mark);
	for (size_t i = 0; i < n; i++) {
		if (!mark[i])
			continue;
		u += all[i].utime;
		sy += all[i].stime;
		/* Reaped children live on only in their parent's c*time. */
		u += all[i].cutime;
		sy += all[i].cstime;
		reaped += all[i].cutime + all[i].cstime;
		found |= all[i].pid == pid;
		if (precise && clock_ns(all[i].pid, &ns))
			live_ns += ns;
		else
			precise = false;
	}
	free(all);
	free(mark);
	if (!found)
		return -ESRCH;
	if (!precise) {
		s->user_us = u * 1000000 / hz;
		s->sys_us = sy * 1000000 / hz;
		return 0;
	}
	/*
	 * A tick is 10 ms: 0.33 us per echo over the 30,000 echoes of a
	 * one-second run. The clocks give the live processes' total to the
	 * ns; the ticks only split it between user and system.
	 */
	total = live_ns / 1000 + reaped * 1000000 / hz;
	s->user_us = u + sy ? (uint64_t)((double)total * (double)u /
					 (double)(u + sy))
			    : 0;
	s->sys_us = total - s->user_us;
	return 0;
}
