// SPDX-License-Identifier: BSD-2-Clause
/*
 * control.h - the --control listener: HTTP on a listener of its own (a
 * TCP address, or a unix socket whose file mode is its access control),
 * never the metrics one, so that a scraper cannot change the service.
 * It reads and changes the fault registry (fault.h) while echod serves:
 *   GET /faults            200, the set as JSON
 *   PUT /faults            the set replaced by the body's specs, one a
 *                          line ('#' lines and blank ones skipped): 200
 *   POST /faults           one spec added: 201
 *   DELETE /faults/NAME    204, or 404
 * A bad spec is 400 with its one-line error, a name taken 409, more than
 * FAULT_MAX faults 507.
 */
#ifndef ECHOD_CONTROL_H
#define ECHOD_CONTROL_H

struct control;
struct fault_registry;

/* Whether text is "ADDRESS:PORT" or "unix:PATH": 0 or -EINVAL. */
int control_check_addr(const char *text);

/*
 * Listens at text (control_check_addr's forms) before anything else is
 * announced, so that an address in use fails echod's start; the
 * listener is in *fd. Returns the state for control_start, or NULL with
 * *err set to a -errno.
 */
struct control *control_open(const char *text, int *fd, int *err);

/* Starts the thread serving r. Returns 0, or -errno after freeing c. */
int control_start(struct control *c, struct fault_registry *r);

/* Stops the thread, closes its sockets (removes a unix socket's file). */
void control_stop(struct control *c);

#endif
