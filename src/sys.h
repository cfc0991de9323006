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
 * cancels a thread, so all of that buys nothing here. sys_call6 is the
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
#include <errno.h>

#if defined(__x86_64__)
/*
 * The system call itself, as the kernel's x86-64 ABI has it: syscall(2)
 * is a function of glibc's that shuffles its seven arguments into
 * place and looks at the result, twenty instructions an echo per call
 * that this does in the caller's registers. Elsewhere, syscall(2).
 */
static inline long sys_call6(long nr, long a, long b, long c, long d, long e,
			     long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	/* -4095..-1 is -errno; anything else, the answer. */
	if ((unsigned long)ret > -4096UL) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#else
static inline long sys_call6(long nr, long a, long b, long c, long d, long e,
			     long f)
{
	return syscall(nr, a, b, c, d, e, f);
}
#endif

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return sys_call6(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0, 0);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	return sys_call6(SYS_sendto, fd, (long)buf, (long)len, flags, 0, 0);
}

static inline int sys_accept4(int fd, struct sockaddr *sa, socklen_t *len,
			      int flags)
{
	return (int)sys_call6(SYS_accept4, fd, (long)sa, (long)len, flags, 0,
			      0);
}

static inline int sys_close(int fd)
{
	return (int)sys_call6(SYS_close, fd, 0, 0, 0, 0, 0);
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *events, int n,
				 int timeout_ms)
{
	/* epoll_pwait with no mask: the one every architecture has. */
	return (int)sys_call6(SYS_epoll_pwait, epfd, (long)events, n,
			      timeout_ms, 0, 0);
}
#endif /* ECHOD_SYS_LIBC */

#endif
