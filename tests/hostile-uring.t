#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""hostile-uring.t - issue 12, failure 1: clients that fill io_uring's
provided buffers and then reset must not stop a worker for good.

One worker with a ring of 2 buffers: eight clients, each with a 4 KB
receive buffer, send 200 KB without reading and close with a reset (SO_LINGER {1, 0}); then a ring of 4 and 60
such clients. Afterwards a new client's echo must come within a deadline,
echod's descriptors must be back to what it held before, and none of its
sockets may stay in CLOSE-WAIT. Before the loop core, connections waiting
for a buffer kept the buffers they held when they were reset, and the
worker stopped reading for good. Run on epoll too, where the same clients
must leave nothing behind either."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
from soaklib import (fresh_echo, reset_close, start_echod,  # noqa: E402
                     settle_baseline, settled)

SIZE = 200 * 1024
WAVES = 40


def hostile_client(addr, data, rcvbuf, errors):
    """Sends data without reading a byte of the echo, then resets. A small
    receive buffer (a small advertised window) keeps echod's sends to it
    in flight, with the ring buffers they were received into."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(5)
        s.connect(addr)
    except OSError as e:
        errors.append("connect: %s" % e)
        return
    # Resets as soon as echod has taken it all (or stopped taking), so
    # that the reset meets echod's sends to this client still in flight.
    try:
        fill_until_blocked(s, data, quiet=0.3, limit=5)
    except OSError as e:
        errors.append("send: %s" % e)
    reset_close(s)


def wave(addr, nclients, rcvbuf):
    data = pattern(SIZE, seed=7)
    errors = []
    in_threads([(hostile_client, (addr, data, rcvbuf, errors))] * nclients, 30)
    return errors


def test(backend, nbuf, nclients):
    srv = start_echod("-t", "1", "--uring-buffers", str(nbuf), backend=backend)
    pid = srv.proc.pid
    base = settle_baseline(pid)
    name = "%s, %d buffers, %d resetting clients" % (backend, nbuf, nclients)
    # Several waves with a 4 KB window (echod's sends stay in flight),
    # the last with the default one (the bytes wait in its pending
    # buffers instead): the stuck state comes from a race (the old code
    # stuck within 40 waves in most runs), and a worker that survives one
    # wave must survive the next.
    errors, served = [], True
    for i in range(WAVES):
        errors += wave(srv.addr(), nclients, 4096 if i < WAVES - 1 else 0)
        served = fresh_echo(srv.addr(), timeout=5.0)
        if not served:
            break
    ok(not errors, "%s: every hostile client sent and reset" % name, *errors[:3])
    ok(served, "%s: after each of %d waves a new client's echo comes within 5 s" % (name, WAVES),
       "stuck after wave %d" % (i + 1))
    fds, cw = settled(pid, base, timeout=10.0)
    eq(fds, base, "%s: echod's descriptors back to the %d it had before" % (name, base))
    ok(not cw, "%s: no socket of echod left in CLOSE-WAIT" % name, *cw[:5])
    ok(srv.alive(), "%s: echod still running" % name)
    srv.stop()


def both(backend):
    test(backend, 2, 8)
    test(backend, 4, 60)


for_each_backend(both)
done_testing()
