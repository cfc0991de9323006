// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_internal.h - what the loop core's files (core.c, core_mem.c,
 * core_serve.c, core_proxy.c, admission.c) call of one another; no
 * backend includes it.
 * The calls go one way: core.c calls the others, core_serve.c calls
 * core_proxy.c and core_mem.c, core_proxy.c calls admission.c, which
 * calls none of them.
 */
#ifndef ECHOD_CORE_INTERNAL_H
#define ECHOD_CORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "close_reason.h"

struct conn;
struct core;
union net_addr;

/*
 * The access policies, before the connection takes anything: --allow,
 * --deny, then a --max-per-source place (CONN_SOURCE in *flags). Returns
 * false when peer is refused, counted by reason and logged.
 */
bool admission_check(struct core *k, const union net_addr *peer, int lfd,
		     uint32_t *flags);

/* Gives back peer's --max-per-source place. */
void admission_give_source(struct core *k, const union net_addr *peer);

/*
 * Counts a refusal of peer by reason, and logs it at most once a second
 * per worker, so a flood of refused clients cannot flood the log; the
 * next line says how many went unlogged.
 */
void admission_refused(struct core *k, const union net_addr *peer, int lfd,
		       enum refuse_reason why);

/* c waits for memory no more; its place in the queue, if any, is skipped. */
void core_mem_unwait(struct core *k, struct conn *c);

/*
 * Puts c on the linger list, its time from now, and has core_due look
 * in this wakeup (with --linger 0 it is due at once). In core_serve.c,
 * which lingers too: core.c calls into it, never the other way.
 */
void core_linger(struct core *k, struct conn *c);

/* The next connection that waited for memory and now has some. */
struct conn *core_mem_resumed(struct core *k);

/*
 * At admit, with --proxy-protocol (balancer: c comes from a --proxy-from
 * one, and the access rules wait for its header), a fault registry, or
 * on a --tls-port listener (tls):
 * c is served by the core from now on, its first wake-up set. Returns 0
 * or -ENOMEM.
 */
int core_serve_open(struct core *k, struct conn *c, bool balancer, bool tls);

/*
 * At c's wake-up (and after its events): its header looked at again, or
 * what of its queue may go sent, ended when a fault says so; its next
 * wake-up set. Returns why c must close, or CLOSE_NONE.
 */
enum close_reason core_serve_step(struct core *k, struct conn *c,
				  uint64_t now_ns);

/*
 * c's PROXY header (CONN_PROXY_WAIT), looked at again: once it is in and
 * applied (or none is due), CONN_PROXY_WAIT goes. Returns why c must
 * close, or CLOSE_NONE.
 */
enum close_reason core_proxy_step(struct core *k, struct conn *c,
				  uint64_t now_ns);

/* When c's header must be in: --proxy-timeout after its accept. */
uint64_t core_proxy_deadline_ns(const struct core *k, const struct conn *c);

#endif
