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

/* conn_consume's count with line framing: up to the -n'th line's end. */
static size_t consume_lines(const struct options *o, struct conn *c,
			    const char *data, size_t n)
{
	uint64_t left = o->messages ? o->messages - c->messages : UINT64_MAX;
	uint64_t seen;
	size_t echo = nth_line_end(data, n, left, &seen);

	if (echo == 0)
		echo = n;
	else
		seen = left;
	c->messages += seen;
	return echo;
}

size_t conn_consume_framed(const struct options *o, struct conn *c,
			   const char *data, size_t n)
{
	size_t echo = n;

	c->bytes_in += n;
	if (c->flags & CONN_LIMIT)
		return 0;
	if (o->framing == FRAMING_RAW)
		c->messages++;
	else
		echo = consume_lines(o, c, data, n);
	if (o->messages && c->messages >= o->messages)
		c->flags |= CONN_LIMIT;
	return echo;
}
