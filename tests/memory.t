#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""memory.t - the --memory budget, once per backend, two workers sharing it:
clients that never read push echod to its budget, and it degrades by
backpressure, never by failing: nothing is closed or dropped, clients that
read their echoes keep being served, memory stays within the budget plus a
stated overhead, every echo arrives once the non-readers read, and memory
goes back after the load, with a connection still open. Also: a bad
--memory value is a usage error."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

BUDGET = 1 << 20
WORKERS = 2
NON_READERS = 20
READERS = 8
ROUNDS = 100
# Each non-reader could hold this much of echod's memory without a budget.
MAX_PENDING = 1 << 20
# What each sends at most: past what the kernel's socket buffers take
# (about 6 MiB each here, with the client's own buffers at 64 KiB, small
# enough to make the kernel's part smaller, large enough for the read back
# to go at loopback speed).
PER_CLIENT = 16 << 20
CLIENT_BUF = 65536
# What echod may hold past the budget, by design (README, "Memory follows
# the load"): each worker's reserve to receive into (io_uring: 4 ring
# buffers of 64 KiB; epoll: what a read into its 64 KiB buffer leaves
# behind when the socket takes none of it), and at most two pages per
# client that stopped reading while memory was short.
RESERVE = {"io_uring": 4 * 65536, "epoll": 65536}
PER_STUCK = 2 * 4096
# Resident memory besides: the read buffers, thread stacks touched, the
# slot table and allocator arenas: 4 MiB, a fifth of what the non-readers
# would hold at --max-pending without a budget (20 MiB).
SLACK_KIB = 4096


def table(srv):
    """Sends SIGUSR1; returns (bytes held, budget, waits, closes by reason)."""
    start = len(srv.lines)
    srv.proc.send_signal(signal.SIGUSR1)
    if not srv.wait_log(r"^echod: end of table$", 5, start):
        return None
    held = budget = waits = 0
    closes = {}
    for line in srv.lines[start:]:
        m = re.match(r"memory: (\d+) bytes held .*, budget (\d+)", line)
        if m:
            held, budget = int(m.group(1)), int(m.group(2))
        m = re.search(r"closed \(([^)]*)\), \d+ backpressure pauses, (\d+) memory waits", line)
        if m:
            waits += int(m.group(2))
            for part in m.group(1).split(", "):
                n, _, why = part.partition(" ")
                closes[why] = closes.get(why, 0) + int(n)
    return held, budget, waits, closes


def fill_all(socks, data, quiet=0.5, limit=20.0, enough=lambda: True):
    """Sends to every socket, round robin, without reading, until none has
    taken a byte for `quiet` seconds and enough() is true (or every socket
    has taken all of data, or `limit` passed); returns the bytes each took.
    enough() lets a test wait for echod to hold what the kernel passed on:
    on a loaded machine the sockets can stand still for `quiet` before
    echod's workers have run at all."""
    sent = [0] * len(socks)
    last = time.monotonic()
    end = last + limit
    while (time.monotonic() - last < quiet or not enough()) and time.monotonic() < end:
        took = False
        for i, s in enumerate(socks):
            if sent[i] == len(data):
                continue
            try:
                n = s.send(data[sent[i]:sent[i] + 65536])
            except BlockingIOError:
                continue
            sent[i] += n
            took = True
            last = time.monotonic()
        if all(n == len(data) for n in sent):
            break
        if not took:
            time.sleep(0.01)  # leave the CPU to echod while all are blocked
    if not enough():
        diag("memory.t: after %.0f s of sending, echod's memory has not grown as wanted" % limit, sys.stderr)
    return sent


def ping_pong(addr, seed, errors):
    try:
        with connect(addr, timeout=20) as s:
            for r in range(ROUNDS):
                msg = pattern(1000 + r, seed=seed * 1000 + r)
                s.sendall(msg)
                if recv_exact(s, len(msg), 20) != msg:
                    errors.append("reader %d: round %d wrong or late" % (seed, r))
                    return
    except OSError as e:
        errors.append("reader %d: %s" % (seed, e))


def read_back(s, want, errors, i):
    got = recv_exact(s, len(want), 30)
    if got != want:
        errors.append("non-reader %d: %d of %d bytes back, %s" % (
            i, len(got), len(want), "a prefix" if want.startswith(got) else "differing"))
        return
    s.shutdown(socket.SHUT_WR)
    rest, eof = recv_until_eof(s, 10)
    if rest or not eof:
        errors.append("non-reader %d: no clean end after its echoes" % i)


def grown(srv, base, peak, min_kib):
    """A predicate for fill_all: echod's RSS has grown past min_kib over
    base; peak[0] keeps the largest growth seen."""
    def past():
        if SANITIZED:
            return True
        peak[0] = max(peak[0], srv.rss_kib() - base)
        return peak[0] > min_kib
    return past


def load(srv, min_kib=None):
    """Connects the non-readers and fills them until blocked and echod's
    RSS has grown past min_kib; returns (sockets, what each sent, the
    data, RSS before, RSS growth at the peak)."""
    base = srv.rss_kib()
    data = pattern(PER_CLIENT, seed=7)
    socks = []
    for i in range(NON_READERS):
        s = connect(srv.addr())
        # Small client buffers: the server's sends stall soon, so echod's
        # memory, not the kernel's socket buffers, is what fills.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_BUF)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_BUF)
        s.setblocking(False)
        socks.append(s)
    peak = [0]
    enough = grown(srv, base, peak, min_kib) if min_kib is not None else (lambda: True)
    sent = fill_all(socks, data, enough=enough)
    return socks, sent, data, base, max(peak[0], srv.rss_kib() - base)


