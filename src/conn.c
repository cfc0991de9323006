/* conn.c - framing, pending bytes and idle lists, shared by every backend. */
#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"

/*
 * Line framing: finds the end of the k'th line in data[0, n). Returns its
 * length including '\n', or 0 (and the number of lines seen in *seen) if
 * fewer than k lines end here.
 */
static size_t nth_line_end(const char *data, size_t n, uint64_t k,
			   uint64_t *seen)
{
	const char *p = data, *end = data + n, *nl;

	*seen = 0;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if (++*seen == k)
			return (size_t)(p - data);
	}
	return 0;
}

size_t conn_consume(const struct options *o, struct conn *c, const char *data,
		    size_t n)
{
	uint64_t left, seen;
	size_t echo;

	c->bytes_in += n;
	if (c->flags & CONN_LIMIT)
		return 0;
	left = o->messages ? o->messages - c->messages : UINT64_MAX;
	if (o->framing == FRAMING_RAW) {
		c->messages++;
		echo = n;
	} else {
		echo = nth_line_end(data, n, left, &seen);
		if (echo == 0)
			echo = n;
		else
			seen = left;
		c->messages += seen;
	}
	if (o->messages && c->messages >= o->messages)
		c->flags |= CONN_LIMIT;
	return echo;
}

size_t conn_room(const struct options *o, const struct conn *c)
{
	return o->max_pending - c->len;
}

int conn_pool_init(struct conn_pool *p, size_t size, unsigned int cap)
{
	p->free = calloc(cap, sizeof(*p->free));
	if (p->free == NULL)
		return -ENOMEM;
	p->nfree = 0;
	p->cap = cap;
	p->size = size;
	return 0;
}

void conn_pool_destroy(struct conn_pool *p)
{
	while (p->nfree)
		free(p->free[--p->nfree]);
	free(p->free);
	p->free = NULL;
}

static char *pool_get(struct conn_pool *p)
{
	if (p->nfree)
		return p->free[--p->nfree];
	return malloc(p->size);
}

/* Keeps up to cap buffers for reuse; memory beyond that goes back. */
static void pool_put(struct conn_pool *p, char *buf)
{
	if (p->nfree < p->cap)
		p->free[p->nfree++] = buf;
	else
		free(buf);
}

char *conn_tail(const struct options *o, struct conn_pool *p, struct conn *c,
		size_t *space)
{
	if (c->pending == NULL) {
		c->pending = pool_get(p);
		if (c->pending == NULL)
			return NULL;
		c->off = c->len = 0;
	} else if (c->off + c->len + 1024 > o->max_pending) {
		/*
		 * Slide the pending bytes to the front only when the tail is
		 * nearly used up, so the copy is rare and never per message.
		 */
		memmove(c->pending, c->pending + c->off, c->len);
		c->off = 0;
	}
	*space = o->max_pending - c->off - c->len;
	return c->pending + c->off + c->len;
}

size_t conn_tail_filled(const struct options *o, struct conn *c, size_t n)
{
	size_t echo = conn_consume(o, c, c->pending + c->off + c->len, n);

	c->len += (uint32_t)echo;
	return echo;
}

int conn_keep(struct conn_pool *p, struct conn *c, const char *data, size_t n)
{
	if (c->pending == NULL) {
		c->pending = pool_get(p);
		if (c->pending == NULL)
			return -ENOMEM;
		c->off = c->len = 0;
	}
	if (c->off + c->len + n > p->size) {
		memmove(c->pending, c->pending + c->off, c->len);
		c->off = 0;
	}
	memcpy(c->pending + c->off + c->len, data, n);
	c->len += (uint32_t)n;
	return 0;
}

void conn_compact(struct conn *c)
{
	if (c->off == 0 || c->pending == NULL)
		return;
	memmove(c->pending, c->pending + c->off, c->len);
	c->off = 0;
}

void conn_sent(struct conn_pool *p, struct conn *c, size_t n)
{
	c->bytes_out += n;
	c->off += (uint32_t)n;
	c->len -= (uint32_t)n;
	if (c->len == 0)
		conn_release(p, c);
}

void conn_release(struct conn_pool *p, struct conn *c)
{
	if (c->pending)
		pool_put(p, c->pending);
	c->pending = NULL;
	c->off = c->len = 0;
}

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
	struct conn *c;
	uint32_t slot, gen;

	if (t->nfree == 0 && table_grow(t) < 0)
		return NULL;
	slot = t->free[t->nfree - 1];
	c = t->slots[slot];
	if (c == NULL) {
		c = malloc(sizeof(*c));
		if (c == NULL)
			return NULL;
		t->slots[slot] = c;
		gen = 0;
	} else {
		gen = c->gen;
	}
	t->nfree--;
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	c->gen = (gen + 1) & 0x7fffffff;
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

void conn_list_push(struct conn_list *l, struct conn *c)
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

void conn_list_remove(struct conn_list *l, struct conn *c)
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

void conn_lists_add(struct conn_lists *ls, struct conn *c, uint64_t now_ms)
{
	c->last_ms = now_ms;
	conn_list_push(&ls->idle, c);
}

void conn_lists_remove(struct conn_lists *ls, struct conn *c)
{
	conn_list_remove(c->flags & CONN_LINGER ? &ls->linger : &ls->idle, c);
}

void conn_touch(struct conn_lists *ls, const struct options *o, struct conn *c,
		uint64_t now_ms)
{
	/* A lingering connection's deadline runs from our FIN, not its input.
	 */
	if ((c->flags & CONN_LINGER) || !o->idle_timeout ||
	    c->last_ms == now_ms)
		return;
	conn_list_remove(&ls->idle, c);
	conn_list_push(&ls->idle, c);
	c->last_ms = now_ms;
}

void conn_finish_limit(struct conn_lists *ls, struct conn *c, uint64_t now_ms)
{
	shutdown(c->fd, SHUT_WR);
	c->flags |= CONN_SHUT_WR | CONN_LINGER;
	conn_list_remove(&ls->idle, c);
	conn_list_push(&ls->linger, c);
	c->last_ms = now_ms;
}

struct conn *conn_expired(const struct conn_lists *ls, const struct options *o,
			  uint64_t now_ms, const char **why)
{
	struct conn *c = ls->idle.head;

	if (o->idle_timeout && c &&
	    c->last_ms + o->idle_timeout * 1000ULL <= now_ms) {
		*why = "idle timeout";
		return c;
	}
	c = ls->linger.head;
	if (c && c->last_ms + o->linger * 1000ULL <= now_ms) {
		*why = "linger timeout";
		return c;
	}
	return NULL;
}

uint64_t conn_next_deadline(const struct conn_lists *ls,
			    const struct options *o)
{
	uint64_t next = UINT64_MAX;

	if (o->idle_timeout && ls->idle.head)
		next = ls->idle.head->last_ms + o->idle_timeout * 1000ULL;
	if (ls->linger.head &&
	    ls->linger.head->last_ms + o->linger * 1000ULL < next)
		next = ls->linger.head->last_ms + o->linger * 1000ULL;
	return next;
}

void conn_log_close(const struct conn *c, const char *why)
{
	char peer[NET_ADDR_TEXT];

	log_verbose(
		"close fd %d peer %s (%s): %llu messages, %llu bytes in, %llu bytes out",
		c->fd, net_addr_text(&c->peer.sa, peer, sizeof(peer)), why,
		(unsigned long long)c->messages,
		(unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out);
}
