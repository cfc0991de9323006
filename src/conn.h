/*
 * conn.h - the backend-neutral part of a connection: framing and message
 * counting, the bytes waiting to be sent back and their bound, and the
 * list that orders connections for idle timeouts.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "options.h"

enum conn_flags {
	CONN_LIMIT = 1 << 0, /* -n reached: echo what is owed, then FIN */
	CONN_PEER_EOF = 1 << 1, /* the peer shut its sending side */
	CONN_SHUT_WR = 1 << 2, /* we sent our FIN; input is discarded */
	CONN_LINGER = 1 << 3, /* on the linger list, not the idle list */
};

/*
 * Owned by its worker's backend, which allocates it at accept and frees
 * it at close (io_uring: once nothing of it is in flight). The pending
 * buffer is borrowed from the worker's conn_pool while bytes wait in it,
 * so an idle connection holds none.
 */
struct conn {
	struct conn *prev, *next; /* idle or linger list */
	char *pending; /* [off, off + len) waits to be sent */
	uint32_t off, len;
	uint32_t flags;
	uint32_t slot; /* index in the worker's conn_table */
	uint32_t gen; /* tells a reused slot from its past */
	int fd;
	int backend_state; /* the backend's own (epoll: registered events) */
	uint64_t last_ms; /* last activity, for the idle timeout */
	uint64_t messages, bytes_in, bytes_out;
	union net_addr peer;
};

struct conn_list {
	struct conn *head, *tail;
	unsigned int count;
};

/*
 * A worker's open connections in the order their deadlines come: idle
 * ones by last activity (for --idle-timeout), lingering ones (after our
 * FIN, for --linger) by when they started to linger. Each connection is
 * on exactly one of them.
 */
struct conn_lists {
	struct conn_list idle;
	struct conn_list linger;
};

/*
 * A worker's connections by slot number. Backends name a connection to
 * the kernel (epoll data, io_uring user_data) by slot and generation,
 * never by fd or pointer, so an event for a closed connection whose slot
 * was reused is recognised as stale. Connections are allocated once per
 * slot and reused; the table owns them.
 */
struct conn_table {
	struct conn **slots;
	uint32_t *free; /* stack of free slot numbers */
	uint32_t nslots, nfree;
};

/* Fixed-size pending buffers, recycled so bytes in flight cost no malloc. */
struct conn_pool {
	char **free;
	unsigned int nfree, cap;
	size_t size;
};

/*
 * Counts the messages in data[0, n) that the peer sent and returns how
 * many of its bytes are to be echoed: all of them, or, when this data
 * completes the -n'th message, those up to and including its end (the
 * rest is discarded and CONN_LIMIT set). Bytes after the limit return 0.
 */
size_t conn_consume(const struct options *o, struct conn *c, const char *data,
		    size_t n);

/* Bytes that may still be read without passing the bound on pending. */
size_t conn_room(const struct options *o, const struct conn *c);

/*
 * Keeps data[0, n) to be sent later, after what is already pending; the
 * caller made sure it fits (conn_room). Returns 0 or -ENOMEM.
 */
int conn_keep(struct conn_pool *p, struct conn *c, const char *data, size_t n);

/*
 * Moves the pending bytes to the start of their buffer, so that bytes
 * appended later need no move. For a backend whose kernel may still be
 * reading the bytes already pending (io_uring): it compacts only while
 * no send is in flight, and then appends without moving.
 */
void conn_compact(struct conn *c);

/* Marks n pending bytes sent; gives the buffer back once it is empty. */
void conn_sent(struct conn_pool *p, struct conn *c, size_t n);

/* Returns the pending buffer, if any, before the connection is freed. */
void conn_release(struct conn_pool *p, struct conn *c);

int conn_pool_init(struct conn_pool *p, size_t size, unsigned int cap);
void conn_pool_destroy(struct conn_pool *p);

/*
 * Makes room at the pending buffer's end for reading straight into it;
 * returns where to read (allocating the buffer if there is none) and
 * sets *space, or returns NULL on -ENOMEM.
 */
char *conn_tail(const struct options *o, struct conn_pool *p, struct conn *c,
		size_t *space);

/* Records n bytes read into conn_tail()'s space; returns bytes to echo. */
size_t conn_tail_filled(const struct options *o, struct conn *c, size_t n);

/*
 * Returns a zeroed connection (slot and a new generation set), or NULL on
 * -ENOMEM. The table grows by doubling, so this allocates only when the
 * worker holds more connections than ever before.
 */
struct conn *conn_table_get(struct conn_table *t);

/* Returns the slot; c stays allocated for the slot's next connection. */
void conn_table_put(struct conn_table *t, struct conn *c);

/* The live connection in slot with generation gen, or NULL if stale. */
struct conn *conn_table_find(const struct conn_table *t, uint32_t slot,
			     uint32_t gen);

void conn_table_destroy(struct conn_table *t);

void conn_list_push(struct conn_list *l, struct conn *c);
void conn_list_remove(struct conn_list *l, struct conn *c);

/* Puts a new connection on the idle list, active as of now_ms. */
void conn_lists_add(struct conn_lists *ls, struct conn *c, uint64_t now_ms);

/* Takes c off whichever list it is on. */
void conn_lists_remove(struct conn_lists *ls, struct conn *c);

/* Records activity on c, for the idle timeout (O(1), at most once a ms). */
void conn_touch(struct conn_lists *ls, const struct options *o, struct conn *c,
		uint64_t now_ms);

/*
 * After the -n'th echo is out: sends our FIN (the client still gets every
 * byte) and moves c from the idle list to the linger list, where it waits
 * for the client's close while its input is read and discarded.
 */
void conn_finish_limit(struct conn_lists *ls, struct conn *c, uint64_t now_ms);

/*
 * The next connection whose idle or linger time ran out by now_ms, with
 * the reason in *why, or NULL. The caller closes it (taking it off its
 * list) before asking again.
 */
struct conn *conn_expired(const struct conn_lists *ls, const struct options *o,
			  uint64_t now_ms, const char **why);

/* When the next idle or linger time runs out; UINT64_MAX if never. */
uint64_t conn_next_deadline(const struct conn_lists *ls,
			    const struct options *o);

/* Logs the per-connection counts at close (-v). */
void conn_log_close(const struct conn *c, const char *why);

#endif
