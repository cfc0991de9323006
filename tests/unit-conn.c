/* unit-conn.c - framing, message limits, the send queue and the slot table. */
#include <stdio.h>
#include <string.h>

#include "../src/conn.h"
#include "../src/options.h"
#include "../src/outq.h"
#include "../src/table.h"
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

static void test_queue(void)
{
	struct outq_pool pool;
	struct outq q = {0};
	unsigned int id = 0;
	size_t space;
	char *tail;

	outq_pool_init(&pool, 4096, 4);
	is_int(outq_room(&q, 4096), 4096, "empty: the whole bound is free");
	is_int(outq_append(&pool, &q, "hello", 5), 0, "append 5 bytes");
	is_int(outq_room(&q, 4096), 4091, "room shrinks by what is queued");
	tail = outq_tail(&pool, &q, 4096, &space);
	is_int(space, 4091, "tail space matches the room");
	memcpy(tail, " world", 6);
	outq_tail_filled(&q, 6);
	ok(memcmp(q.buf + q.off, "hello world", 11) == 0,
	   "the queue keeps order");
	is_int(outq_sent(&pool, &q, 6, &id), 0, "no lent buffer to give back");
	is_int(q.len, 5, "a partial send leaves the rest");
	ok(memcmp(q.buf + q.off, "world", 5) == 0, "the right rest");
	outq_sent(&pool, &q, 5, &id);
	ok(q.buf == NULL, "an empty queue holds no buffer");
	is_int(pool.nfree, 1, "the buffer went back to the pool");
	outq_pool_destroy(&pool);
}

static void test_lend(void)
{
	static const char ring[] = "0123456789";
	struct outq_pool pool;
	struct outq q = {0};
	unsigned int id = 99;
	const char *data;

	outq_pool_init(&pool, 4096, 4);
	outq_lend(&q, ring, 10, 7);
	is_int(outq_bytes(&q), 10, "lent bytes are queued");
	is_int(outq_front(&q, &data), 10, "and sent first");
	ok(data == ring, "in place, without a copy");
	outq_start_send(&pool, &q, 0);
	outq_append(&pool, &q, "abc", 3);
	is_int(outq_bytes(&q), 13, "bytes behind a lent buffer are copied");
	is_int(outq_sent(&pool, &q, 4, &id), 1,
	       "a short send of a lent buffer gives it back");
	is_int(id, 7, "by its id");
	is_int(q.lent_len, 0, "nothing is lent any more");
	is_int(outq_front(&q, &data), 9, "its rest is queued");
	ok(memcmp(data, "456789abc", 9) == 0, "ahead of the later bytes");
	outq_start_send(&pool, &q, 0);
	is_int(outq_room(&q, 4096), 4096 - 9,
	       "a send from the pool: room counts only the queued bytes");
	outq_sent(&pool, &q, 2, &id);
	outq_start_send(&pool, &q, 0);
	is_int(outq_room(&q, 4096), 4096 - 9,
	       "while it reads, the space before the bytes is not reused");
	outq_sent(&pool, &q, 7, &id);
	is_int(outq_bytes(&q), 0, "all sent");
	outq_lend(&q, ring, 10, 3);
	outq_start_send(&pool, &q, 0);
	is_int(outq_sent(&pool, &q, 10, &id), 1, "a whole lent send");
	is_int(id, 3, "gives its buffer back");
	ok(q.buf == NULL, "and needs no pooled buffer");
	outq_pool_destroy(&pool);
}

static void test_table(void)
{
	struct conn_table t = {.priv_size = 24};
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
	ok(((char *)conn_priv(b))[23] == 0, "private state comes zeroed");
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
	test_queue();
	test_lend();
	test_table();
	return done_testing();
}
