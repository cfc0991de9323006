// SPDX-License-Identifier: BSD-2-Clause
/* backend.c - the table of backends and the --backend choice. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"

#ifndef HAVE_LIBURING
/*
 * A build without liburing still lists io_uring, so that --backend
 * io_uring, auto and --list-backends all give the one reason.
 */
static int uring_absent(char *why, size_t len)
{
	snprintf(why, len, "not compiled in (built without liburing)");
	return -ENOSYS;
}

const struct backend_ops backend_uring = {
	.name = "io_uring",
	.probe = uring_absent,
};
#endif

const struct backend_ops *const backend_table[] = {
	&backend_uring,
	&backend_epoll,
	NULL,
};

int backend_probe(const struct backend_ops *b, char *why, size_t len)
{
	return b->probe ? b->probe(why, len) : 0;
}

static const struct backend_ops *find(const char *name)
{
	for (int i = 0; backend_table[i]; i++)
		if (strcmp(backend_table[i]->name, name) == 0)
			return backend_table[i];
	return NULL;
}

const struct backend_ops *backend_select(const char *name, char *why,
					 size_t len, char *note, size_t notelen)
{
	const struct backend_ops *b;
	char reason[256];

	note[0] = '\0';
	if (strcmp(name, "auto") != 0) {
		b = find(name);
		if (b == NULL) {
			snprintf(why, len, "backend %s: unknown", name);
			return NULL;
		}
		if (backend_probe(b, reason, sizeof(reason)) < 0) {
			snprintf(why, len, "backend %s: %s", name, reason);
			return NULL;
		}
		return b;
	}
	for (int i = 0; backend_table[i]; i++) {
		b = backend_table[i];
		if (backend_probe(b, reason, sizeof(reason)) == 0)
			return b;
		snprintf(note, notelen, "%s unavailable: %s", b->name, reason);
	}
	snprintf(why, len, "no backend can run here");
	return NULL;
}
