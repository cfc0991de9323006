// SPDX-License-Identifier: BSD-2-Clause
/*
 * notify.h - telling systemd how echod is (READY=1, STATUS=, STOPPING=1)
 * over NOTIFY_SOCKET, by sd_notify(3)'s documented protocol: one
 * datagram of "KEY=value" lines to an AF_UNIX socket.
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

#include <stdbool.h>

/*
 * Takes NOTIFY_SOCKET from the environment (and out of it, as
 * sd_notify's unset_environment does). Returns 0, or -EINVAL when it
 * names no address this can use (not "/path" or "@abstract").
 */
int notify_init(void);

/* Whether NOTIFY_SOCKET was set. */
bool notify_enabled(void);

/* Sends state ("READY=1\nSTATUS=..."); returns 0 or -errno; 0 if unset. */
int notify_send(const char *state);

#endif
