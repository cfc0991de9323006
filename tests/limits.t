#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""limits.t - --max-conns, --idle-timeout and descriptor exhaustion: clients
beyond a limit are refused at once, never left hanging, and service resumes;
once per backend."""
import os
import resource
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
from soaklib import fd_count  # noqa: E402


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


def wait_eof(s, deadline, busy=None):
    """Waits until s sees EOF or a reset, echoing a ping on busy (if any)
    every 0.2 s meanwhile; returns when s closed (monotonic), or None at
    deadline."""
    next_ping = 0.0
    while time.monotonic() < deadline:
        if busy is not None and time.monotonic() >= next_ping:
            busy.sendall(b"ping")
            recv_exact(busy, 4, 1)
            next_ping = time.monotonic() + 0.2
        r, _, _ = select.select([s], [], [], 0.02)
        if r:
            try:
                if s.recv(100) == b"":
                    return time.monotonic()
            except ConnectionResetError:
                return time.monotonic()
    return None


def test_idle_timeout(backend):
    """The idle close comes --idle-timeout after the connection's last
    byte, measured by the client from the echo of that byte to its EOF:
    not before (a 0.1 s allowance for the round trip) and not much after."""
    timeout = 1
    srv = Echod("-t", "1", "--idle-timeout", str(timeout), backend=backend)
    with connect(srv.addr()) as idle, connect(srv.addr()) as busy:
        born = time.monotonic()
        idle.sendall(b"last")
        eq(recv_exact(idle, 4), b"last", "%s: the idle client's last bytes come back" % backend)
        last = time.monotonic()
        closed = wait_eof(idle, last + timeout + 3, busy)
        ok(closed is not None, "%s: an idle client is closed after --idle-timeout" % backend)
        took = closed - last if closed else float("inf")
        ok(timeout - 0.1 <= took <= timeout + 0.5,
           "%s: ... %.3f s after its last byte, within [%.1f, %.1f]" % (backend, took, timeout - 0.1, timeout + 0.5))
        # Keep the busy one going until it has lived 1.5 timeouts. The
        # sleep is the client's pace, not a wait for a state: a ping every
        # 0.2 s is what an active client is, and the time it has lived is
        # what is tested.
        while time.monotonic() < born + 1.5 * timeout:
            busy.sendall(b"ping")
            recv_exact(busy, 4, 1)
            time.sleep(0.2)
        busy.sendall(b"alive")
        eq(recv_exact(busy, 5), b"alive", "%s: an active client is kept past the timeout" % backend)
    srv.stop()


def test_idle_timeout_alone(backend):
    """The same with the idle client alone on its worker and no send
    timeout: nothing else wakes the worker, so the idle clock must run
    from the echo, not from when the worker next looked at its send. On
    io_uring a send that completes at submission is handled at the next
    wakeup (one io_uring_enter an echo), and when that touched the clock
    again the close came at twice the timeout (2.0 s for 1)."""
    timeout = 1
    srv = Echod("-t", "1", "--idle-timeout", str(timeout), "--send-timeout", "0", backend=backend)
    with connect(srv.addr()) as idle:
        idle.sendall(b"last")
        eq(recv_exact(idle, 4), b"last", "%s: a lone client's last bytes come back" % backend)
        last = time.monotonic()
        closed = wait_eof(idle, last + timeout + 3)
        took = closed - last if closed else float("inf")
        ok(timeout - 0.1 <= took <= timeout + 0.5,
           "%s: alone on its worker, it is closed %.3f s after its last byte, within [%.1f, %.1f]"
           % (backend, took, timeout - 0.1, timeout + 0.5))
    srv.stop()


def test_send_timeout(backend):
    """A client that never reads its echoes is closed after --send-timeout
    (it never looks idle to us: we stop reading it); a slow but steady
    reader, and a connection with nothing due, are kept."""
    srv = Echod("-t", "1", "-v", "--send-timeout", "1", "--max-pending", "64K",
                backend=backend)
    data = pattern(16 << 20, seed=9)
    stuck, slow, quiet = connect(srv.addr()), connect(srv.addr()), connect(srv.addr())
    # The slow reader sends 2 MiB at once and takes its echoes 64 KiB at a
    # time, 5 times a second: bytes wait in echod all along, but move.
    sender = threading.Thread(target=slow.sendall, args=(data[:2 << 20],), daemon=True)
    sender.start()
    slow_got, slow_error = 0, None
    t0 = time.monotonic()
    fill_until_blocked(stuck, data, quiet=0.3, limit=10)
    slow.settimeout(5)

    def slow_read():
        """One read of the slow reader (wait_until's 0.2 s step is its
        pace); true once it has read for two send timeouts and the
        non-reader's send timeout has come, or once it failed."""
        nonlocal slow_got, slow_error
        try:
            d = slow.recv(65536)
            if not d:
                slow_error = "end-of-file"
            slow_got += len(d)
        except OSError as e:
            slow_error = e
        return slow_error is not None or (time.monotonic() - t0 >= 2.0 and "(send timeout)" in srv.log())

    # 5 s: well before the slow reader, at its pace, runs out of echoes.
    wait_until(slow_read, 5, 0.2, what="the non-reader's send timeout in the log")
    ok(slow_error is None and slow_got > 0,
       "%s: a slow reader is kept (%d bytes back in %.1f s)" % (backend, slow_got, time.monotonic() - t0),
       repr(slow_error))
    ok(srv.wait_log(r"\(send timeout\)", 0.1) and srv.log().count("(send timeout)") == 1,
       "%s: the client that reads nothing is closed for its send timeout, and only it"
       % backend, srv.log()[-600:])
    # Were it still open, its echoes would come and then nothing: no EOF.
    stuck.settimeout(5)
    try:
        while stuck.recv(1 << 20):
            pass
        gone = True
    except ConnectionResetError:
        gone = True
    except OSError:
        gone = False
    ok(gone, "%s: it sees end-of-file or a reset" % backend)
    quiet.sendall(b"still")
    got = recv_exact(quiet, 5)
    ok(got == b"still", "%s: a connection with nothing due is kept" % backend,
       "got %r" % got, srv.log()[-800:])
    for s in (stuck, slow, quiet):
        s.close()
    srv.stop()


