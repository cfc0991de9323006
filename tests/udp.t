#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""udp.t - datagram echo (-u): each datagram back whole, as one datagram,
from the address it was sent to; loop-prone and non-unicast sources refused;
the per-source rate limit holds and recovers; floods never block TCP or grow
memory; once per backend."""
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def udp_sock(family=socket.AF_INET, bind=None):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    if bind:
        s.bind(bind)
    s.settimeout(2)
    return s


def roundtrip(s, data, addr, timeout=2.0):
    """Sends one datagram; returns (reply, from) or (None, None)."""
    s.settimeout(timeout)
    s.sendto(data, addr)
    try:
        return s.recvfrom(70000)
    except socket.timeout:
        return None, None


def test_boundaries(backend):
    srv = Echod("-u", "-t", "1", "--udp-rate", "0", backend=backend)
    ok(srv.udp and srv.tcp, "%s: -u listens on udp and tcp, one line each" % backend, srv.log())
    eq(srv.udp[0][1], srv.tcp[0][1], "%s: udp on the same port as tcp" % backend)
    for family, host, top in ((socket.AF_INET, "127.0.0.1", 65507), (socket.AF_INET6, "::1", 65527)):
        if family == socket.AF_INET6 and not have_ipv6():
            skip("%s: IPv6 datagrams" % backend, "no IPv6")
            continue
        s = udp_sock(family)
        good = True
        for size in (0, 1, 100, 1400, 8192, 65000, top):
            data = pattern(size, seed=size)
            reply, frm = roundtrip(s, data, (host, srv.port))
            if reply != data:
                good = ok(False, "%s: %s %d-byte datagram echoed whole" % (backend, host, size),
                          "got %s" % (None if reply is None else len(reply)))
        if good:
            ok(True, "%s: %s datagrams of 0 to %d bytes come back whole, one each" % (backend, host, top))
        # Three back to back keep their boundaries.
        for d in (b"one", b"", b"three"):
            s.sendto(d, (host, srv.port))
        got = [s.recvfrom(100)[0] for _ in range(3)]
        eq(got, [b"one", b"", b"three"], "%s: %s three datagrams back as three, zero-length included" % (backend, host))
        s.close()
    srv.stop()


def test_source_address(backend):
    srv = Echod("-u", "--no-tcp", "-t", "1", backend=backend)
    ok(not srv.tcp, "%s: --no-tcp: no TCP listener" % backend)
    for host in ("127.0.0.1", "127.0.0.2"):
        s = udp_sock()
        reply, frm = roundtrip(s, b"who answers?", (host, srv.port))
        eq((reply, frm), (b"who answers?", (host, srv.port)),
           "%s: a datagram to %s is answered from %s" % (backend, host, host))
        s.close()
    if have_ipv6():
        s = udp_sock(socket.AF_INET6)
        reply, frm = roundtrip(s, b"v6", ("::1", srv.port))
        eq((reply, frm[:2] if frm else None), (b"v6", ("::1", srv.port)), "%s: IPv6 answered from ::1" % backend)
    srv.stop()


# The loop-prone source ports are fixed (7, 19, 37): bound on an address of
# this run's own in 127/8, so that two suites at once (two checkouts, CI and
# a loop) do not take them from each other.
_r = random.Random(os.getpid())
SRC = "127.%d.%d.%d" % (_r.randint(1, 254), _r.randint(0, 255), _r.randint(1, 254))


def test_loop_ports(backend):
    srv = Echod("-u", "-t", "1", "-b", "127.0.0.1", backend=backend)
    for port in (7, 19, 37):
        s = udp_sock(bind=(SRC, port))
        reply, _ = roundtrip(s, b"loop?", ("127.0.0.1", srv.port), 0.5)
        eq(reply, None, "%s: a datagram from port %d (a loop-prone service) is dropped" % (backend, port))
        s.close()
    # Another echod on this port at another address: refused too.
    s = udp_sock(bind=("127.0.0.2", srv.port))
    reply, _ = roundtrip(s, b"self?", ("127.0.0.1", srv.port), 0.5)
    eq(reply, None, "%s: a datagram from our own service port is dropped" % backend)
    s.close()
    s = udp_sock()
    eq(roundtrip(s, b"fine", ("127.0.0.1", srv.port))[0], b"fine", "%s: an ordinary port is answered" % backend)
    s.close()
    ok(srv.wait_log(r"udp: drop from %s:7: loop-prone source port" % re.escape(SRC)),
       "%s: the refusal is logged" % backend)
    srv.stop()
    ok(re.search(r"udp: \d+ datagrams received, 1 echoed, 4 bytes out; dropped: 4 loop-prone port", srv.log()),
       "%s: counters at exit" % backend, srv.log())

    srv = Echod("-u", "-t", "1", "-b", "127.0.0.1", "--udp-deny-ports", "none", backend=backend)
    s = udp_sock(bind=(SRC, 19))
    eq(roundtrip(s, b"allowed", ("127.0.0.1", srv.port))[0], b"allowed",
       "%s: --udp-deny-ports none answers port 19" % backend)
    s.close()
    srv.stop()


def burst(srv, s, datagrams):
    """Sends datagrams to srv back to back, waits for echod's counters to
    show them all received, then for every answer they count echoed.
    Returns (counters, answers that came, seconds from the first send to
    the counters showing them all: at least the time echod took over them)."""
    n = len(datagrams)
    t0 = time.monotonic()
    for d in datagrams:
        s.sendto(d, ("127.0.0.1", srv.port))
    seen = {}

    def received():
        seen.update(srv.totals() or {})
        return seen.get("udp received", 0) >= n

    wait_until(received, 5, 0.01, what="echod's counters to show the %d datagrams received" % n)
    span = time.monotonic() - t0
    got = [0]
    s.setblocking(False)

    def answered():
        try:
            while True:
                s.recvfrom(70000)
                got[0] += 1
        except BlockingIOError:
            pass
        return got[0] >= seen.get("udp echoed", 0)

    wait_until(answered, 5, 0.01, what="the %d answers echod counts echoed" % seen.get("udp echoed", 0))
    s.settimeout(2)
    return seen, got[0], span


def most_passed(rate, cost, span):
    """The most a rate limit lets through in span seconds: a full second's
    budget at once, then rate a second (plus 10 ms: echod's clock is
    CLOCK_MONOTONIC_COARSE)."""
    return int(rate * (1 + span + 0.01) // cost)


def test_rate_limit(backend):
    srv = Echod("-u", "-t", "1", "--udp-rate", "20", backend=backend)
    s = udp_sock()
    seen, got, span = burst(srv, s, [b"%03d" % i for i in range(100)])
    echoed, most = seen.get("udp echoed", 0), most_passed(20, 1, span)
    ok(20 <= echoed <= most,
       "%s: --udp-rate 20: a burst of 100 gets 20 answers, and 20 a second after (%d in the %.2f s echod took; at most %d)"
       % (backend, echoed, span, most), repr(seen))
    eq(got, echoed, "%s: ... each one counted comes back" % backend)
    eq(seen.get("udp over rate"), 100 - echoed, "%s: ... the rest are dropped over rate" % backend)
    # Not a wait for a state: the second passing is what refills the budget.
    time.sleep(1.1)
    eq(roundtrip(s, b"later", ("127.0.0.1", srv.port))[0], b"later", "%s: the budget recovers after a second" % backend)
    s.close()
    srv.stop()
    ok(re.search(r"dropped: 0 loop-prone port, 0 non-unicast source, (\d+) over rate", srv.log()),
       "%s: drops over rate are counted" % backend)

    srv = Echod("-u", "-t", "1", "--udp-rate", "0", "--udp-byte-rate", "10000", backend=backend)
    s = udp_sock()
    seen, got, span = burst(srv, s, [b"x" * 4000] * 5)
    echoed, most = seen.get("udp echoed", 0), most_passed(10000, 4000, span)
    ok(2 <= echoed <= most,
       "%s: --udp-byte-rate 10000: two 4000-byte datagrams pass, not five (%d in the %.2f s echod took; at most %d)"
       % (backend, echoed, span, most), repr(seen))
    eq(got, echoed, "%s: ... each one counted comes back" % backend)
    s.close()
    srv.stop()

    srv = Echod("-u", "-t", "1", "--udp-max-size", "1000", backend=backend)
    s = udp_sock()
    eq(roundtrip(s, b"y" * 1000, ("127.0.0.1", srv.port))[0], b"y" * 1000, "%s: --udp-max-size 1000: 1000 bytes echoed" % backend)
    eq(roundtrip(s, b"y" * 1001, ("127.0.0.1", srv.port), 0.5)[0], None, "%s: 1001 bytes dropped, never echoed cut" % backend)
    s.close()
    srv.stop()
    ok(re.search(r"1 truncated or too large", srv.log()), "%s: and counted" % backend)


def test_flood(backend):
    srv = Echod("-u", "-t", "1", backend=backend)
    base = srv.rss_kib()
    stop = threading.Event()

    def flood():
        socks = [udp_sock() for _ in range(50)]
        payload = b"f" * 1200
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendto(payload, ("127.0.0.1", srv.port))
                except OSError:
                    pass
        for s in socks:
            s.close()

    threads = [threading.Thread(target=flood) for _ in range(2)]
    for t in threads:
        t.start()
    worst = 0.0
    good = 0
    with connect(srv.addr()) as c:
        for i in range(50):
            t0 = time.monotonic()
            c.sendall(b"tcp %02d" % i)
            if recv_exact(c, 6, 5) == b"tcp %02d" % i:
                good += 1
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join(10)
    eq(good, 50, "%s: TCP keeps answering during a UDP flood (worst round trip %.0f ms)" % (backend, worst * 1000))
    ok(worst < 1.0, "%s: ... each within a second" % backend)
    grown = srv.rss_kib() - base
    ok(grown < 8192, "%s: the flood grew RSS by %d KiB only" % (backend, grown))
    ok(srv.alive(), "%s: alive after the flood" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_clients(backend):
    srv = Echod("-u", "-t", "1", backend=backend)
    if need_program("socat"):
        p = subprocess.run(["socat", "-T", "2", "-", "UDP:127.0.0.1:%d" % srv.port],
                           input=b"via socat\n", capture_output=True, timeout=10)
        eq(p.stdout, b"via socat\n", "%s: socat's datagram echoed" % backend)
    else:
        skip("%s: socat" % backend, "socat not installed")
    if need_program("nc"):
        p = subprocess.run(["nc", "-u", "-w", "1", "127.0.0.1", str(srv.port)],
                           input=b"via nc\n", capture_output=True, timeout=10)
        eq(p.stdout, b"via nc\n", "%s: nc -u's datagram echoed" % backend)
    else:
        skip("%s: nc -u" % backend, "nc not installed")
    srv.stop()


def child_pid(pid, timeout=5.0):
    """The first child of pid (echod, started by strace), or None."""
    def first():
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None
    return wait_until(first, timeout)


def can_trace(strace):
    """None if strace can trace here, else why not (no ptrace in a container...)."""
    p = subprocess.run([strace, "-qq", "-e", "trace=none", "true"], capture_output=True, text=True, timeout=10)
    return None if p.returncode == 0 else "strace cannot trace: " + p.stderr.strip()[:200]


def test_close_once(backend):
    """At exit each listening socket is closed once. A second close(N) of
    a number that another worker may have been given meanwhile is the bug;
    with no one reusing N it shows in strace as close(N) = -1 EBADF."""
    name = "%s: at exit no close() fails with EBADF (strace -f)" % backend
    strace = need_program("strace")
    if strace is None:
        skip(name, "strace not installed")
        return
    why = can_trace(strace)
    if why:
        if IN_CI:
            ok(False, name, why)
        else:
            skip(name, why)
        return
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        # LeakSanitizer cannot run under ptrace; the other tests cover leaks.
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        srv = Echod("-u", "-t", "2", backend=backend, env={"ASAN_OPTIONS": asan},
                    prefix=[strace, "-f", "-qq", "-e", "trace=close", "-o", trace])
        s = udp_sock()
        eq(roundtrip(s, b"traced", ("127.0.0.1", srv.port))[0], b"traced", "%s: echo under strace" % backend)
        s.close()
        pid = child_pid(srv.proc.pid)
        if not ok(pid, "%s: echod found under strace" % backend):
            srv.stop()
            return
        # The signal goes to echod itself; strace exits with its status.
        os.kill(pid, signal.SIGTERM)
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        eq(srv.stop(), 0, "%s: echod under strace exits 0 on SIGTERM" % backend)
        with open(trace) as f:
            lines = f.read().splitlines()
    bad = [line for line in lines if "EBADF" in line]
    eq(bad, [], name)
    unclosed = [fd for fd in set(srv.fds) if not any(re.search(r"\bclose\(%d\)\s+= 0" % fd, x) for x in lines)]
    eq(unclosed, [], "%s: every listening descriptor (%d) was closed" % (backend, len(set(srv.fds))))


for_each_backend(test_boundaries)
for_each_backend(test_source_address)
for_each_backend(test_loop_ports)
for_each_backend(test_rate_limit)
for_each_backend(test_flood)
for_each_backend(test_clients)
for_each_backend(test_close_once)
done_testing()
