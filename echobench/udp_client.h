// SPDX-License-Identifier: BSD-2-Clause
/* udp_client.h - the UDP client loop, as a table for lg_start. */
#ifndef ECHOBENCH_UDP_CLIENT_H
#define ECHOBENCH_UDP_CLIENT_H

struct lg_ops;

extern const struct lg_ops udp_client_ops;

#endif
