// SPDX-License-Identifier: BSD-2-Clause
/* access.c - --allow/--deny rules and the per-source connection count. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "number.h"

/* a's address as 16 bytes, IPv4 as ::ffff:a.b.c.d. */
static void as_v6(const union net_addr *a, uint8_t out[16])
{
	if (a->sa.sa_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a->in.sin_addr, 4);
	} else {
		memcpy(out, a->in6.sin6_addr.s6_addr, 16);
	}
}

int access_add(struct access_rules *rules, const char *cidr, bool deny)
{
	char host[INET6_ADDRSTRLEN + 3];
	struct access_rule *r;
	const char *slash = strchr(cidr, '/'), *errstr;
	union net_addr a;
	long long bits;
	int max;

	if (rules->n == ACCESS_MAX_RULES)
		return -ENOSPC;
	if (strlen(cidr) >= sizeof(host))
		return -EINVAL;
	strcpy(host, cidr);
	if (slash)
		host[slash - cidr] = '\0';
	if (net_parse_addr(host, 0, &a) < 0)
		return -EINVAL;
	max = a.sa.sa_family == AF_INET ? 32 : 128;
	bits = max;
	if (slash) {
		bits = number_parse(slash + 1, 0, max, &errstr);
		if (errstr)
			return -EINVAL;
	}
	r = &rules->rule[rules->n++];
	as_v6(&a, r->net);
	r->bits = (uint8_t)(bits + 128 - max);
	r->deny = deny;
	rules->any_allow |= !deny;
	return 0;
}

static bool matches(const struct access_rule *r, const uint8_t addr[16])
{
	unsigned int whole = r->bits / 8, rest = r->bits % 8;
	uint8_t mask = (uint8_t)(0xff00 >> rest);

	if (memcmp(r->net, addr, whole) != 0)
		return false;
	return rest == 0 || ((r->net[whole] ^ addr[whole]) & mask) == 0;
}

enum access_verdict access_check(const struct access_rules *rules,
				 const union net_addr *peer)
{
	bool allowed = !rules->any_allow;
	uint8_t addr[16];

	as_v6(peer, addr);
	for (int i = 0; i < rules->n; i++) {
		if (!matches(&rules->rule[i], addr))
			continue;
		if (rules->rule[i].deny)
			return ACCESS_DENIED;
		allowed = true;
	}
	return allowed ? ACCESS_OK : ACCESS_NOT_ALLOWED;
}

bool access_allowed(const struct access_rules *rules,
		    const union net_addr *peer)
{
	return access_check(rules, peer) == ACCESS_OK;
}

void access_source_key(const union net_addr *a, uint8_t key[16])
{
	as_v6(a, key);
	if (!IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)key))
		memset(key + 8, 0, 8);
}

/* Where key's probe starts in a table of slots (a power of two). */
static unsigned int home(const struct access_sources *t, const uint8_t key[16],
			 unsigned int slots)
{
	return (unsigned int)siphash24(&t->hkey, key, 16) & (slots - 1);
}

/*
 * The slot holding key, or else the free slot where its probe ends:
 * linear probing over the whole table, which is never more than half
 * full, so the walk always ends.
 */
static unsigned int probe(const struct access_entry *e, unsigned int slots,
			  unsigned int at, const uint8_t key[16])
{
	while (e[at].count && memcmp(e[at].key, key, 16) != 0)
		at = (at + 1) & (slots - 1);
	return at;
}

/* Moves every entry to a table of slots entries. Returns 0 or -ENOMEM. */
static int resize(struct access_sources *t, unsigned int slots)
{
	struct access_entry *e = calloc(slots, sizeof(*e));
	unsigned int at;

	if (e == NULL)
		return -ENOMEM;
	for (unsigned int i = 0; i < t->slots; i++) {
		if (t->entry[i].count == 0)
			continue;
		at = probe(e, slots, home(t, t->entry[i].key, slots),
			   t->entry[i].key);
		e[at] = t->entry[i];
	}
	free(t->entry);
	t->entry = e;
	t->slots = slots;
	return 0;
}

