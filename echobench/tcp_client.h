// SPDX-License-Identifier: BSD-2-Clause
/* tcp_client.h - the TCP client loop, as a table for lg_start. */
#ifndef ECHOBENCH_TCP_CLIENT_H
#define ECHOBENCH_TCP_CLIENT_H

struct lg_ops;

extern const struct lg_ops tcp_client_ops;

#endif
