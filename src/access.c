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

static uint32_t key_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/*
 * The entry of key within its probe window, or else the window's first
 * free one (when want_free), or -1.
 */
static int find(struct access_sources *t, const uint8_t key[16], bool want_free)
{
	uint32_t h = key_hash(key);
	int free_at = -1, i;

	for (int p = 0; p < ACCESS_PROBE; p++) {
		i = (int)((h + (uint32_t)p) % ACCESS_SOURCES);
		if (t->entry[i].count == 0) {
			if (free_at < 0)
				free_at = i;
		} else if (memcmp(t->entry[i].key, key, 16) == 0) {
			return i;
		}
	}
	return want_free ? free_at : -1;
}

int access_source_take(struct access_sources *t, const uint8_t key[16],
		       unsigned int max)
{
	int i, err = 0;

	pthread_mutex_lock(&t->lock);
	i = find(t, key, true);
	if (i < 0) {
		err = -ENOSPC;
	} else if (t->entry[i].count >= max) {
		err = -EUSERS;
	} else {
		if (t->entry[i].count == 0)
			memcpy(t->entry[i].key, key, 16);
		t->entry[i].count++;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

void access_source_give(struct access_sources *t, const uint8_t key[16])
{
	int i;

	pthread_mutex_lock(&t->lock);
	i = find(t, key, false);
	if (i >= 0)
		t->entry[i].count--;
	pthread_mutex_unlock(&t->lock);
}