/* Room for one more entry, the table staying at most half full. */
static int make_room(struct access_sources *t)
{
	if (t->entry == NULL) {
		if (siphash_key_random(&t->hkey) < 0)
			return -ENOSPC;
		return resize(t, ACCESS_MIN_SLOTS) < 0 ? -ENOSPC : 0;
	}
	if (2 * (t->used + 1) <= t->slots)
		return 0;
	if (t->slots > UINT32_MAX / 4)
		return -ENOSPC;
	return resize(t, 2 * t->slots) < 0 ? -ENOSPC : 0;
}

/* key's slot: its entry, or a free one (after making room) for it. */
static int slot_for(struct access_sources *t, const uint8_t key[16])
{
	unsigned int i;
	int err;

	if (t->entry) {
		i = probe(t->entry, t->slots, home(t, key, t->slots), key);
		if (t->entry[i].count)
			return (int)i;
	}
	err = make_room(t);
	if (err < 0)
		return err;
	return (int)probe(t->entry, t->slots, home(t, key, t->slots), key);
}

int access_source_take(struct access_sources *t, const uint8_t key[16],
		       unsigned int max)
{
	struct access_entry *e;
	int i, err = 0;

	pthread_mutex_lock(&t->lock);
	i = slot_for(t, key);
	if (i < 0) {
		err = i;
		goto out;
	}
	e = &t->entry[i];
	if (e->count >= max) {
		err = -EUSERS;
		goto out;
	}
	if (e->count == 0) {
		memcpy(e->key, key, 16);
		t->used++;
	}
	e->count++;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

/*
 * Frees slot i, then moves back each entry after it whose probe would
 * otherwise cross the hole, up to the next free slot (Knuth's
 * algorithm R): the table stays as if the entry had never been there.
 */
static void remove_at(struct access_sources *t, unsigned int i)
{
	unsigned int mask = t->slots - 1, j = i, h;

	t->entry[i].count = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (t->entry[j].count == 0)
			break;
		h = home(t, t->entry[j].key, t->slots);
		/* Stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		t->entry[i] = t->entry[j];
		t->entry[j].count = 0;
		i = j;
	}
	t->used--;
}

void access_source_give(struct access_sources *t, const uint8_t key[16])
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	if (t->entry == NULL)
		goto out;
	i = probe(t->entry, t->slots, home(t, key, t->slots), key);
	if (t->entry[i].count == 0 || --t->entry[i].count > 0)
		goto out;
	remove_at(t, i);
	/* Memory follows the open connections down too; failing is harmless. */
	if (t->slots > ACCESS_MIN_SLOTS && 8 * t->used < t->slots)
		resize(t, t->slots / 2);
out:
	pthread_mutex_unlock(&t->lock);
}

unsigned int access_source_count(struct access_sources *t,
				 const uint8_t key[16])
{
	unsigned int n = 0;

	pthread_mutex_lock(&t->lock);
	if (t->entry)
		n = t->entry[probe(t->entry, t->slots, home(t, key, t->slots),
				   key)]
			    .count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

bool access_sources_valid(struct access_sources *t)
{
	unsigned int n = 0;
	bool valid = true;

	pthread_mutex_lock(&t->lock);
	for (unsigned int i = 0; i < t->slots && valid; i++) {
		if (t->entry[i].count == 0)
			continue;
		n++;
		valid = probe(t->entry, t->slots,
			      home(t, t->entry[i].key, t->slots),
			      t->entry[i].key) == i;
	}
	valid = valid && n == t->used && 2 * t->used <= t->slots;
	pthread_mutex_unlock(&t->lock);
	return valid;
}

void access_sources_clear(struct access_sources *t)
{
	pthread_mutex_lock(&t->lock);
	free(t->entry);
	t->entry = NULL;
	t->slots = t->used = 0;
	pthread_mutex_unlock(&t->lock);
}
