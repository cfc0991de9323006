// SPDX-License-Identifier: BSD-2-Clause
/*
 * helper-noipv6.c - runs a command as on a host booted with
 * ipv6.disable=1: a seccomp filter makes socket(AF_INET6, ...) fail with
 * EAFNOSUPPORT, everything else is allowed. For the -6 test.
 *
 *   helper-noipv6 COMMAND [ARG...]
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <err.h>
#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "helper-noipv6: add this architecture's AUDIT_ARCH"
#endif

#define DATA(field) offsetof(struct seccomp_data, field)

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
		/* Another architecture's calls are not ours to judge. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA(arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA(nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
		/* The low word of the first argument: the family. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA(args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (argc < 2)
		errx(2, "usage: helper-noipv6 COMMAND [ARG...]");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		err(1, "prctl(PR_SET_NO_NEW_PRIVS)");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		err(1, "prctl(PR_SET_SECCOMP)");
	execvp(argv[1], argv + 1);
	err(1, "%s", argv[1]);
}
