// SPDX-License-Identifier: BSD-2-Clause
/*
 * table.h - a worker's connections by slot number. Backends name a
 * connection to the kernel by slot and generation, never by fd or
 * pointer, so an event for a closed connection whose slot was reused is
 * recognised as stale.
 */
#ifndef ECHOD_TABLE_H
#define ECHOD_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/*
 * Each slot's connection is allocated once, with priv_size bytes of the
 * backend's state behind it, and reused; the table owns them.
 */
struct conn_table {
	struct conn **slots;
	uint32_t *free; /* stack of free slot numbers */
	uint32_t nslots, nfree;
	size_t priv_size;
};

/*
 * Returns a zeroed connection (and its private state), its slot and a
 * new generation set and fd -1, or NULL on -ENOMEM. The table grows by
 * doubling, so this allocates only when the worker holds more
 * connections than ever before.
 */
struct conn *conn_table_get(struct conn_table *t);

/* Returns the slot; c stays allocated for the slot's next connection. */
void conn_table_put(struct conn_table *t, struct conn *c);

/* The open connection in slot with generation gen, or NULL if stale. */
struct conn *conn_table_find(const struct conn_table *t, uint32_t slot,
			     uint32_t gen);

void conn_table_destroy(struct conn_table *t);

#endif
