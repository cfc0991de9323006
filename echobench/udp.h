/* udp.h - the UDP client loop, as a table for lg_start. */
#ifndef ECHOBENCH_UDP_H
#define ECHOBENCH_UDP_H

struct lg_ops;

extern const struct lg_ops udp_ops;

#endif
