#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""access.t - who may connect: --allow/--deny networks (TCP and UDP, IPv4
and IPv6, deny wins), --max-per-source counted across workers and given
back at close, and -4/-6 read back with ss; once per backend.

Sources are 127.0.0.2, 127.0.0.3 and ::1: a refused client gets end-of-file
or a reset and no echo, while a permitted one beside it is served."""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def client(srv, src):
    """A TCP connection to srv from source address src."""
    v6 = ":" in src
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("::1" if v6 else "127.0.0.1", srv.port))
    return s


def served(s, data=b"ping"):
    """True when data comes back on s; False on EOF, reset or silence."""
    try:
        s.sendall(data)
    except OSError:
        return False
    return recv_exact(s, len(data), timeout=3) == data


def refused(s):
    """True when s is closed by echod without one byte echoed."""
    try:
        s.sendall(b"ping")
    except OSError:
        return True
    data, _ = recv_until_eof(s, timeout=3)
    return data == b"" and closed_within(s, 0.1)


def udp_echoes(srv, src, timeout=0.5):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 0))
    u.settimeout(timeout)
    u.sendto(b"dgram", ("127.0.0.1", srv.port))
    try:
        return u.recv(100) == b"dgram"
    except socket.timeout:
        return False
    finally:
        u.close()


def test_allow_deny(backend):
    srv = Echod("-t", "2", "-u", "--allow", "127.0.0.0/8", "--deny", "127.0.0.2/32",
                backend=backend)
    bad, good, v6 = client(srv, "127.0.0.2"), client(srv, "127.0.0.3"), client(srv, "::1")
    ok(refused(bad), "%s: --deny 127.0.0.2/32 inside --allow 127.0.0.0/8: refused (deny wins)" % backend)
    ok(served(good), "%s: 127.0.0.3, allowed, is served beside it" % backend)
    ok(refused(v6), "%s: ::1 matches no --allow: refused" % backend)
    ok(udp_echoes(srv, "127.0.0.3"), "%s: udp from an allowed source is echoed" % backend)
    ok(not udp_echoes(srv, "127.0.0.2"), "%s: udp from a denied source is dropped" % backend)
    ok(srv.wait_log(r"refused 127\.0\.0\.2:\d+ on fd \d+: denied by --deny"),
       "%s: the refusal is logged with peer and reason" % backend, srv.log())
    for s in (bad, good, v6):
        s.close()
    eq(srv.stop(), 0, "%s: exit 0" % backend)
    ok(re.search(r"stopped: 1 connections, 0 refused, 2 denied, ", srv.log()),
       "%s: the exit line counts refusals by reason" % backend, srv.log())
    ok(re.search(r"udp: .* 1 denied, ", srv.log()), "%s: ... and denied datagrams" % backend, srv.log())

    # An IPv4 peer on the dual-stack socket matches IPv4 rules; IPv6 rules work too.
    srv = Echod("-t", "1", "--deny", "::1", "--deny", "127.0.0.2", backend=backend)
    v6, v4, other = client(srv, "::1"), client(srv, "127.0.0.2"), client(srv, "127.0.0.3")
    ok(refused(v6), "%s: --deny ::1 refuses ::1" % backend)
    ok(refused(v4), "%s: --deny 127.0.0.2 refuses it on the dual-stack socket" % backend)
    ok(served(other), "%s: with only --deny, the rest is served" % backend)
    for s in (v6, v4, other):
        s.close()
    srv.stop()


def test_per_source(backend):
    # Two workers: the count must be process-wide, not per worker.
    srv = Echod("-t", "2", "--max-per-source", "2", backend=backend)
    conns = [client(srv, "127.0.0.2") for _ in range(4)]
    results = [served(s) for s in conns]
    eq(results.count(True), 2, "%s: --max-per-source 2, 4 clients from 127.0.0.2: 2 served across workers" % backend)
    ok(all(refused(s) for s, r in zip(conns, results) if not r),
       "%s: the others were closed without an echo" % backend)
    other = [client(srv, "127.0.0.3") for _ in range(2)]
    ok(all(served(s) for s in other), "%s: 127.0.0.3 is still served meanwhile" % backend)
    v6 = [client(srv, "::1") for _ in range(3)]
    # Two workers may accept them in any order: which one is refused varies.
    eq(sorted(served(s) for s in v6), [False, True, True], "%s: ::1 (its /64) gets 2 too" % backend)
    # Closing one gives its place back.
    for s, r in zip(conns, results):
        if r:
            s.close()
            break
    again = wait_until(lambda: served(client(srv, "127.0.0.2")), timeout=5, step=0.1)
    ok(again, "%s: after one closes, 127.0.0.2 is served again" % backend)
    ok(srv.wait_log(r"refused 127\.0\.0\.2:\d+ on fd \d+: over --max-per-source"),
       "%s: the refusal is logged" % backend, srv.log())
    srv.stop()


def ss_listen(port):
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True, timeout=10)
    return sorted(set(line.split()[3] for line in out.stdout.splitlines()))


def test_family(backend):
    if not need_program("ss"):
        skip("%s: -4/-6 read back with ss" % backend, "ss not installed")
        return
    srv = Echod("-t", "1", "-4", backend=backend)
    eq(ss_listen(srv.port), ["0.0.0.0:%d" % srv.port], "%s: -4: ss shows 0.0.0.0 only" % backend)
    ok(re.search(r"listening on tcp 0\.0\.0\.0:\d+ \(fd \d+, IPv4\)", srv.log()), "%s: -4: start-up line" % backend,
       srv.log())
    ok(served(client(srv, "127.0.0.3")), "%s: -4 serves IPv4" % backend)
    srv.stop()

    srv = Echod("-t", "1", "-6", backend=backend)
    eq(ss_listen(srv.port), ["[::]:%d" % srv.port], "%s: -6: ss shows [::] (IPv6 only)" % backend)
    ok(re.search(r"listening on tcp \[::\]:\d+ \(fd \d+, IPv6 only\)", srv.log()),
       "%s: -6: start-up line says IPv6 only" % backend, srv.log())
    ok(served(client(srv, "::1")), "%s: -6 serves ::1" % backend)
    try:
        client(srv, "127.0.0.3").close()
        ok(False, "%s: -6 refuses IPv4 connects" % backend)
    except ConnectionRefusedError:
        ok(True, "%s: -6 refuses IPv4 connects" % backend)
    srv.stop()

    srv = Echod("-t", "1", backend=backend)
    eq(ss_listen(srv.port), ["*:%d" % srv.port], "%s: default: ss shows * (dual-stack)" % backend)
    ok(re.search(r"listening on tcp \[::\]:\d+ \(fd \d+, dual-stack\)", srv.log()),
       "%s: default: start-up line says dual-stack" % backend, srv.log())
    srv.stop()


def test_usage():
    for args, want in ((["--allow", "10.0.0.0/33"], "echod: allow 10.0.0.0/33: not an IPv4 or IPv6 address or network"),
                       (["--deny", "nonsense"], "echod: deny nonsense: not an IPv4 or IPv6 address or network"),
                       (["-4", "-6"], "echod: options -4 and -6: choose one"),
                       (["-4", "-b", "::1"], "echod: bind ::1: not IPv4 (-4)"),
                       (["--max-per-source", "0"], "echod: max-per-source 0: too small")):
        p = subprocess.run([ECHOD, "-p", "0"] + args, capture_output=True, text=True, timeout=10)
        eq((p.returncode, p.stderr.splitlines()[0] if p.stderr else ""), (2, want), "usage: %s" % " ".join(args))


test_usage()
for_each_backend(test_allow_deny)
for_each_backend(test_per_source)
for_each_backend(test_family)
done_testing()