def drain(backend, socks, sent, data):
    """(2) The non-readers read: every echo arrives, whole and in order."""
    errors = []
    in_threads([(read_back, (s, data[:sent[i]], errors, i)) for i, s in enumerate(socks)], 60)
    ok(not errors, "%s: the %d non-readers get all their echoes (%d KiB) once they read"
       % (backend, NON_READERS, sum(sent) >> 10), *errors[:3])
    for s in socks:
        s.close()


def test_budget(backend):
    srv = Echod("-t", WORKERS, "--memory", "1M", "--max-pending", "1M",
                "--send-timeout", "0", backend=backend)
    socks, sent, data, base, peak = load(srv)
    before = table(srv)
    # (1) At the budget, readers still progress, every byte right.
    errors = []
    in_threads([(ping_pong, (srv.addr(), i, errors)) for i in range(READERS)], 60)
    ok(not errors, "%s: %d ping-pong clients finish %d rounds while %d clients that never read hold the budget"
       % (backend, READERS, ROUNDS, NON_READERS), *errors[:3])
    during = table(srv)
    ok(before is not None and during is not None, "%s: SIGUSR1 prints the memory line" % backend)
    held, budget, waits, _ = during or (0, 0, 0, {})
    eq(budget, BUDGET, "%s: the table shows the budget" % backend)
    ok(waits > 0, "%s: the budget was reached: connections waited for memory (%d waits)" % (backend, waits))
    bound = BUDGET + WORKERS * RESERVE[backend] + NON_READERS * PER_STUCK
    held = max(held, (before or (0,))[0])
    ok(held <= bound, "%s: held %d bytes, within budget + reserve + 2 pages per stuck client (%d)"
       % (backend, held, bound))
    if SANITIZED:
        skip("%s: resident memory bound" % backend, "sanitizer build")
    else:
        peak = max(peak, srv.rss_kib() - base)
        ok(peak <= bound // 1024 + SLACK_KIB, "%s: RSS grew by %d KiB, within that + %d KiB (without the budget: %d KiB)"
           % (backend, peak, SLACK_KIB, NON_READERS * MAX_PENDING // 1024))
    drain(backend, socks, sent, data)
    closes = (table(srv) or (0, 0, 0, {}))[3]
    eq({k: v for k, v in closes.items() if v and k != "eof"}, {},
       "%s: no connection closed but by its client (%s)" % (backend, closes))
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def rss_goes_back(srv, base, peak, min_peak, skipped, what):
    """(3), (4): RSS grew by more than min_peak KiB over base, and comes back
    within 2 MiB of it within 8 s (not measured under a sanitizer)."""
    if SANITIZED:
        skip(skipped, "sanitizer build")
        return
    back = wait_until(lambda: srv.rss_kib() - base < 2048, 8, 0.2)
    ok(peak > min_peak and back, "%s within 2 MiB of the start (peak +%d KiB, now +%d KiB)"
       % (what, peak, srv.rss_kib() - base))


def test_goes_back(backend):
    """(3) The same load under the default budget takes memory; once it
    goes, the memory goes back, though a client stays connected (so not
    only because the worker has no connection left)."""
    srv = Echod("-t", WORKERS, "--max-pending", "1M", "--send-timeout", "0", backend=backend)
    idle = connect(srv.addr())
    socks, sent, data, base, peak = load(srv, 8192)
    drain(backend, socks, sent, data)
    idle.sendall(b"still here")
    eq(recv_exact(idle, 10), b"still here", "%s: the client that stayed is served" % backend)
    rss_goes_back(srv, base, peak, 8192, "%s: memory goes back" % backend,
                  "%s: with a client still connected, RSS goes back" % backend)
    idle.close()
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_burst_goes_back(backend):
    """(4) One client's burst, and nothing else: its echoes queued in a
    pooled buffer, which went spare when they drained. The worker has no
    other client and no timer of its own running then (no idle timeout,
    no send timeout), yet the spare goes back within a few trim ticks,
    with the client still connected: the trim planned in a wakeup that
    had nothing else timed to do must wake the worker itself."""
    srv = Echod("-t", "1", "--max-pending", "8M", "--send-timeout", "0",
                "--idle-timeout", "0", backend=backend)
    base = srv.rss_kib()
    with connect(srv.addr()) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_BUF)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_BUF)
        s.setblocking(False)
        data = pattern(PER_CLIENT, seed=11)
        peak = [0]
        sent = fill_all([s], data, enough=grown(srv, base, peak, 4096))[0]
        peak = max(peak[0], srv.rss_kib() - base)
        got = recv_exact(s, sent, 30)
        ok(got == data[:sent], "%s: the burst's %d KiB come back" % (backend, sent >> 10))
        rss_goes_back(srv, base, peak, 4096, "%s: the burst's memory goes back" % backend,
                      "%s: with the client still connected and idle, RSS goes back" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_bad_values():
    for value, why in (("100K", "too small (at least 256K, or 0 for no limit)"),
                       ("lots", "invalid"), ("1T", "invalid"), ("-1", "too small")):
        # Port 0, so that a value wrongly taken starts no server on a
        # port in use; it is then stopped at the deadline, and fails.
        try:
            p = subprocess.run([ECHOD, "--port", "0", "--memory", value],
                               capture_output=True, text=True, timeout=5)
            got = (p.returncode, (p.stderr.splitlines() or [""])[0])
        except subprocess.TimeoutExpired:
            got = ("still running after 5 s", "")
        eq(got, (2, "echod: memory %s: %s" % (value, why)),
           "--memory %s: exit 2, one line saying why (then the usage)" % value)


for_each_backend(test_budget)
for_each_backend(test_goes_back)
for_each_backend(test_burst_goes_back)
test_bad_values()
done_testing()
