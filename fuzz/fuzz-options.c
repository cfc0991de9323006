// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-options.c - options_parse on any command line: the input, split at
 * NUL bytes, is argv after "echod". It must return 0, 1 or -1; on -1 say
 * what is wrong in one line (unless an argument it quotes has several); on 0
 * leave options echod can run with.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "../src/options.h"
#include "fuzz.h"

enum {
	MAX_ARGS = 32
};

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* --help and --version print to stdout; keep libFuzzer's output readable. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd = open("/dev/null", O_WRONLY);

	(void)argc;
	(void)argv;
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	return 0;
}

static void check_runnable(const struct options *o)
{
	fuzz_check(o->port <= 65535);
	fuzz_check(o->nbinds >= 0 && o->nbinds <= OPTIONS_MAX_BINDS);
	fuzz_check(o->threads >= 0);
	fuzz_check(o->framing == FRAMING_RAW || o->framing == FRAMING_LINE);
	fuzz_check(o->tcp || o->udp);
	fuzz_check(o->max_pending > 0);
	fuzz_check(o->backlog > 0);
	fuzz_check(o->uring_buffers >= 1 &&
		   o->uring_buffers <= OPTIONS_MAX_URING_BUFFERS);
	fuzz_check(o->udp_max_size <= OPTIONS_UDP_MAX);
	fuzz_check(o->backend != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *args[MAX_ARGS + 2], err[256], *copy, name[] = "echod";
	struct options o;
	int argc = 1, r;
	bool newline = false;
	size_t start = 0;

	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	args[0] = name;
	for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
		if (copy[i] != '\0')
			continue;
		args[argc++] = copy + start;
		newline |= strchr(copy + start, '\n') != NULL;
		start = i + 1;
	}
	args[argc] = NULL;
	memset(err, 0, sizeof(err));
	r = options_parse(&o, argc, args, err, sizeof(err));
	fuzz_check(r == 0 || r == 1 || r == -1);
	if (r == -1) {
		fuzz_check(err[0] != '\0');
		fuzz_check(memchr(err, '\0', sizeof(err)) != NULL);
		/* One line, unless it quotes an argument that has more. */
		fuzz_check(newline || strchr(err, '\n') == NULL);
	}
	if (r == 0)
		check_runnable(&o);
	free(copy);
	return 0;
}
