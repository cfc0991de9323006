#!/usr/bin/env python3
"""limits.t - --max-conns, --idle-timeout and descriptor exhaustion: clients
beyond a limit are refused at once, never left hanging, and service resumes;
once per backend."""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def test_max_conns(backend):
    srv = Echod("-t", "1", "--max-conns", "3", "-v", backend=backend)
    held = [connect(srv.addr()) for _ in range(3)]
    for i, s in enumerate(held):
        s.sendall(b"hold %d" % i)
        eq(recv_exact(s, 6), b"hold %d" % i, "%s: connection %d of 3 served" % (backend, i + 1))
    extra = connect(srv.addr())
    t0 = time.monotonic()
    ok(closed_within(extra, 3), "%s: the 4th connection is closed at once" % backend)
    ok(time.monotonic() - t0 < 2, "%s: ... within 2 s, not left in the backlog" % backend)
    extra.close()
    ok(srv.wait_log(r"--max-conns 3 reached"), "%s: -v logs the refusal" % backend)
    held.pop().close()
    ok(wait_until(lambda: srv.wait_log(r"close fd", 0.1), 3), "%s: one closes" % backend)
    with connect(srv.addr()) as s:
        s.sendall(b"room again")
        eq(recv_exact(s, 10), b"room again", "%s: a freed slot serves a new client" % backend)
    for s in held:
        s.close()
    srv.stop()


def test_idle_timeout(backend):
    srv = Echod("-t", "1", "--idle-timeout", "1", backend=backend)
    with connect(srv.addr()) as idle, connect(srv.addr()) as busy:
        t0 = time.monotonic()
        for i in range(12):
            busy.sendall(b"ping")
            recv_exact(busy, 4)
            time.sleep(0.2)
        ok(closed_within(idle, 3), "%s: an idle client is closed after --idle-timeout" % backend)
        elapsed = time.monotonic() - t0
        ok(elapsed >= 0.9, "%s: ... not before its time" % backend)
        busy.sendall(b"alive")
        eq(recv_exact(busy, 5), b"alive", "%s: an active client is kept past the timeout" % backend)
    srv.stop()


def test_exhaustion(backend):
    """prlimit --nofile=64 and 200 clients: the server refuses what it
    cannot hold instead of spinning, then serves again once fds free up."""
    if need_program("prlimit") is None:
        skip("%s: descriptor exhaustion" % backend, "prlimit not installed")
        return
    srv = Echod("-t", "1", backend=backend, prefix=["prlimit", "--nofile=64", "--"])
    clients = []
    for i in range(200):
        try:
            clients.append(connect(srv.addr(), 2))
        except OSError:
            pass
    served = refused = 0
    for i, s in enumerate(clients):
        try:
            s.settimeout(2)
            s.sendall(b"c%03d" % i)
            got = recv_exact(s, 4, 2)
            if got == b"c%03d" % i:
                served += 1
            else:
                refused += 1
        except OSError:
            refused += 1
    ok(served >= 20, "%s: about 60 of 200 clients are served under 64 fds (%d)" % (backend, served))
    eq(served + refused, len(clients), "%s: every other client was refused, none hangs" % backend)
    ok(srv.wait_log(r"refusing clients until descriptors free up", 1),
       "%s: the exhaustion is logged" % backend)
    ticks = srv.cpu_ticks()
    time.sleep(1.0)
    used = srv.cpu_ticks() - ticks
    ok(used <= 10, "%s: no CPU spinning while exhausted (%d ticks in 1 s)" % (backend, used))
    for s in clients:
        s.close()
    time.sleep(0.3)
    with connect(srv.addr()) as s:
        s.sendall(b"back")
        eq(recv_exact(s, 4, 5), b"back", "%s: service resumes when descriptors free up" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
for_each_backend(test_max_conns)
for_each_backend(test_idle_timeout)
for_each_backend(test_exhaustion)
done_testing()
