// SPDX-License-Identifier: BSD-2-Clause
/*
 * musl-compat.h - forced into every file of the static (musl) build by
 * mk/package.mk: declares the two glibc extensions echod and echobench
 * call that musl 1.2.3 lacks; mk/musl-compat.c defines them.
 */
#ifndef ECHOD_MUSL_COMPAT_H
#define ECHOD_MUSL_COMPAT_H

#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

const char *sigabbrev_np(int sig);
int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
		 const struct timespec *timeout, const sigset_t *sigmask);

#endif
