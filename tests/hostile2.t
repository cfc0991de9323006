#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""hostile2.t - the second hostile round: bytes that must come back, a
kernel queue a client cannot pin, a flag that is honoured, a client's
stream no log line can reach.

- Urgent data (MSG_OOB) is echoed in order like any other byte, also
  when it and the client's FIN reach a streaming connection together
  (splice(2) stops at the urgent mark and says 0 there once the FIN is
  in: not the end of the stream).
- A client that sends less than the kernel's queues hold and never reads
  is closed by --send-timeout, though echod itself holds nothing for it.
- -6 on a host without IPv6 is one error and exit 1, never IPv4 instead.
- --inetd with the socket as descriptors 0, 1 and 2: the client gets its
  echo and nothing else, even with -v.
Once per backend where a backend serves."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

NOIPV6 = os.path.join(HELPERS_DIR, "helper-noipv6")


def test_urgent(backend):
    srv = Echod("-t", "1", backend=backend)
    with connect(srv.addr()) as s:
        sent = bytearray()
        for i in range(300):
            chunk = pattern(1000, seed=i)
            s.sendall(chunk)
            s.send(b"%c" % (65 + i % 26), socket.MSG_OOB)
            sent += chunk + b"%c" % (65 + i % 26)
        s.shutdown(socket.SHUT_WR)
        back, eof = recv_until_eof(s, 20)
    eq((len(back), eof), (len(sent), True), "%s: 300 KB with 300 urgent bytes among them: every byte back" % backend)
    ok(bytes(back) == bytes(sent), "%s: ... in the order they were sent" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def all_stopped(pid):
    states = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            pass
    return bool(states) and all(st in ("T", "t") for st in states)


def test_urgent_with_fin(backend):
    """A connection that streams (its bytes go through the pipe) gets
    bytes, an urgent byte, more bytes and the FIN while echod cannot run
    (SIGSTOP): when it runs again, all of them are there at once."""
    srv = Echod("-t", "1", backend=backend)
    with connect(srv.addr()) as s:
        bulk = pattern(1 << 20)
        back = echo_all(s, bulk)
        eq(len(back), len(bulk), "%s: a streaming connection: 1 MiB echoed" % backend)
        tail = pattern(1000, seed=1) + b"U" + pattern(1000, seed=2)
        srv.proc.send_signal(signal.SIGSTOP)
        # Every thread stopped first: one still running with the stop
        # pending reads nothing at the urgent mark (tcp_recvmsg).
        ok(wait_until(lambda: all_stopped(srv.proc.pid), 5),
           "%s: echod's threads all stop on SIGSTOP" % backend)
        try:
            s.sendall(tail[:1000])
            s.send(tail[1000:1001], socket.MSG_OOB)
            s.sendall(tail[1001:])
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        back, eof = recv_until_eof(s, 10)
    eq((len(back), eof), (len(tail), True),
       "%s: bytes, an urgent byte, bytes and the FIN at once: every byte back, then the end" % backend)
    ok(bytes(back) == tail, "%s: ... in the order they were sent" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_kernel_held(backend):
    """The echoes fit in the kernel's queues, so echod queues nothing and
    its own sweep never starts; the kernel's user timeout closes it."""
    srv = Echod("-t", "1", "-v", "--send-timeout", "2", backend=backend)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(srv.addr())
    s.sendall(pattern(100 * 1024))
    start = time.monotonic()
    closed = srv.wait_log(r"close fd \d+ peer 127\.0\.0\.1:%d \(send timeout\)" % s.getsockname()[1], 12)
    took = time.monotonic() - start
    ok(closed, "%s: a client that takes none of 100 KB for --send-timeout 2 is closed for it" % backend, srv.log())
    ok(not closed or took >= 1.5, "%s: ... not before its time (%.1f s)" % (backend, took))
    s.close()
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_no_ipv6():
    if not os.access(NOIPV6, os.X_OK):
        ok(False, "helper-noipv6 is built (%s)" % NOIPV6)
        return
    p = spawn([NOIPV6, ECHOD, "-6", "-p", "0"], stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=10)
    lines = [unstamp(x) for x in err.splitlines()]
    eq((p.returncode, lines), (1, ["echod: -6: no IPv6 here: Address family not supported by protocol"]),
       "-6 on a host without IPv6: exit 1 with one line, nothing served")
    srv = Echod("-t", "1", prefix=[NOIPV6])
    eq(srv.tcp[0][0], "0.0.0.0", "without -6 on such a host: IPv4's wildcard")
    with connect(("127.0.0.1", srv.port)) as c:
        c.sendall(b"v4")
        eq(recv_exact(c, 2), b"v4", "... and it echoes")
    eq(srv.stop(), 0, "exit 0")


def test_inetd_streams(backend):
    """inetd's nowait: the socket is standard input, output and error."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    client = socket.create_connection(lsock.getsockname(), timeout=10)
    conn, _ = lsock.accept()
    lsock.close()
    p = spawn([ECHOD, "--inetd", "-v", "--backend", backend], stdin=conn, stdout=conn, stderr=conn)
    conn.close()
    client.sendall(b"hello\n")
    client.shutdown(socket.SHUT_WR)
    back, eof = recv_until_eof(client, 10)
    client.close()
    eq((bytes(back), eof), (b"hello\n", True), "%s: --inetd on descriptors 0, 1, 2 with -v: the echo and nothing else" % backend)
    try:
        status = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        status = None
    eq(status, 0, "%s: --inetd exits 0 once the connection is over" % backend)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_tight_descriptors(backend):
    """-t 8 under 64 descriptors leaves room for about one connection: said
    at start. A flood of clients takes nothing for good: the descriptors
    come back to what they were, and ten fresh clients are each served
    (with room for one, a client that comes while the last one's close is
    still being done is refused, so each may try three times)."""
    srv = Echod("-t", "8", "-v", "-b", "127.0.0.1", "--metrics", "127.0.0.1:0", backend=backend,
                prefix=["prlimit", "--nofile=64"])
    m = srv.wait_log(r"metrics on http (\S+):(\d+)", 5)
    ok(srv.wait_log(r"descriptor limit 64 leaves room for \d+ connections? with 8 workers: raise it", 5),
       "%s: a descriptor limit too tight for the workers is said at start" % backend)
    before = fd_count(srv.proc.pid)
    flood = []
    for _ in range(100):
        try:
            flood.append(socket.create_connection(srv.addr(), timeout=2))
        except OSError:
            pass
    for c in flood:
        c.close()
    def refused():
        with urllib.request.urlopen("http://%s:%s/metrics" % (m.group(1), m.group(2)), timeout=5) as r:
            text = r.read().decode()
        return sum(float(x) for x in re.findall(
            r'^echod_connections_refused_total\{[^}]*reason="descriptors"\} (\S+)$', text, re.M))
    # The clients closed at once: echod may still be accepting and refusing them.
    ok(wait_until(lambda: refused() > 0, 5),
       "%s: /metrics counts the flood's refusals under reason=\"descriptors\" (%d)" % (backend, refused()))
    ok(wait_until(lambda: fd_count(srv.proc.pid) == before, 5),
       "%s: after the flood, echod holds the %d descriptors it held before" % (backend, before))
    served = 0
    for i in range(10):
        for attempt in range(3):
            try:
                with connect(srv.addr(), timeout=2) as c:
                    c.sendall(b"x")
                    if recv_exact(c, 1, 2) == b"x":
                        served += 1
                        break
            except OSError:
                pass
            time.sleep(0.05)
        wait_until(lambda: srv.log().count("close fd") >= srv.log().count("accept fd"), 5)
    eq(served, 10, "%s: after the flood, 10 fresh clients of 10 served" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def held_bytes(srv):
    """What echod holds for connections' data, from the SIGUSR1 table."""
    start = len(srv.lines)
    srv.proc.send_signal(signal.SIGUSR1)
    m = srv.wait_log(r"^memory: (\d+) bytes held", 5, start)
    return int(m.group(1)) if m else None


def test_small_memory_gives_back(backend):
    """Under --memory 1M, once the load is gone, what echod holds comes
    down: nothing on epoll; on io_uring the ring of receive buffers,
    charged while the kernel may fill them, keeps only its reserve of 4,
    so that an idle ring does not keep a small budget full."""
    srv = Echod("-t", "1", "-b", "127.0.0.1", "--memory", "1M", backend=backend)
    p = subprocess.run([ECHOBENCH, "-c", "50", "-s", "2048", "-D", "2", "--quiet", "%s:%d" % srv.addr()],
                       capture_output=True, text=True, timeout=60)
    ok(p.returncode == 0, "%s --memory 1M: 50 clients' 2 KiB echoes for 2 s, every byte right" % backend, p.stderr[-500:])
    limit = 4 * 65536 if backend == "io_uring" else 0
    held = []
    ok(wait_until(lambda: held.append(held_bytes(srv)) or (held[-1] is not None and held[-1] <= limit), 8, 0.5),
       "%s --memory 1M: once the load is gone, it holds at most %d bytes (%s)" % (backend, limit, held[-3:]))
    eq(srv.stop(), 0, "%s --memory 1M: exit 0" % backend)


for_each_backend(test_urgent)
for_each_backend(test_urgent_with_fin)
for_each_backend(test_tight_descriptors)
for_each_backend(test_kernel_held)
for_each_backend(test_inetd_streams)
for_each_backend(test_small_memory_gives_back)
test_no_ipv6()
done_testing()
