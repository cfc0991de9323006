#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""table.t - the SIGUSR1 table agrees with `ss -tanpi` taken at the same
moment: descriptor, peer, state, Recv-Q and Send-Q of every connection
(idle, a client that never reads so that echod is paused by backpressure
with full queues both ways, CLOSE-WAIT, FIN-WAIT-2), and the listeners'
backlog queues; once per backend."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

SS_RE = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+users:\(.*pid=(\d+),fd=(\d+)\)")


def ss_rows(pid):
    """{fd: (state, recv_q, send_q, local, peer)} for pid's TCP sockets."""
    out = subprocess.run(["ss", "-tanpi"], capture_output=True, text=True, timeout=10).stdout
    rows = {}
    for line in out.splitlines():
        m = SS_RE.match(line)
        if m and int(m.group(6)) == pid:
            rows[int(m.group(7))] = (m.group(1), int(m.group(2)), int(m.group(3)), m.group(4), m.group(5))
    return rows


def dump_table(srv):
    """Sends SIGUSR1; returns ({fd: row}, {fd: listener}) from the table."""
    start = len(srv.lines)
    srv.proc.send_signal(signal.SIGUSR1)
    if not srv.wait_log(r"^echod: end of table$", 5, start):
        return None, None
    conns, listeners, part = {}, {}, None
    for line in srv.lines[start:]:
        if line.startswith("echod: connections"):
            part = conns
        elif line.startswith("echod: listening"):
            part = listeners
        elif line.startswith("echod: "):
            part = None
        elif part is not None and line[:1].isdigit():
            f = line.split()
            if part is conns:
                part[int(f[1])] = (f[2], int(f[3]), int(f[4]), f[5], f[6])
            else:
                part[int(f[1])] = (f[2], int(f[3]), int(f[4]), f[5])
        if line == "echod: end of table":
            break
    return conns, listeners


def steady_rows(pid, timeout=5.0):
    """ss_rows(pid) once two readings in a row agree: the window probes
    have settled and no queue is moving (the last reading, should the
    deadline pass first)."""
    last = [None]

    def same():
        rows = ss_rows(pid)
        steady = rows == last[0]
        last[0] = rows
        return steady

    wait_until(same, timeout, 0.05, what="ss to read the same twice in a row (queues settled)")
    return last[0]


def server_state(pid, peer_port):
    for fd, r in ss_rows(pid).items():
        if r[4].endswith(":%d" % peer_port):
            return r[0]
    return None


