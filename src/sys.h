// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys.h - the system calls of the hot path, made without glibc's
 * cancellation bookkeeping.
 *
 * In a process with more than one thread, glibc's recv, send, accept4,
 * close and epoll_wait are cancellation points: each turns asynchronous
 * cancellation on before the call and off after it, two atomic
 * read-modify-writes and about 45 instructions, a third of what an echo
 * costs echod in user space (`make bench-instructions`). echod never
 * cancels a thread, so all of that buys nothing here. syscall(2) is the
 * same call with the same return convention (-1 and errno), minus that.
 * Only the calls made per echo or per connection go through here; the
 * rest keep glibc's (and _FORTIFY_SOURCE's) wrappers.
 *
 * ECHOD_SYS_LIBC (the fuzz build's) keeps glibc's calls: fuzz-conn
 * stands in for the kernel by wrapping those symbols at link time
 * (-Wl,--wrap), and a syscall(2) would pass it by.
 */
#ifndef ECHOD_SYS_H
#define ECHOD_SYS_H

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef ECHOD_SYS_LIBC
#define sys_recv recv
#define sys_send send
#define sys_accept4 accept4
#define sys_close close
#define sys_epoll_wait epoll_wait
#else
static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

static inline int sys_accept4(int fd, struct sockaddr *sa, socklen_t *len,
			      int flags)
{
	return (int)syscall(SYS_accept4, fd, sa, len, flags);
}

static inline int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *events, int n,
				 int timeout_ms)
{
	/* epoll_pwait with no mask: the one every architecture has. */
	return (int)syscall(SYS_epoll_pwait, epfd, events, n, timeout_ms, NULL,
			    0);
}
#endif /* ECHOD_SYS_LIBC */

#endif
