/* unit-conn.c - framing, message limits, pending bytes and the slot table. */
#include <stdio.h>
#include <string.h>

#include "../src/conn.h"
#include "../src/options.h"
#include "tap.h"

static struct options opts(enum framing f, uint64_t messages)
{
	struct options o = {.framing = f, .messages = messages};

	o.max_pending = 4096;
	return o;
}

static size_t feed(const struct options *o, struct conn *c, const char *s)
{
	return conn_consume(o, c, s, strlen(s));
}

static void test_line_framing(void)
{
	struct options o = opts(FRAMING_LINE, 3);
	struct conn c = {0};

	/* TCP may split a line anywhere and join several in one segment. */
	is_int(feed(&o, &c, "te"), 2, "a partial line is echoed at once");
	is_int(c.messages, 0, "but not counted");
	is_int(feed(&o, &c, "st1\ntest2\nte"), 12, "joined lines echoed");
	is_int(c.messages, 2, "two lines ended");
	ok(!(c.flags & CONN_LIMIT), "limit not reached at 2 of 3");
	is_int(feed(&o, &c, "st3\nextra\nmore"), 4,
	       "the third line is echoed up to its newline only");
	is_int(c.messages, 3, "three lines counted");
	ok(c.flags & CONN_LIMIT, "limit reached");
	is_int(feed(&o, &c, "after\n"), 0, "nothing echoed after the limit");
	is_int(c.bytes_in, 2 + 12 + 14 + 6, "every byte in is counted");
}

static void test_raw_framing(void)
{
	struct options o = opts(FRAMING_RAW, 2);
	struct conn c = {0};

	is_int(feed(&o, &c, "a\nb\nc\n"), 6, "raw: a read is a message");
	is_int(c.messages, 1, "one message for one read");
	is_int(feed(&o, &c, "xyz"), 3, "second read echoed whole");
	ok(c.flags & CONN_LIMIT, "limit 2 reached");
	is_int(feed(&o, &c, "late"), 0, "third read discarded");
}

static void test_unlimited(void)
{
	struct options o = opts(FRAMING_LINE, 0);
	struct conn c = {0};

	is_int(feed(&o, &c, "1\n2\n3\n4\n5"), 9, "no limit: all echoed");
	is_int(c.messages, 4, "lines counted without a limit");
	ok(!(c.flags & CONN_LIMIT), "never limited");
}

static void test_pending(void)
{
	struct options o = opts(FRAMING_RAW, 0);
	struct conn_pool pool;
	struct conn c = {0};
	size_t space;
	char *tail;

	conn_pool_init(&pool, o.max_pending, 4);
	is_int(conn_room(&o, &c), 4096, "empty: the whole bound is free");
	is_int(conn_keep(&pool, &c, "hello", 5), 0, "keep 5 bytes");
	is_int(conn_room(&o, &c), 4091, "room shrinks by what is kept");
	tail = conn_tail(&o, &pool, &c, &space);
	is_int(space, 4091, "tail space matches the room");
	memcpy(tail, " world", 6);
	is_int(conn_tail_filled(&o, &c, 6), 6, "bytes read into the tail");
	ok(memcmp(c.pending + c.off, "hello world", 11) == 0,
	   "pending keeps order");
	conn_sent(&pool, &c, 6);
	is_int(c.len, 5, "partial send leaves the rest");
	ok(memcmp(c.pending + c.off, "world", 5) == 0, "the right rest");
	conn_sent(&pool, &c, 5);
	ok(c.pending == NULL, "an empty connection holds no buffer");
	is_int(pool.nfree, 1, "the buffer went back to the pool");
	is_int(c.bytes_out, 11, "bytes out counted");
	conn_pool_destroy(&pool);
}

static void test_table(void)
{
	struct conn_table t = {0};
	struct conn *a, *b;
	uint32_t slot, gen;

	a = conn_table_get(&t);
	ok(a != NULL, "a slot is handed out");
	a->fd = 10;
	slot = a->slot;
	gen = a->gen;
	ok(conn_table_find(&t, slot, gen) == a, "found by slot and generation");
	conn_table_put(&t, a);
	ok(conn_table_find(&t, slot, gen) == NULL, "a closed slot is stale");
	b = conn_table_get(&t);
	b->fd = 11;
	is_int(b->slot, slot, "the slot is reused");
	ok(b->gen != gen, "with a new generation");
	ok(conn_table_find(&t, slot, gen) == NULL,
	   "the old generation still finds nothing");
	for (int i = 0; i < 200; i++)
		conn_table_get(&t)->fd = 100 + i;
	ok(t.nslots >= 201, "the table grows past its first size");
	conn_table_destroy(&t);
}

int main(void)
{
	test_line_framing();
	test_raw_framing();
	test_unlimited();
	test_pending();
	test_table();
	return done_testing();
}
