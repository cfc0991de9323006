// SPDX-License-Identifier: BSD-2-Clause
/* unit-conn.c - framing, message limits, the send queue and the slot table. */
#include <stdio.h>
#include <string.h>

#include "../src/budget.h"
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
	uint16_t done[OUTQ_LENT_MAX];
	struct outq q = {0};
	size_t space;
	struct budget b;
	char *tail;

	budget_init(&b, 0);
	outq_pool_init(&pool, 4096, 4, &b);
	is_int(outq_room(&q, 4096), 4096, "empty: the whole bound is free");
	is_int(outq_append(&pool, &q, "hello", 5), 0, "append 5 bytes");
	is_int(outq_room(&q, 4096), 4091, "room shrinks by what is queued");
	is_int(outq_reserve(&pool, &q, 4096, 8192), 4091, "reserve: the rest");
	tail = outq_tail(&pool, &q, 4096, &space);
	is_int(space, 4091, "tail space matches the room");
	memcpy(tail, " world", 6);
	outq_tail_filled(&q, 6);
	ok(memcmp(q.buf + q.off, "hello world", 11) == 0,
	   "the queue keeps order");
	is_int(outq_sent(&pool, &q, 6, done), 0, "no lent buffer to give back");
	is_int(q.len, 5, "a partial send leaves the rest");
	ok(memcmp(q.buf + q.off, "world", 5) == 0, "the right rest");
	outq_sent(&pool, &q, 5, done);
	ok(q.buf == NULL, "an empty queue holds no buffer");
	is_int(pool.nfree, 1, "the buffer went back to the pool");
	outq_pool_destroy(&pool);
}

/* Pooled pages are charged as they are written, and given back. */
static void test_budget(void)
{
	struct outq_pool pool;
	struct outq q = {0}, r = {0};
	struct budget b;

	budget_init(&b, 8192);
	outq_pool_init(&pool, 16384, 4, &b);
	outq_append(&pool, &q, "hello", 5);
	is_int(budget_used(&b), 4096, "a page written, a page charged");
	is_int(outq_reserve(&pool, &q, 16384, 16000), 8192 - 5,
	       "reserve: what the budget has left, not all that was asked");
	is_int(budget_used(&b), 8192, "charged up to the budget");
	outq_append(&pool, &r, "x", 1);
	is_int(budget_used(&b), 12288, "bytes already read are kept past it");
	is_int(outq_reserve(&pool, &r, 16384, 4096), 4095,
	       "within its charged page only");
	is_int(outq_reserve(&pool, &r, 16384, 8192), 4095,
	       "no more pages while over the budget");
	outq_release(&pool, &r);
	is_int(budget_used(&b), 8192,
	       "over the budget, a freed buffer goes back at once");
	outq_release(&pool, &q);
	is_int(pool.nfree, 1, "within it, a freed buffer is kept for reuse");
	ok(outq_pool_decay(&pool), "kept while it was just used");
	ok(!outq_pool_decay(&pool), "unused for a whole period: unmapped");
	is_int(budget_used(&b), 0, "and its charge given back");
	outq_pool_destroy(&pool);
}

static void test_lend(void)
{
	static const char ring[4][8] = {"0123456", "abcdefg", "ABCDEFG",
					"xyzxyzx"};
	uint16_t done[OUTQ_LENT_MAX];
	struct iovec iov[OUTQ_LENT_MAX];
	struct outq_pool pool;
	struct outq q = {0};
	const char *data;
	struct budget b;

	budget_init(&b, 0);
	outq_pool_init(&pool, 4096, 4, &b);
	pool.lend_base = ring[0];
	pool.lend_size = sizeof(ring[0]);
	ok(outq_lend(&q, 7, 0), "a buffer is lent to an empty queue");
	ok(outq_lend(&q, 7, 1), "a second one behind it");
	is_int(outq_bytes(&q), 14, "lent bytes are queued");
	is_int(outq_front(&pool, &q, &data), 7, "the first is sent first");
	ok(data == ring[0], "in place, without a copy");
	is_int(outq_lent_iov(&pool, &q, iov), 2, "one send reads them all");
	ok(iov[1].iov_base == ring[1] && iov[1].iov_len == 7, "each in place");
	outq_start_send(&pool, &q, 0);
	ok(outq_lend(&q, 7, 2), "one more is lent while they are sent");
	is_int(outq_sent(&pool, &q, 14, done), 2,
	       "both sent whole, they go back");
	ok(done[0] == 0 && done[1] == 1, "by their ids");
	is_int(outq_front(&pool, &q, &data), 7, "then the one lent behind");
	ok(data == ring[2], "also in place");
	ok(outq_lend(&q, 7, 3) && outq_lend(&q, 3, 0) && outq_lend(&q, 7, 1),
	   "up to OUTQ_LENT_MAX lent");
	ok(!outq_lend(&q, 7, 1), "no more: the next is copied");
	outq_append(&pool, &q, "tail", 4);
	ok(!outq_lend(&q, 7, 1), "nor behind copied bytes");
	is_int(outq_bytes(&q), 7 * 3 + 3 + 4, "all of it counted");
	outq_start_send(&pool, &q, 0);
	is_int(outq_sent(&pool, &q, 7 + 2, done), 4,
	       "a short send gives every lent buffer back");
	ok(done[0] == 2 && done[1] == 3 && done[2] == 0 && done[3] == 1,
	   "the one sent whole first");
	is_int(q.nlent, 0, "nothing is lent any more");
	is_int(outq_front(&pool, &q, &data), 5 + 3 + 7 + 4,
	       "their unsent bytes are queued, copied");
	ok(memcmp(data, "zxyzx012abcdefgtail", 19) == 0,
	   "in order, ahead of the later bytes");
	outq_start_send(&pool, &q, 0);
	outq_sent(&pool, &q, 2, done);
	outq_start_send(&pool, &q, 0);
	is_int(outq_room(&q, 4096), 4096 - 19,
	       "while a send reads the pool, the space before is not reused");
	outq_sent(&pool, &q, 17, done);
	is_int(outq_bytes(&q), 0, "all sent");
	ok(q.buf == NULL, "and the pooled buffer went back");
	outq_lend(&q, 7, 0);
	outq_lend(&q, 7, 1);
	outq_start_send(&pool, &q, 0);
	is_int(outq_sent(&pool, &q, 7, done), 2,
	       "a send that ends between two buffers is short too");
	is_int(outq_front(&pool, &q, &data), 7, "the second is copied");
	ok(memcmp(data, "abcdefg", 7) == 0 && q.nlent == 0, "whole");
	outq_sent(&pool, &q, 7, done);
	outq_lend(&q, 7, 3);
	is_int(outq_unlend_all(&q, done), 1, "closing gives lent buffers back");
	is_int(done[0], 3, "each by its id");
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
	test_budget();
	test_lend();
	test_table();
	return done_testing();
}
