// SPDX-License-Identifier: BSD-2-Clause
/* table.c - connection slots with generations, grown by doubling. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "table.h"

static int table_grow(struct conn_table *t)
{
	uint32_t n = t->nslots ? t->nslots * 2 : 64;
	struct conn **slots;
	uint32_t *free_slots;

	slots = realloc(t->slots, n * sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	t->slots = slots;
	free_slots = realloc(t->free, n * sizeof(*free_slots));
	if (free_slots == NULL)
		return -ENOMEM;
	t->free = free_slots;
	/* Push in reverse so the lowest new slot is handed out first. */
	for (uint32_t i = n; i > t->nslots; i--) {
		t->slots[i - 1] = NULL;
		t->free[t->nfree++] = i - 1;
	}
	t->nslots = n;
	return 0;
}

struct conn *conn_table_get(struct conn_table *t)
{
	size_t size = sizeof(struct conn) + t->priv_size;
	struct conn *c;
	uint32_t slot, gen;

	if (t->nfree == 0 && table_grow(t) < 0)
		return NULL;
	slot = t->free[t->nfree - 1];
	c = t->slots[slot];
	if (c == NULL) {
		c = malloc(size);
		if (c == NULL)
			return NULL;
		t->slots[slot] = c;
		gen = 0;
	} else {
		gen = c->gen;
	}
	t->nfree--;
	memset(c, 0, size);
	c->slot = slot;
	c->gen = (gen + 1) & CONN_GEN_MASK;
	c->fd = -1;
	return c;
}

void conn_table_put(struct conn_table *t, struct conn *c)
{
	c->fd = -1;
	t->free[t->nfree++] = c->slot;
}

struct conn *conn_table_find(const struct conn_table *t, uint32_t slot,
			     uint32_t gen)
{
	struct conn *c;

	if (slot >= t->nslots)
		return NULL;
	c = t->slots[slot];
	if (c == NULL || c->gen != gen || c->fd < 0)
		return NULL;
	return c;
}

void conn_table_destroy(struct conn_table *t)
{
	for (uint32_t i = 0; i < t->nslots; i++)
		free(t->slots[i]);
	free(t->slots);
	free(t->free);
	memset(t, 0, sizeof(*t));
}
