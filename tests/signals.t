#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""signals.t - what echod does with the signals daemons are sent: SIGHUP
(a log line) and SIGUSR1 (the table) never stop it; SIGTERM and SIGINT stop
accepting, give open connections --grace seconds to be echoed and closed
by their peers, then close the rest and exit 0; a second signal stops it
at once. Once per backend."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def served(s, data=b"ping"):
    s.sendall(data)
    return recv_exact(s, len(data), timeout=3) == data


def exits_within(srv, timeout):
    """The exit status if srv exits within timeout, else None."""
    try:
        return srv.proc.wait(timeout=timeout)
    except Exception:
        return None


def test_harmless(backend):
    srv = Echod("-t", "2", backend=backend)
    c = connect(srv.addr())
    # Accepted before the table is asked for: connect() returns at the
    # handshake, which the kernel completes before echod accepts.
    ok(served(c), "%s: the connection is served" % backend)
    # SIGHUP gets a log line; SIGUSR1 prints the table of connections.
    for sig, said in ((signal.SIGHUP, r"^echod: SIGHUP: .*still serving$"),
                      (signal.SIGUSR1, r"^echod: connections: \d+ open")):
        n = len(srv.lines)
        srv.proc.send_signal(sig)
        ok(srv.wait_log(said, start=n),
           "%s: %s is answered" % (backend, sig.name), srv.log())
        ok(srv.alive() and served(c), "%s: %s does not stop echod; it still echoes" % (backend, sig.name))
        ok(served(connect(srv.addr())), "%s: ... and still accepts" % backend)
    c.close()
    eq(srv.stop(), 0, "%s: SIGTERM after them: exit 0" % backend)


def test_grace(backend):
    for sig in (signal.SIGTERM, signal.SIGINT):
        srv = Echod("-t", "2", "--grace", "30", backend=backend)
        c = connect(srv.addr())
        ok(served(c), "%s: connected before %s" % (backend, sig.name))
        srv.proc.send_signal(sig)
        ok(srv.wait_log(r"%s: no new connections; 1 open get up to 30 s" % sig.name),
           "%s: %s starts the grace" % (backend, sig.name), srv.log())
        try:
            connect(srv.addr(), timeout=3).close()
            ok(False, "%s: %s: a new client is refused" % (backend, sig.name))
        except (ConnectionRefusedError, ConnectionResetError):
            ok(True, "%s: %s: a new client is refused" % (backend, sig.name))
        ok(served(c, b"still there"), "%s: %s: the open connection is still echoed" % (backend, sig.name))
        ok(srv.alive(), "%s: %s: echod waits for it" % (backend, sig.name))
        c.close()
        eq(exits_within(srv, 5), 0, "%s: %s: exit 0 as soon as the peer closed" % (backend, sig.name))


def test_grace_ends(backend):
    srv = Echod("-t", "1", "--grace", "1", backend=backend)
    c = connect(srv.addr())
    served(c)
    start = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    eq(exits_within(srv, 10), 0, "%s: a peer that never closes: exit 0 after --grace 1" % backend)
    took = time.monotonic() - start
    ok(took >= 0.9, "%s: ... not before the grace ran out (%.1f s)" % (backend, took))
    ok(closed_within(c, 3), "%s: ... and its connection is closed" % backend)
    ok(srv.wait_log(r"grace over: closing 1 connections"), "%s: ... which is logged" % backend, srv.log())
    c.close()


def test_second_signal(backend):
    srv = Echod("-t", "2", "--grace", "60", backend=backend)
    c = connect(srv.addr())
    served(c)
    srv.proc.send_signal(signal.SIGTERM)
    srv.wait_log(r"no new connections")
    srv.proc.send_signal(signal.SIGINT)
    eq(exits_within(srv, 5), 0, "%s: a second signal during the grace stops echod at once, exit 0" % backend)
    ok(closed_within(c, 3), "%s: ... closing the open connection" % backend)
    ok(srv.wait_log(r"SIGINT again: stopping now"), "%s: ... which is logged" % backend, srv.log())
    c.close()


for_each_backend(test_harmless)
for_each_backend(test_grace)
for_each_backend(test_grace_ends)
for_each_backend(test_second_signal)
done_testing()
