#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""echo.t - RFC 862 echo over TCP: every byte back, in order, for any payload,
any read pace, IPv4 and IPv6; the start-up lines, `echod: ready` last, and
the -v lines and the exit counters; once per backend."""
import ctypes
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def slow_reader(s, n, chunk, pause):
    """Reads n bytes in small pieces with pauses: a client slower than us."""
    got = bytearray()
    deadline = time.monotonic() + 60
    s.settimeout(10)
    while len(got) < n and time.monotonic() < deadline:
        d = s.recv(chunk)
        if not d:
            break
        got += d
        time.sleep(pause)
    return bytes(got)


def served_socket(pid, fd):
    """A duplicate of descriptor fd of process pid (pidfd_getfd(2)), as a socket."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


def test_sockopts(backend):
    """What each served connection carries, read from echod's own descriptor:
    no Nagle (a small echo never waits for the previous one's ACK) and
    urgent bytes in line. Both are set once on the listener, which every
    accepted connection inherits: no call per connection."""
    srv = Echod("-t", "1", "-v", "-b", "127.0.0.1", backend=backend)
    with connect(srv.addr()) as c:
        c.sendall(b"x")
        recv_exact(c, 1)
        m = srv.wait_log(r"accept fd (\d+) ")
        ok(m, "%s: the -v accept line names the descriptor" % backend, srv.log())
        if m:
            with served_socket(srv.proc.pid, int(m.group(1))) as s:
                eq(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1,
                   "%s: the served connection has TCP_NODELAY" % backend)
                eq(s.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE), 1,
                   "%s: the served connection has SO_OOBINLINE" % backend)
    eq(srv.stop(), 0, "%s: SIGTERM: exit 0" % backend)


def test_echo(backend):
    srv = Echod("-t", "1", "-v", backend=backend)
    ok(re.search(r"^echod: listening on tcp \[::\]:\d+ \(fd \d+, dual-stack\)$", srv.log(), re.M),
       "%s: start-up line names protocol, address, port and fd" % backend, srv.log())
    ok(srv.port != 0, "%s: --port 0 gets a real port from the kernel" % backend)

    with connect(srv.addr()) as s:
        s.sendall(b"hello\n")
        eq(recv_exact(s, 6), b"hello\n", "%s: a line comes back" % backend)
        s.sendall(b"\x00\x01\xff\x00binary\x00")
        eq(recv_exact(s, 11), b"\x00\x01\xff\x00binary\x00", "%s: NUL and binary bytes come back" % backend)
        s.sendall(b"x")
        eq(recv_exact(s, 1), b"x", "%s: a single byte comes back" % backend)

    for size in (1, 1000, 65536 + 7, 1 << 20, 8 << 20):
        with connect(srv.addr()) as s:
            data = pattern(size, seed=size)
            back = echo_all(s, data, timeout=60)
            ok(back == data, "%s: %d bytes echoed byte for byte, in order" % (backend, size),
               "got %d bytes, first difference at %s" % (len(back), next(
                   (i for i in range(min(len(back), len(data))) if back[i] != data[i]), "end")))

    # The client writes 4 MiB before reading anything, then reads slowly in
    # small pieces: the server must finish every partial write, in order.
    data = pattern(4 << 20, seed=9)
    with connect(srv.addr()) as s:
        t = threading.Thread(target=lambda: s.sendall(data))
        t.start()
        got = slow_reader(s, len(data), 4096, 0.0002)
        t.join(30)
        ok(got == data, "%s: 4 MiB read slowly in small pieces comes back whole" % backend,
           "got %d of %d bytes" % (len(got), len(data)))

    with connect(srv.addr()) as s:
        s.sendall(b"one")
        recv_exact(s, 3)
        local = s.getsockname()
    m = srv.wait_log(r"close fd (\d+) peer 127\.0\.0\.1:%d \(end of input\): 1 messages, 3 bytes in, 3 bytes out" % local[1])
    ok(m, "%s: -v logs the close with fd, peer and counts" % backend, srv.log()[-800:])
    ok(srv.wait_log(r"accept fd \d+ peer 127\.0\.0\.1:%d on fd %d" % (local[1], srv.fds[0])),
       "%s: -v logs the accept with fd, peer and listening fd" % backend)

    if have_ipv6():
        with connect(("::1", srv.port)) as s:
            s.sendall(b"over IPv6\n")
            eq(recv_exact(s, 10), b"over IPv6\n", "%s: IPv6 client on the dual-stack socket" % backend)
    else:
        skip("%s: IPv6 client" % backend, "no IPv6 on this machine")
    ok(srv.alive(), "%s: server still running" % backend)
    eq(srv.stop(), 0, "%s: SIGTERM: exit status 0" % backend)


def test_bind(backend):
    srv = Echod("-t", "1", "-b", "127.0.0.1", "-b", "::1", backend=backend)
    eq(sorted(h for h, _ in srv.tcp), ["127.0.0.1", "::1"], "%s: -b twice: one listener each" % backend)
    ok(len(set(p for _, p in srv.tcp)) == 1, "%s: both on the chosen port" % backend)
    for host in ("127.0.0.1", "::1"):
        with connect((host, srv.port)) as s:
            s.sendall(host.encode())
            eq(recv_exact(s, len(host)), host.encode(), "%s: echo via %s" % (backend, host))
    eq(srv.stop(), 0, "%s: exit 0" % backend)

    srv = Echod("-t", "1", "-b", "127.0.0.1", backend=backend)
    # Not listening there is a refusal (a reset to the SYN), at once; a
    # timeout or any other error is not that, and fails.
    try:
        connect(("::1", srv.port), timeout=2).close()
        ok(False, "%s: -b 127.0.0.1 does not listen on ::1" % backend, "the connection was accepted")
    except ConnectionRefusedError:
        ok(True, "%s: -b 127.0.0.1 does not listen on ::1" % backend)
    except OSError as e:
        ok(False, "%s: -b 127.0.0.1 does not listen on ::1" % backend, "not a refusal: %r" % e)
    srv.stop()


