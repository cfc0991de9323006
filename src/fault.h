// SPDX-License-Identifier: BSD-2-Clause
/*
 * fault.h - the faults echod injects on purpose (--fault, --control): what
 * one is (struct fault, parsed from a TYPE[:PARAM=VALUE,...] spec), and
 * the registry that holds the active set, which main fills at start and
 * the control listener replaces while workers read it. How a fault acts
 * on a connection or a datagram is fault_conn.h's.
 *
 * A set, once published, is never changed: a change makes a copy,
 * publishes it, and the old one is freed when its last reader lets go.
 */
#ifndef ECHOD_FAULT_H
#define ECHOD_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "access.h"
#include "net.h"

enum fault_type {
	FAULT_LATENCY, /* delay, jitter, dist; TCP and UDP */
	FAULT_BANDWIDTH, /* rate */
	FAULT_SLICER, /* size, delay */
	FAULT_LIMIT_DATA, /* bytes, close=fin|rst */
	FAULT_TIMEOUT, /* after */
	FAULT_RESET_PEER, /* after */
	FAULT_SLOW_CLOSE, /* delay */
	FAULT_STALL, /* after (bytes) */
	FAULT_CORRUPT, /* p; TCP and UDP */
	FAULT_LOSS, /* p; UDP */
	FAULT_DUPLICATE, /* p; UDP */
	FAULT_REORDER, /* p, delay; UDP */
	FAULT_NTYPES,
};

enum fault_dist {
	FAULT_DIST_UNIFORM,
	FAULT_DIST_NORMAL, /* jitter is the standard deviation */
	FAULT_DIST_PARETO, /* jitter is the scale of the tail */
};

enum {
	FAULT_NAME_MAX = 32, /* with its NUL */
	FAULT_MAX = 32, /* faults in one set */
	FAULT_SPEC_MAX = 512, /* a spec's bytes, and a formatted one's */
};

/*
 * One --fault. Durations are in microseconds, sizes in bytes, rates in
 * bytes per second; a parameter the type does not take is 0.
 */
struct fault {
	enum fault_type type;
	char name[FAULT_NAME_MAX]; /* name=, else the type's name */
	uint64_t delay_us; /* latency, slicer, slow-close, reorder */
	uint64_t jitter_us; /* latency */
	uint64_t after_us; /* timeout, reset-peer */
	uint64_t rate; /* bandwidth */
	uint64_t size; /* slicer */
	uint64_t bytes; /* limit-data's bytes, stall's after */
	bool rst; /* limit-data: close=rst (else fin) */
	enum fault_dist dist; /* latency */
	double p; /* corrupt, loss, duplicate, reorder: [0, 1] */
	double toxicity; /* [0, 1]: the share of connections or sources */
	struct access_rules from; /* from=CIDR as one allow rule; n = 0: any */
	uint64_t seed; /* seed=, else a random one (printed at start) */
	bool seeded; /* seed= was given */
};

/* The type's name as a spec spells it ("limit-data"), or NULL. */
const char *fault_type_name(enum fault_type t);

/* Whether a type acts on TCP connections, on UDP datagrams. */
bool fault_type_tcp(enum fault_type t);
bool fault_type_udp(enum fault_type t);

/*
 * Whether a change of the set reaches connections already open, from
 * their next echo (latency, bandwidth, corrupt, loss, duplicate,
 * reorder); the others are decided once, when a connection opens.
 */
bool fault_type_live(enum fault_type t);

/*
 * Parses spec ("latency:delay=50ms,jitter=10ms") into f. Durations take
 * us, ms or s (bare: ms), sizes K or M (1024-based), p and toxicity a
 * fraction in [0, 1]. Without seed=, f->seed is taken from getrandom(2)
 * and f->seeded stays false. Returns 0, or -EINVAL with one line naming
 * what is wrong in err ("fault 'latency:delay=x': delay: not a
 * duration").
 */
int fault_parse(const char *spec, struct fault *f, char *err, size_t errlen);

/*
 * Writes f as a spec that fault_parse reads back to the same fault, its
 * seed included. Returns the length, or -ENOSPC when it did not fit n.
 */
int fault_format(const struct fault *f, char *buf, size_t n);

/*
 * An immutable set of faults and, beside it, each fault's activations:
 * connections that took it, or datagrams it acted on. A counter is its
 * own object, referenced by every set that holds a copy of its fault
 * (same name and type), so that a worker counting on a set already
 * replaced still counts where the current set reads; it is freed with
 * the last set that refers to it. Count and read with fault_activate and
 * fault_activations.
 */
struct fault_counter;

struct fault_set {
	_Atomic unsigned int refs;
	uint64_t version; /* the registry's count of publishes */
	unsigned int n;
	struct fault f[FAULT_MAX];
	struct fault_counter *counter[FAULT_MAX]; /* n, one per fault */
};

/* Counts one activation of fault i of s: lock-free, from any thread. */
void fault_activate(const struct fault_set *s, unsigned int i);

/* Fault i's activations, over every set its counter has been in. */
uint64_t fault_activations(const struct fault_set *s, unsigned int i);

/*
 * The process's registry: owned by main, shared by every worker and the
 * control listener. Readers take the current set with fault_acquire;
 * writers are serialized inside.
 */
struct fault_registry;

/* An empty registry. Returns NULL when out of memory. */
struct fault_registry *fault_registry_new(void);
void fault_registry_free(struct fault_registry *r);

/*
 * Whether connections take the fault path at all: some --fault was
 * given, or --control (which may add faults to connections later).
 * Set once by main before the workers start.
 */
void fault_registry_enable(struct fault_registry *r);
bool fault_registry_enabled(const struct fault_registry *r);

/*
 * The version of the current set: changes with every publish, read with
 * one relaxed load so that a connection can see at each echo whether it
 * must look again.
 */
uint64_t fault_version(const struct fault_registry *r);

/* The next connection's ordinal (0, 1, 2...), for fault_applies. */
uint64_t fault_ordinal(struct fault_registry *r);

/* The current set, referenced; never NULL once the registry exists. */
struct fault_set *fault_acquire(struct fault_registry *r);
void fault_release(struct fault_set *s);

/*
 * Changes to the set: each makes a copy of the current set, changes it,
 * and publishes it (serialized). A fault keeps its activation counter
 * across copies while its name and type stay.
 *  - add: -EEXIST (its name is taken; err says so), -ENOSPC (FAULT_MAX);
 *  - remove: -ENOENT;
 *  - replace: the whole set by faults[0, n), names unique (-EEXIST).
 * Return 0 or -errno; -ENOMEM leaves the set as it was.
 */
int fault_add(struct fault_registry *r, const struct fault *f, char *err,
	      size_t errlen);
int fault_remove(struct fault_registry *r, const char *name);
int fault_replace(struct fault_registry *r, const struct fault *faults,
		  unsigned int n, char *err, size_t errlen);

/*
 * Writes s as JSON, for GET /faults:
 * {"version":N,"faults":[{"name":..,"type":..,"spec":..,
 *  "activations":N, and each parameter the type takes},...]}
 */
void fault_set_json(const struct fault_set *s, FILE *f);

/*
 * Whether fault i of s applies to the connection or UDP source peer that
 * is the ordinal'th the process has seen: peer is in from=, and a hash
 * of (seed, ordinal) falls under toxicity. A pure function, so a run
 * with the same seeds and the same clients makes the same choices.
 */
bool fault_applies(const struct fault_set *s, unsigned int i, uint64_t ordinal,
		   const union net_addr *peer);

#endif
