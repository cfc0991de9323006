// SPDX-License-Identifier: BSD-2-Clause
/* deadline.c - idle and linger lists, each ordered by its deadline. */
#include "conn.h"
#include "deadline.h"

static void list_push(struct conn_list *l, struct conn *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->count++;
}

static void list_remove(struct conn_list *l, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

void deadline_add(struct deadlines *d, struct conn *c, uint64_t now_ms)
{
	c->last_ms = now_ms;
	list_push(&d->idle, c);
}

void deadline_remove(struct deadlines *d, struct conn *c)
{
	list_remove(c->flags & CONN_LINGER ? &d->linger : &d->idle, c);
}

void deadline_touch(struct deadlines *d, struct conn *c, uint64_t now_ms)
{
	/* A lingering connection's deadline runs from our FIN, not input. */
	if ((c->flags & CONN_LINGER) || !d->idle_ms || c->last_ms == now_ms)
		return;
	list_remove(&d->idle, c);
	list_push(&d->idle, c);
	c->last_ms = now_ms;
}

void deadline_linger(struct deadlines *d, struct conn *c, uint64_t now_ms)
{
	list_remove(&d->idle, c);
	c->flags |= CONN_LINGER;
	list_push(&d->linger, c);
	c->last_ms = now_ms;
}

struct conn *deadline_expired(const struct deadlines *d, uint64_t now_ms,
			      enum close_reason *why)
{
	struct conn *c = d->idle.head;

	if (d->idle_ms && c && c->last_ms + d->idle_ms <= now_ms) {
		*why = CLOSE_IDLE;
		return c;
	}
	c = d->linger.head;
	if (c && c->last_ms + d->linger_ms <= now_ms) {
		*why = CLOSE_LINGER;
		return c;
	}
	return NULL;
}

uint64_t deadline_next(const struct deadlines *d)
{
	uint64_t next = UINT64_MAX;

	if (d->idle_ms && d->idle.head)
		next = d->idle.head->last_ms + d->idle_ms;
	if (d->linger.head && d->linger.head->last_ms + d->linger_ms < next)
		next = d->linger.head->last_ms + d->linger_ms;
	return next;
}
