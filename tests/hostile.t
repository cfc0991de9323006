#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""hostile.t - other processes on the same host against echod's ports: a
second echod on a port in use fails with one line; a process of another user
cannot bind the port; a process of the same user that joins the port's
SO_REUSEPORT group gets none of the traffic; a datagram forged to come from
the loopback net's broadcast address gets no answer. TCP and UDP, once per
backend. Needs root (setuid, raw sockets); skips without it."""
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

NOBODY = 65534
TRIES = 20


def second_echod(backend, port, *args):
    """Starts echod on a port in use; returns (exit status, stderr lines).
    A second echod that starts serving is killed at the deadline (None)."""
    p = spawn([ECHOD, "--port", str(port), "--backend", backend] + list(args),
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=5)
        return p.returncode, err.decode("utf-8", "replace").splitlines()
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=5)
        return None, err.decode("utf-8", "replace").splitlines()


def test_second_instance(backend):
    for proto, args in (("tcp", ()), ("udp", ("-u", "--no-tcp"))):
        srv = Echod("-t", "2", *args, backend=backend)
        status, lines = second_echod(backend, srv.port, *args)
        # Start-up prints which backend it chose (info) before it binds.
        lines = [unstamp(line) for line in lines]
        errs = [line for line in lines if not line.startswith("echod: backend ")]
        ok(status == 1 and len(errs) == 1 and "bind" in errs[0] and "Address already in use" in errs[0],
           "%s: a second echod on a %s port in use exits 1 with one bind line" % (backend, proto),
           "exit %s, stderr %r" % (status, lines))
        ok(srv.alive(), "%s: the first echod (%s) is still up" % (backend, proto))
        srv.stop()


def bind_as(uid, port):
    """In a child running as uid, tries to bind port (UDP and TCP, every
    family and address that overlaps echod's [::]) with SO_REUSEADDR and
    SO_REUSEPORT. Returns the list of binds that succeeded."""
    tries = [(socket.SOCK_DGRAM, socket.AF_INET6, "::"), (socket.SOCK_DGRAM, socket.AF_INET, "0.0.0.0"),
             (socket.SOCK_DGRAM, socket.AF_INET, "127.0.0.1"), (socket.SOCK_STREAM, socket.AF_INET6, "::"),
             (socket.SOCK_STREAM, socket.AF_INET, "127.0.0.1")]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for i, (kind, family, host) in enumerate(tries):
                s = socket.socket(family, kind)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    s.bind((host, port))
                    code |= 1 << i
                except OSError:
                    pass
            os.write(w, b"%d\n" % code)
        finally:
            os._exit(0)
    os.close(w)
    got = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rl, _, _ = select.select([r], [], [], 0.2)
        if rl:
            chunk = os.read(r, 64)
            if not chunk:
                break
            got += chunk
    os.close(r)
    for _ in range(50):
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    code = int(got or b"-1")
    if code < 0:
        return ["(child gave no answer)"]
    return ["%s %s:%d" % ("udp" if k == socket.SOCK_DGRAM else "tcp", h, port)
            for i, (k, f, h) in enumerate(tries) if code & (1 << i)]


def test_other_user(backend):
    srv = Echod("-u", "-t", "2", backend=backend)
    bound = bind_as(NOBODY, srv.port)
    eq(bound, [], "%s: uid %d cannot bind echod's UDP or TCP port, even with SO_REUSEADDR and SO_REUSEPORT"
       % (backend, NOBODY))
    srv.stop()


def joiner(kind, port):
    """A socket of this (root, same user as echod) process that joins the
    port's SO_REUSEPORT group, or None when the kernel refuses."""
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind(("::", port))
        if kind == socket.SOCK_STREAM:
            s.listen(64)
    except OSError as e:
        diag("joining refused: %s" % e)
        s.close()
        return None
    s.setblocking(False)
    return s


def drain(s, kind):
    """How many connections (datagrams) wait on the intruder's socket."""
    n = 0
    while True:
        try:
            if kind == socket.SOCK_STREAM:
                s.accept()[0].close()
            else:
                s.recv(100)
        except (BlockingIOError, InterruptedError):
            return n
        n += 1


def tcp_tries(port, timeout=10.0):
    """Opens TRIES connections at once and sends on each; returns how many
    were echoed before a shared deadline (a connection the intruder holds
    is never echoed)."""
    conns = []
    for i in range(TRIES):
        c = connect(("127.0.0.1", port), timeout=5)
        c.sendall(b"tcp %02d" % i)
        conns.append(c)
    echoed = 0
    deadline = time.monotonic() + timeout
    for i, c in enumerate(conns):
        echoed += recv_exact(c, 6, timeout=max(0.1, deadline - time.monotonic())) == b"tcp %02d" % i
        c.close()
    return echoed


def udp_tries(port, timeout=10.0):
    """The same with TRIES datagrams, each from a new socket, so from a
    new source port and with a new reuseport hash."""
    socks = []
    for i in range(TRIES):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.sendto(b"udp %02d" % i, ("127.0.0.1", port))
        socks.append(c)
    echoed = 0
    deadline = time.monotonic() + timeout
    for i, c in enumerate(socks):
        c.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            echoed += c.recv(100) == b"udp %02d" % i
        except socket.timeout:
            pass
        c.close()
    return echoed


def test_group_join(backend):
    srv = Echod("-u", "-t", "2", "--udp-rate", "0", "-v", backend=backend)
    # Join only once echod has all its sockets: one that joins between
    # echod's first and last takes a worker's place (see README).
    ok(srv.wait_log(r"2 workers, framing", 5), "%s: echod opened all its sockets" % backend)
    for kind, proto, run in ((socket.SOCK_STREAM, "tcp", tcp_tries), (socket.SOCK_DGRAM, "udp", udp_tries)):
        s = joiner(kind, srv.port)
        echoed = run(srv.port)
        stolen = drain(s, kind) if s else 0
        eq((stolen, echoed), (0, TRIES),
           "%s: a same-user %s socket in echod's SO_REUSEPORT group gets none of %d; echod echoes all"
           % (backend, proto, TRIES))
        if s:
            s.close()
    both = srv.wait_log(r"echod\[w0\]: accept", 5) and srv.wait_log(r"echod\[w1\]: accept", 5)
    ok(both, "%s: echod's two workers still share the connections" % backend, srv.log()[-2000:])
    ok(srv.alive(), "%s: alive" % backend)
    srv.stop()


def forged_datagram(src, dst, sport, dport, payload):
    """An IPv4 datagram with a forged source, UDP checksum 0 (none)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + udp


def test_broadcast_source(backend):
    # Binding 127.255.255.255 is allowed, but the kernel then sends from
    # 127.0.0.1; only a raw socket puts the broadcast address on the wire.
    for args in ((), ("-b", "127.0.0.1")):
        srv = Echod("-u", "--no-tcp", "-t", "1", "--udp-rate", "0", *args, backend=backend)
        where = " ".join(args) or "[::]"
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw.sendto(forged_datagram("127.255.255.255", "127.0.0.1", 5555, srv.port, b"bcast"), ("127.0.0.1", 0))
        m = srv.wait_log(r"udp: drop from 127\.255\.255\.255:5555: non-unicast source", timeout=3)
        ok(m, "%s (%s): a datagram from 127.255.255.255 is dropped as non-unicast" % (backend, where), srv.log())
        # A control datagram from 127.0.0.1 comes back, so echod was serving.
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(2)
        c.sendto(b"unicast", ("127.0.0.1", srv.port))
        try:
            reply = c.recv(100)
        except socket.timeout:
            reply = None
        eq(reply, b"unicast", "%s (%s): a unicast source is still answered" % (backend, where))
        for s in (c, raw):
            s.close()
        eq(srv.stop(), 0, "%s (%s): exit 0" % (backend, where))
        # Before the fix echod tried to answer, and the kernel refused.
        ok(re.search(r"1 non-unicast source, .* 0 send failed", srv.log()),
           "%s (%s): counted as non-unicast, no reply attempted" % (backend, where), srv.log()[-400:])


if os.geteuid() != 0:
    skip("hostile processes", "needs root for setuid and raw sockets")
else:
    for_each_backend(test_second_instance)
    for_each_backend(test_other_user)
    for_each_backend(test_group_join)
    for_each_backend(test_broadcast_source)
done_testing()
