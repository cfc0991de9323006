// SPDX-License-Identifier: BSD-2-Clause
/* conn.c - framing: what counts as a message, and the -n limit. */
#include <string.h>

#include "conn.h"
#include "options.h"

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
