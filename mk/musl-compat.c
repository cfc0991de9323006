// SPDX-License-Identifier: BSD-2-Clause
/*
 * musl-compat.c - glibc's sigabbrev_np() and epoll_pwait2() for the static
 * musl build (mk/package.mk links this object into echod and echobench).
 */
#include "musl-compat.h"

#include <errno.h>
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

/* The abbreviation without "SIG", as glibc gives it; NULL if unknown. */
const char *sigabbrev_np(int sig)
{
	static const char *const names[] = {
		[SIGHUP] = "HUP",   [SIGINT] = "INT",
		[SIGQUIT] = "QUIT", [SIGILL] = "ILL",
		[SIGTRAP] = "TRAP", [SIGABRT] = "ABRT",
		[SIGBUS] = "BUS",   [SIGFPE] = "FPE",
		[SIGKILL] = "KILL", [SIGUSR1] = "USR1",
		[SIGSEGV] = "SEGV", [SIGUSR2] = "USR2",
		[SIGPIPE] = "PIPE", [SIGALRM] = "ALRM",
		[SIGTERM] = "TERM", [SIGSTKFLT] = "STKFLT",
		[SIGCHLD] = "CHLD", [SIGCONT] = "CONT",
		[SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
		[SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU",
		[SIGURG] = "URG",   [SIGXCPU] = "XCPU",
		[SIGXFSZ] = "XFSZ", [SIGVTALRM] = "VTALRM",
		[SIGPROF] = "PROF", [SIGWINCH] = "WINCH",
		[SIGIO] = "IO",	    [SIGPWR] = "PWR",
		[SIGSYS] = "SYS",
	};

	if (sig <= 0 || (unsigned)sig >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[sig];
}

/*
 * The kernel's call (5.11); on an older kernel, epoll_pwait with the
 * timeout rounded up to whole milliseconds.
 */
int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
		 const struct timespec *timeout, const sigset_t *sigmask)
{
	long ms;
	long r;

	r = syscall(SYS_epoll_pwait2, epfd, events, maxevents, timeout, sigmask,
		    _NSIG / 8);
	if (r >= 0 || errno != ENOSYS)
		return (int)r;
	if (!timeout)
		return epoll_pwait(epfd, events, maxevents, -1, sigmask);
	if (timeout->tv_sec >= INT_MAX / 1000)
		ms = INT_MAX;
	else
		ms = timeout->tv_sec * 1000 +
		     (timeout->tv_nsec + 999999) / 1000000;
	return epoll_pwait(epfd, events, maxevents, (int)ms, sigmask);
}
