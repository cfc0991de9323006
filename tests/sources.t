#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""sources.t - the tables keyed by client addresses under pressure: the
--max-per-source table admits a new source however many sources hold a
connection and whatever addresses they chose, and a source's UDP budget is
not reset by other sources, however many or whichever.

Sources are addresses of 127/8 (Linux routes all of it to lo): a client
socket binds one before it connects or sends. The chosen addresses are
those that collided with a victim under the unkeyed hash (FNV-1a of the
16-byte IPv4-mapped address, modulo the old table's size) that echod used
before its tables were keyed; with a random key they are just addresses."""
import os
import resource
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

VICTIM = "127.0.0.2"
IP_PKTINFO = 8  # <linux/in.h>; Python's socket module lacks it


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def source(i):
    """The i-th source address: 127.1.0.1 on, skipping .0 and .255."""
    i, z = divmod(i, 254)
    x, y = divmod(i, 256)
    return "127.%d.%d.%d" % (1 + x, y, 1 + z)


def fnv_slot(ip, slots):
    """Where the old table put ip: FNV-1a over ::ffff:ip, modulo slots."""
    h = 2166136261
    for b in b"\0" * 10 + b"\xff\xff" + socket.inet_aton(ip):
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h % slots


def colliding(victim, slots, n):
    """n sources the old table put in the victim's home slot."""
    want, found, i = fnv_slot(victim, slots), [], 0
    while len(found) < n:
        if fnv_slot(source(i), slots) == want:
            found.append(source(i))
        i += 1
    return found


def tcp_from(srv, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    return s


def served_all(socks, timeout=10):
    """Which of socks echo one byte back: a list of booleans. Refused ones
    are closed by echod (end-of-file or a reset) without an echo."""
    res = {}
    for s in socks:
        try:
            s.sendall(b"x")
        except OSError:
            res[s] = False
    p = select.poll()
    by_fd = {}
    for s in socks:
        if s not in res:
            p.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
    deadline = time.monotonic() + timeout
    while len(res) < len(socks) and time.monotonic() < deadline:
        for fd, _ in p.poll(50):
            s = by_fd[fd]
            try:
                res[s] = s.recv(1) == b"x"
            except OSError:
                res[s] = False
            p.unregister(fd)
    return [res.get(s, False) for s in socks]


def test_fill():
    """More sources than the old table's 8192 entries, one connection
    each: all admitted, and a new source after them too."""
    limit = raise_nofile()
    n = min(9000, limit - 500)
    srv = Echod("-t", "2", "--max-per-source", "1", "--max-conns", str(n + 100))
    socks = [tcp_from(srv, source(i)) for i in range(n)]
    served = served_all(socks).count(True)
    eq(served, n, "%d sources with one connection each: all admitted" % n)
    late = [tcp_from(srv, source(n + i)) for i in range(5)]
    eq(served_all(late).count(True), 5, "... and 5 new sources after them")
    again = tcp_from(srv, source(0))
    eq(served_all([again]), [False], "... while a source's second connection is still refused (--max-per-source 1)")
    for s in socks + late + [again]:
        s.close()
    srv.stop()


def test_collide():
    """Sources chosen to share the victim's slot: the victim is admitted."""
    fillers = colliding(VICTIM, 8192, 32)
    srv = Echod("-t", "1", "--max-per-source", "100")
    socks = [tcp_from(srv, a) for a in fillers]
    eq(served_all(socks).count(True), 32, "32 sources that shared the victim's slot in the old table: admitted")
    victim = [tcp_from(srv, VICTIM) for _ in range(5)]
    eq(served_all(victim).count(True), 5, "... and the victim's 5 connections beside them (limit 100)")
    for s in socks + victim:
        s.close()
    srv.stop()


def udp_from(src):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 0))
    u.setblocking(False)
    return u


def drain(u):
    n = 0
    try:
        while True:
            u.recv(100)
            n += 1
    except BlockingIOError:
        pass
    return n


def settled(srv):
    """Waits until echod's received count stops moving."""
    last = [-1]

    def still():
        now = (srv.totals() or {}).get("udp received", 0)
        same, last[0] = now == last[0], now
        return same

    wait_until(still, 10, 0.05, what="echod's UDP counters to settle")


def udp_victim(what, rounds, burst, fillers_at):
    """With --udp-rate 100, the victim sends rounds bursts of burst
    datagrams, and fillers_at(i, to) sends other sources' datagrams after
    burst i. The victim's answers must stay within its own budget: 100 at
    once, then 100 a second (plus 10 ms: echod's clock is coarse)."""
    srv = Echod("-u", "-t", "1", "--udp-rate", "100")
    to = ("127.0.0.1", srv.port)
    victim = udp_from(VICTIM)
    got = 0
    t0 = time.monotonic()
    for i in range(rounds):
        for _ in range(burst):
            victim.sendto(b"v", to)
        fillers_at(i, to)
        if i % 20 == 19 or burst > 1:
            time.sleep(0.001)
            got += drain(victim)
    settled(srv)
    span = time.monotonic() - t0
    time.sleep(0.05)
    got += drain(victim)
    most = int(100 * (1 + span + 0.01))
    ok(100 <= got <= most, "%s: the victim's %d datagrams got %d answers in %.2f s (its budget: 100 to %d)"
       % (what, rounds * burst, got, span, most))
    victim.close()
    srv.stop()


def test_udp_colliding():
    socks = [udp_from(a) for a in colliding(VICTIM, 4096, 8)]

    def fill(i, to):
        for s in socks:
            s.sendto(b"f", to)
        for s in socks:
            drain(s)

    udp_victim("8 sources that shared the victim's slot in the old table, after each datagram", 2000, 1, fill)
    for s in socks:
        s.close()


def pktinfo(src):
    """The control message that makes a datagram leave from src (a local
    address): one socket sends as every source, no descriptor each."""
    return [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, socket.inet_aton(src), b"\0" * 4))]


def test_udp_many():
    """More distinct sources than a worker's table has entries (4096),
    between the victim's bursts: the table is full of sources as recent
    as the victim, and the victim keeps its own budget."""
    sender = udp_from("127.0.0.1")
    per_round = 4200

    def fill(i, to):
        for k in range(per_round):
            sender.sendmsg([b"f"], pktinfo(source(per_round * i + k)), 0, to)
        drain(sender)

    udp_victim("%d new sources after each burst of 200" % per_round, 6, 200, fill)
    sender.close()


raise_nofile()
test_collide()
test_fill()
test_udp_colliding()
test_udp_many()
done_testing()
