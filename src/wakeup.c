// SPDX-License-Identifier: BSD-2-Clause
/* wakeup.c - the min-heap of per-connection times (wakeup.h). */
#include <errno.h>
#include <stdlib.h>

#include "wakeup.h"

static void place(struct wakeups *h, uint32_t i, struct wakeup w)
{
	h->e[i] = w;
	*w.pos = i;
}

static void up(struct wakeups *h, uint32_t i)
{
	struct wakeup w = h->e[i];

	while (i > 0 && h->e[(i - 1) / 2].at > w.at) {
		place(h, i, h->e[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, w);
}

static void down(struct wakeups *h, uint32_t i)
{
	struct wakeup w = h->e[i];
	uint32_t child;

	while ((child = 2 * i + 1) < h->n) {
		if (child + 1 < h->n && h->e[child + 1].at < h->e[child].at)
			child++;
		if (h->e[child].at >= w.at)
			break;
		place(h, i, h->e[child]);
		i = child;
	}
	place(h, i, w);
}

/* Takes entry i out: the last one fills its place. */
static void take_out(struct wakeups *h, uint32_t i)
{
	*h->e[i].pos = WAKEUP_NONE;
	if (--h->n == i)
		return;
	place(h, i, h->e[h->n]);
	up(h, i);
	down(h, *h->e[i].pos);
}

int wakeup_set(struct wakeups *h, uint32_t *pos, void *who, uint64_t at)
{
	struct wakeup *e;

	if (*pos != WAKEUP_NONE) {
		if (at == 0) {
			take_out(h, *pos);
			return 0;
		}
		h->e[*pos].at = at;
		up(h, *pos);
		down(h, *pos);
		return 0;
	}
	if (at == 0)
		return 0;
	if (h->n == h->cap) {
		e = realloc(h->e, (h->cap ? 2 * h->cap : 64) * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		h->e = e;
		h->cap = h->cap ? 2 * h->cap : 64;
	}
	place(h, h->n, (struct wakeup){.at = at, .pos = pos, .who = who});
	up(h, h->n++);
	return 0;
}

void *wakeup_pop(struct wakeups *h, uint64_t now)
{
	void *who;

	if (h->n == 0 || h->e[0].at > now)
		return NULL;
	who = h->e[0].who;
	take_out(h, 0);
	return who;
}

void wakeup_destroy(struct wakeups *h)
{
	free(h->e);
	*h = (struct wakeups){0};
}