def close_wait_client(srv):
    """A client that sends until echod stops reading (its queue to the
    client is full: the client never reads), then half-closes: its FIN
    reaches echod, which must keep the connection, in CLOSE-WAIT, while
    it owes echoes. Small segments and receive buffer keep the bytes in
    flight few, so that echod's queue, not the kernel's, holds them."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1024)
    c.settimeout(5)
    c.connect(srv.addr())
    port = c.getsockname()[1]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c.sendall(b"y" * 32768)
        time.sleep(0.01)
        rows = [r for r in ss_rows(srv.proc.pid).values() if r[4].endswith(":%d" % port)]
        if rows and rows[0][1] > 0:
            break
    c.shutdown(socket.SHUT_WR)
    return c, wait_until(lambda: server_state(srv.proc.pid, port) == "CLOSE-WAIT", 5)


def test_table(backend):
    srv = Echod("-t", "2", "-b", "127.0.0.1", "--framing", "line", "-n", "1",
                "--max-pending", "64K", "--linger", "60", backend=backend)
    pid = srv.proc.pid
    data = b"x" * (64 << 20)  # no newline: -n 1 never ends these
    idle = connect(srv.addr())
    stuck = connect(srv.addr())
    fill_until_blocked(stuck, data, quiet=0.5)
    cw, cw_ok = close_wait_client(srv)
    fw = connect(srv.addr())
    fw.sendall(b"a\n")
    eq(recv_exact(fw, 2, 5), b"a\n", "%s: the -n 1 client gets its echo" % backend)
    ok(sees_eof(fw, 5), "%s: and echod's FIN" % backend)
    fw_port = fw.getsockname()[1]
    ok(wait_until(lambda: server_state(pid, fw_port) == "FIN-WAIT-2", 5),
       "%s: echod's side is in FIN-WAIT-2 (ss)" % backend)
    ok(cw_ok, "%s: echod's side of the half-closed client is in CLOSE-WAIT (ss)" % backend)

    before = steady_rows(pid)
    table, listeners = dump_table(srv)
    after = ss_rows(pid)
    ok(table is not None, "%s: SIGUSR1 prints the table" % backend, srv.log()[-2000:])
    table = table or {}
    listeners = listeners or {}
    ss_conns = {fd: r for fd, r in after.items() if r[0] != "LISTEN"}
    eq(sorted(table), sorted(ss_conns), "%s: the table lists exactly the descriptors ss shows" % backend)
    for fd, row in sorted(ss_conns.items()):
        got = table.get(fd)
        want = [(r[0], r[1], r[2], r[4]) for r in (before.get(fd), row) if r]
        ok(got is not None and (got[0], got[1], got[2], got[4]) in want,
           "%s: fd %d: state, Recv-Q, Send-Q, peer agree with ss (%s)" % (backend, fd, row[0]),
           "table: %r" % (got,), "ss:    %r" % (want,))
    states = {r[0] for r in table.values()}
    for st in ("ESTAB", "CLOSE-WAIT", "FIN-WAIT-2"):
        ok(st in states, "%s: the table shows a connection in %s" % (backend, st), repr(table))
    queued = [r for r in table.values() if r[0] == "ESTAB" and r[1] > 0 and r[2] > 0]
    ok(queued, "%s: the non-reader's row has non-zero Recv-Q and Send-Q" % backend, repr(table))
    ss_listen = {fd: (r[0], r[1], r[2], r[3]) for fd, r in after.items() if r[0] == "LISTEN"}
    eq(listeners, ss_listen, "%s: listeners: fd, Recv-Q, Send-Q (backlog), address agree with ss" % backend)
    ok(re.search(r"^worker \d+: 4 accepted", srv.log(), re.M) or
       re.search(r"backpressure pauses", srv.log()), "%s: totals follow the table" % backend)
    for s in (idle, stuck, cw, fw):
        s.close()
    eq(srv.stop(), 0, "%s: echod exits 0 after SIGUSR1 dumps" % backend)


def test_interval(backend):
    srv = Echod("-t", "1", "--stats-interval", "1", "--stats-totals-only", backend=backend)
    with connect(srv.addr()) as s:
        s.sendall(b"ping")
        recv_exact(s, 4, 5)
        ok(srv.wait_log(r"^worker 0: 1 accepted, 1 open", 4),
           "%s: --stats-interval 1 prints the totals unasked" % backend, srv.log())
    ok("echod: connections" not in srv.log(), "%s: --stats-totals-only leaves out the rows" % backend)
    srv.stop()


def test_worker_failure():
    """A worker that cannot set up wakes main through an eventfd (SIGUSR1
    now asks for the table): echod still stops with status 1. A low
    descriptor limit makes the worker's epoll set-up fail."""
    prlimit = need_program("prlimit")
    if not prlimit:
        skip("a failing worker stops echod with 1", "prlimit not installed")
        return
    for n in range(5, 16):
        try:
            p = subprocess.run([prlimit, "--nofile=%d" % n, ECHOD, "-p", "0", "-b", "127.0.0.1", "-t", "1",
                                "--backend", "epoll"], capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            ok(False, "a worker failing at set-up stops echod (it hung, --nofile=%d)" % n)
            return
        # Only the worker may fail: main's own signalfd must have opened.
        if "set-up: Too many open files" in p.stderr and "signalfd" not in p.stderr:
            ok(p.returncode == 1, "a worker failing at set-up stops echod with status 1", p.stderr)
            return
    ok(False, "some descriptor limit makes the worker's set-up fail")


test_worker_failure()
if need_program("ss"):
    for_each_backend(test_table)
for_each_backend(test_interval)
done_testing()
