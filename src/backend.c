/* backend.c - the table of backends and the --backend choice. */
#include <stdio.h>
#include <string.h>

#include "backend.h"

const struct backend_ops *const backend_table[] = {
#ifdef HAVE_LIBURING
	&backend_uring,
#endif
	&backend_epoll,
	NULL,
};

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
			snprintf(why, len, "backend %s: not compiled in", name);
			return NULL;
		}
		if (b->probe(reason, sizeof(reason)) < 0) {
			snprintf(why, len, "backend %s: %s", name, reason);
			return NULL;
		}
		return b;
	}
#ifndef HAVE_LIBURING
	snprintf(note, notelen,
		 "io_uring not compiled in: built without liburing");
#endif
	for (int i = 0; backend_table[i]; i++) {
		b = backend_table[i];
		if (b->probe(reason, sizeof(reason)) == 0)
			return b;
		snprintf(note, notelen, "%s unavailable: %s", b->name, reason);
	}
	snprintf(why, len, "no backend can run here");
	return NULL;
}
