// SPDX-License-Identifier: BSD-2-Clause
/*
 * access.h - who may connect: --allow/--deny CIDR rules, and the
 * process-wide count of open connections per source for
 * --max-per-source. Addresses are compared as 16 bytes, IPv4 as
 * IPv4-mapped IPv6, so an IPv4 peer on a dual-stack socket matches the
 * IPv4 rules.
 */
#ifndef ECHOD_ACCESS_H
#define ECHOD_ACCESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "siphash.h"

enum {
	ACCESS_MAX_RULES = 64,
	ACCESS_MIN_SLOTS = 64, /* the per-source table's smallest size */
};

/* One --allow or --deny: a network as 16 bytes and a prefix length. */
struct access_rule {
	uint8_t net[16];
	uint8_t bits; /* 0..128; IPv4 rules are stored as 96 + length */
	bool deny;
};

struct access_rules {
	struct access_rule rule[ACCESS_MAX_RULES];
	int n;
	bool any_allow; /* then what no --allow matches is refused */
};

/*
 * Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host) and
 * appends it to rules. Returns 0, -EINVAL (not a CIDR) or -ENOSPC.
 */
int access_add(struct access_rules *rules, const char *cidr, bool deny);

/*
 * Whether peer may be served: a --deny match refuses (deny wins); else
 * with any --allow it must match one; with none, everyone may.
 */
bool access_allowed(const struct access_rules *rules,
		    const union net_addr *peer);

/* The same, saying why not: access_allowed's verdict with its reason. */
enum access_verdict {
	ACCESS_OK,
	ACCESS_DENIED, /* a --deny rule matched */
	ACCESS_NOT_ALLOWED, /* --allow rules, and none matched */
};

enum access_verdict access_check(const struct access_rules *rules,
				 const union net_addr *peer);

/*
 * The --max-per-source table: (source, count) entries under one lock,
 * process-wide. A source is an IPv4 address or an IPv6 /64. An entry
 * exists only while its source has an open connection, so entries are
 * at most the open connections; the table doubles before it is half
 * full (and halves below an eighth), so a free slot always exists and
 * no set of sources can crowd another out. Slots come from a keyed hash
 * (SipHash, a random key per table) with linear probing over the whole
 * table, and removal shifts the entries after it back (no tombstones).
 * Zeroed, with its lock initialised, it is an empty table: the slots and
 * the key come with the first take.
 */
struct access_entry {
	uint8_t key[16];
	unsigned int count; /* 0 = free slot */
};

struct access_sources {
	pthread_mutex_t lock;
	struct access_entry *entry; /* slots entries, or NULL */
	unsigned int slots; /* a power of two, or 0 */
	unsigned int used; /* entries with a count */
	struct siphash_key hkey;
};

/* The source key of a: IPv4 as IPv4-mapped, IPv6 cut to its /64. */
void access_source_key(const union net_addr *a, uint8_t key[16]);

/*
 * Takes one place for source key when it holds fewer than max. Returns
 * 0, -EUSERS (max reached) or -ENOSPC (no memory for a larger table, or
 * no random key: refused rather than let a source go uncounted).
 */
int access_source_take(struct access_sources *t, const uint8_t key[16],
		       unsigned int max);

/* Gives back a place access_source_take gave. */
void access_source_give(struct access_sources *t, const uint8_t key[16]);

/* The places source key holds now (for tests). */
unsigned int access_source_count(struct access_sources *t,
				 const uint8_t key[16]);

/*
 * Whether the table keeps its invariants: used counts the entries,
 * used <= slots / 2, and every entry is reached from its hash before a
 * free slot (for tests and fuzz/fuzz-tables.c).
 */
bool access_sources_valid(struct access_sources *t);

/* Frees the slots; the table is empty again (its lock stays). */
void access_sources_clear(struct access_sources *t);

#endif