def test_send_timeout_alone(backend):
    """A non-reader that is the worker's only client: nothing else wakes
    the worker once its echoes stop moving (no other client, no idle
    timeout, no buffer going spare), yet it goes at its send timeout:
    by the sweep planned when its echoes first wait, or by the kernel
    (TCP_USER_TIMEOUT), whichever comes first."""
    srv = Echod("-t", "1", "-v", "--send-timeout", "1", "--idle-timeout", "0",
                "--max-pending", "64K", backend=backend)
    # Its receive buffer fixed and small, so that once echoes wait in
    # echod they never drain (a queue that drains frees a buffer, and a
    # spare buffer wakes the worker for a trim).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.settimeout(5)
        stuck.connect(srv.addr())
        # An echo first: the worker has slept since it took the client.
        stuck.sendall(b"hello")
        eq(recv_exact(stuck, 5), b"hello", "%s: the client is served" % backend)
        fill_until_blocked(stuck, pattern(32 << 20, seed=12), quiet=0.2, limit=10)
        stalled = time.monotonic()
        found = wait_until(lambda: "(send timeout)" in srv.log(), 5, 0.05)
        took = time.monotonic() - stalled
        ok(found, "%s: the lone non-reader is closed for its send timeout (%.1f s after it stalled)"
           % (backend, took), srv.log()[-800:])
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_send_timeout_many(backend):
    """Several non-readers all go at one send timeout, whatever order they
    stalled in, also when others on the same queued list reset meanwhile
    (the sweep walks the connections with echoes waiting, not all)."""
    srv = Echod("-t", "1", "-v", "--send-timeout", "1", "--max-pending", "64K",
                backend=backend)
    data = pattern(32 << 20, seed=11)
    idle = [connect(srv.addr()) for _ in range(20)]
    stuck = [connect(srv.addr()) for _ in range(6)]
    resets = [connect(srv.addr()) for _ in range(2)]
    for s in stuck + resets:
        fill_until_blocked(s, data, quiet=0.2, limit=10)
    for s in resets:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    wait_until(lambda: srv.log().count("(send timeout)") >= 6, 8, 0.1, what="6 send timeouts in the log")
    n = srv.log().count("(send timeout)")
    ok(n == 6, "%s: all 6 non-readers closed for their send timeout (%d)" % (backend, n),
       srv.log()[-1500:])
    for s in idle[:3]:
        s.sendall(b"idle")
        eq(recv_exact(s, 4), b"idle", "%s: an idle connection is kept and echoes" % backend)
    for s in idle + stuck:
        s.close()
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_max_lifetime(backend):
    """A client that dribbles a byte every 0.2 s passes any idle timeout;
    --max-lifetime still ends it, at its time."""
    srv = Echod("-t", "1", "-v", "--max-lifetime", "1", "--idle-timeout", "5",
                backend=backend)
    with connect(srv.addr()) as s:
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 4 and not closed:
            try:
                s.sendall(b"x")
                closed = recv_exact(s, 1, 2) != b"x"
            except OSError:
                closed = True
            time.sleep(0.2)  # the dribbler's pace (a byte every 0.2 s), not a wait for a state
        took = time.monotonic() - t0
    ok(closed and 0.9 <= took <= 2.6,
       "%s: a dribbler is closed after --max-lifetime 1 (%.1f s)" % (backend, took))
    ok(srv.wait_log(r"\(lifetime\)", 1), "%s: with its reason in the log" % backend)
    srv.stop()