def test_ready(backend):
    """`echod: ready` comes once, after the last of 8 listening lines (2
    workers x 2 addresses x tcp and udp), and every listener answers at once."""
    hosts = ["127.0.0.1", "::1"] if have_ipv6() else ["127.0.0.1", "127.0.0.2"]
    srv = Echod("-t", "2", "-u", "-b", hosts[0], "-b", hosts[1], backend=backend)
    lines = srv.log().splitlines()
    listening = [i for i, line in enumerate(lines) if " listening on " in line]
    ready = [i for i, line in enumerate(lines) if re.match(READY_RE, line)]
    eq(len(listening), 8, "%s: one listening line per worker, address and protocol" % backend)
    eq(len(ready), 1, "%s: exactly one `echod: ready` line" % backend)
    ok(ready and listening and ready[0] > max(listening),
       "%s: `echod: ready` comes after every listening line" % backend, srv.log())
    answered = []
    for host in hosts:
        with connect((host, srv.port), timeout=2) as s:
            s.sendall(b"tcp")
            answered.append(recv_exact(s, 3, 2) == b"tcp")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.settimeout(2)
            u.sendto(b"udp", (host, srv.port))
            try:
                answered.append(u.recv(10) == b"udp")
            except socket.timeout:
                answered.append(False)
    eq(answered, [True] * 4, "%s: right after ready, tcp and udp echo on both addresses" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_exit_counters(backend):
    """The exit lines show every counter, summed over both workers, at the
    default log level: known traffic gives known numbers."""
    srv = Echod("-t", "2", "-u", "--max-conns", "3", "--framing", "line", "-n", "3", backend=backend)
    a, b, c = (connect(srv.addr()) for _ in range(3))
    a.sendall(b"one\ntwo\n")
    eq(recv_exact(a, 8), b"one\ntwo\n", "%s: a: two lines back" % backend)
    for s, line in ((b, b"p\n"), (c, b"x\n")):
        s.sendall(line)
        eq(recv_exact(s, 2), line, "%s: %r back" % (backend, line))
    with connect(srv.addr()) as d:
        ok(closed_within(d, 3), "%s: a 4th connection is refused (--max-conns 3)" % backend)
    # One send, so one read: lines 2 and 3 reach -n 3 and come back, and
    # the bytes after them are counted in but never echoed.
    b.sendall(b"q\nr\nextra\n")
    eq(recv_until_eof(b, 5), (b"q\nr\n", True), "%s: b: -n 3 echoes two more lines, then EOF" % backend)
    a.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        for d in (b"12345", b"1234567"):
            u.sendto(d, ("127.0.0.1", srv.port))
            try:
                eq(u.recv(100), d, "%s: datagram of %d bytes back" % (backend, len(d)))
            except socket.timeout:
                ok(False, "%s: datagram of %d bytes back" % (backend, len(d)))
    eq(srv.stop(), 0, "%s: SIGTERM: exit 0" % backend)
    b.close()
    c.close()
    stopped = [x for x in srv.lines if " stopped: " in x]
    eq(stopped, ["echod: stopped: 3 connections, 1 refused, 0 denied, 0 over per-source limit, 3 closed, 6 messages, 22 bytes in, 16 bytes out"],
       "%s: accepted, refused, closed, messages, bytes in (8+12+2), bytes out (8+6+2)" % backend)
    udp = [x for x in srv.lines if re.match(r"echod: udp: \d+ datagrams", x)]
    eq([x.partition(";")[0] for x in udp], ["echod: udp: 2 datagrams received, 2 echoed, 12 bytes out"],
       "%s: udp: received, echoed, bytes out" % backend)


def test_fin_after_n(backend):
    """With -n, our FIN follows the n-th echo at once, whatever else the
    worker has to do (here: nothing). On io_uring a send that completes at
    submission is handled at the next wakeup, and when the FIN waited for
    that, it came about 1 s late (the buffer-trim timer). Five clients in
    turn, each on a fresh connection; the median of their waits must be
    well under that."""
    srv = Echod("-t", "1", "--framing", "line", "-n", "2", backend=backend)
    waits = []
    for i in range(5):
        with connect(srv.addr()) as s:
            s.sendall(b"a\n")
            recv_exact(s, 2)
            s.sendall(b"b%d\n" % i)
            got = recv_exact(s, 3)
            echoed = time.monotonic()
            rest, eof = recv_until_eof(s, 5)
            waits.append(time.monotonic() - echoed if got == b"b%d\n" % i and eof and not rest
                         else float("inf"))
    waits.sort()
    ok(waits[2] <= 0.3, "%s: -n 2: EOF right after the 2nd echo (median wait %.3f s of %s)"
       % (backend, waits[2], ", ".join("%.3f" % w for w in waits)))
    eq(srv.stop(), 0, "%s: exit 0" % backend)


for_each_backend(test_echo)
for_each_backend(test_sockopts)
for_each_backend(test_bind)
for_each_backend(test_ready)
for_each_backend(test_exit_counters)
for_each_backend(test_fin_after_n)
done_testing()