def outcomes(clients, deadline):
    """clients holds (socket, expected echo), or an outcome already known
    at connect. Waits until the deadline for each socket's outcome:
    'served' (exactly its echo), 'refused' (EOF or reset before any byte),
    'partial' (some bytes, then EOF) or 'hung' (neither by the deadline)."""
    res = [c if isinstance(c, str) else None for c in clients]
    got = [b""] * len(clients)
    waiting = {c[0]: i for i, c in enumerate(clients) if not isinstance(c, str)}
    for s in waiting:
        s.setblocking(False)
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(list(waiting), [], [], max(0, min(0.5, deadline - time.monotonic())))
        for s in ready:
            i = waiting[s]
            try:
                d = s.recv(100)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                d = b""
            got[i] += d
            if d and got[i] == clients[i][1]:
                res[i] = "served"
            elif not d:
                res[i] = "partial" if got[i] else "refused"
            if res[i]:
                del waiting[s]
    return ["hung" if r is None else r for r in res]


def test_exhaustion(backend, threads=1, nclients=200):
    """prlimit --nofile=64 and 200 clients: the server refuses what it
    cannot hold instead of spinning, then serves again once fds free up.
    With two workers, one worker's refusals must not depend on a spare
    descriptor the other can take."""
    if need_program("prlimit") is None:
        skip("%s: descriptor exhaustion" % backend, "prlimit not installed")
        return
    srv = Echod("-t", str(threads), backend=backend, prefix=["prlimit", "--nofile=64", "--"])
    base = fd_count(srv.proc.pid)  # prlimit execs echod: the same process
    if threads > 1:
        backend = "%s, %d workers" % (backend, threads)
    clients = []
    for i in range(nclients):
        try:
            s = connect(srv.addr(), 2)
        except (ConnectionRefusedError, ConnectionResetError):
            clients.append("refused")
            continue
        except OSError:
            clients.append("hung")  # the connect timed out
            continue
        try:
            s.sendall(b"c%03d" % i)
        except (BrokenPipeError, ConnectionResetError):
            pass
        clients.append((s, b"c%03d" % i))
    res = outcomes(clients, time.monotonic() + 5)
    served = res.count("served")
    ok(served >= 20, "%s: about 30 to 60 of %d clients are served under 64 fds (%d)"
       % (backend, nclients, served))
    bad = {r: res.count(r) for r in set(res) - {"served", "refused"}}
    eq(bad, {}, "%s: the other %d clients get EOF or a reset within 5 s; none hangs, none gets a part"
       % (backend, res.count("refused")))
    ok(srv.wait_log(r"refusing clients until descriptors free up", 1),
       "%s: the exhaustion is logged" % backend)
    # This sleep is the measurement: the CPU echod uses over a second in
    # which nothing changes.
    ticks = srv.cpu_ticks()
    time.sleep(1.0)
    used = srv.cpu_ticks() - ticks
    ok(used <= 10, "%s: no CPU spinning while exhausted (%d ticks in 1 s)" % (backend, used))
    for c in clients:
        if not isinstance(c, str):
            c[0].close()
    freed = wait_until(lambda: fd_count(srv.proc.pid) <= base, 5, 0.02,
                       what="echod's descriptors back to the %d it held before the clients" % base)
    ok(freed, "%s: echod closes its side of every client that left (%d descriptors, %d before them)"
       % (backend, fd_count(srv.proc.pid), base))
    with connect(srv.addr()) as s:
        s.sendall(b"back")
        eq(recv_exact(s, 4, 5), b"back", "%s: service resumes when descriptors free up" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
for_each_backend(test_max_conns)
for_each_backend(test_idle_timeout)
for_each_backend(test_idle_timeout_alone)
for_each_backend(test_send_timeout)
for_each_backend(test_send_timeout_alone)
for_each_backend(test_send_timeout_many)
for_each_backend(test_max_lifetime)
for_each_backend(test_exhaustion)
for_each_backend(lambda backend: test_exhaustion(backend, 2, 150))
done_testing()
