#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""activation.t - echod started as a service: by systemd socket activation
(Debian's systemd-socket-activate: TCP with -l, UDP with --datagram, one
connection per echod with --accept, inetd style with --accept --inetd), as
an inetd service under socat (TCP-LISTEN:...,fork EXEC:'echod --inetd',nofork),
inetd's datagram mode, and telling systemd its state over NOTIFY_SOCKET.
Once per backend.

systemd-socket-activate cannot listen on port 0, so a free port is found by
binding port 0 and closing it; the rare collision is retried."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
import echotest  # noqa: E402

ACTIVATE = None


def free_port(kind=socket.SOCK_STREAM):
    """A port free for TCP and UDP on 127.0.0.1 and ::1 a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(fam, k) as t:
                        t.bind((host, port))
            return port
        except OSError:
            continue
    bail_out("no free port found")


def activated(backend, listen, *args, extra=()):
    """echod under systemd-socket-activate with -l for each of listen;
    returns (srv, port) once systemd-socket-activate listens."""
    for _ in range(3):
        port = free_port()
        prefix = [ACTIVATE] + [a for l in listen for a in ("-l", l % port)] + list(extra)
        srv = Echod("--backend", backend, *args, port0=False, prefix=prefix, wait=False)
        if srv.wait_log(r"^Listening on .* as 3\.$", timeout=5):
            n = len(listen)
            if srv.wait_log(r"^Listening on .* as %d\.$" % (2 + n), timeout=5):
                return srv, port
        srv.stop(signal.SIGKILL)
    bail_out("systemd-socket-activate did not listen: %s" % srv.log())


def echoes(addr, data=b"ping"):
    try:
        with connect(addr, timeout=5) as s:
            s.sendall(data)
            return recv_exact(s, len(data), timeout=5) == data
    except OSError:
        return False


def udp_echo(addr, data=b"dgram", timeout=5):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(timeout)
        u.sendto(data, addr)
        try:
            return u.recv(100) == data
        except socket.timeout:
            return False


def test_listen(backend):
    # -b names an address this host does not have: echod must not bind it.
    srv, port = activated(backend, ["127.0.0.1:%d", "[::1]:%d"], "-t", "2", "-b", "192.0.2.1", "-p", "9",
                          "--grace", "5")
    ok(echoes(("127.0.0.1", port)), "%s: -l: the first client (which starts echod) is echoed" % backend, srv.log())
    srv.wait_listening()
    ok(srv.wait_log(r"listening on tcp 127\.0\.0\.1:%d \(fd 3, IPv4\) from systemd" % port),
       "%s: -l: fd 3 logged as passed by systemd" % backend, srv.log())
    ok(srv.wait_log(r"listening on tcp \[::1\]:%d \(fd 4, IPv6 only\) from systemd" % port),
       "%s: -l: ... and fd 4" % backend, srv.log())
    ok(all(echoes(("127.0.0.1", port)) for _ in range(4)) and echoes(("::1", port)),
       "%s: -l: both passed sockets served; -p and -b ignored" % backend)
    eq(srv.stop(), 0, "%s: -l: SIGTERM: exit 0" % backend)


def test_datagram(backend):
    srv, port = activated(backend, ["127.0.0.1:%d"], "-t", "2", extra=["--datagram"])
    ok(udp_echo(("127.0.0.1", port)), "%s: --datagram: the first datagram (which starts echod) is echoed" % backend,
       srv.log())
    srv.wait_listening()
    ok(srv.wait_log(r"listening on udp 127\.0\.0\.1:%d \(fd 3, IPv4\) from systemd" % port),
       "%s: --datagram: logged as a UDP socket" % backend, srv.log())
    ok(udp_echo(("127.0.0.1", port)), "%s: --datagram: echoes on" % backend)
    eq(srv.stop(), 0, "%s: --datagram: exit 0" % backend)


def test_accept(backend):
    for inetd in (False, True):
        extra = ["--accept"] + (["--inetd"] if inetd else [])
        args = ["--inetd"] if inetd else []
        name = "--accept" + (" --inetd" if inetd else "")
        srv, port = activated(backend, ["127.0.0.1:%d"], *args, extra=extra)
        ok(echoes(("127.0.0.1", port), b"one") and echoes(("127.0.0.1", port), b"two"),
           "%s: %s: each connection echoed by its own echod" % (backend, name), srv.log())
        fd = 0 if inetd else 3
        ok(srv.wait_log(r"serving one connection \(fd %d\) from %s" % (fd, "inetd" if inetd else "systemd")),
           "%s: %s: echod serves the connection on fd %d" % (backend, name, fd), srv.log())
        ok(wait_until(lambda: len(re.findall(r"Child \d+ died with code 0", srv.log())) == 2, timeout=5),
           "%s: %s: each echod exits 0 after its connection" % (backend, name), srv.log())
        # systemd-socket-activate itself dies of SIGTERM: its status is not
        # echod's, which the lines above checked; only the log is left to.
        srv.stop()
        echotest._servers.remove(srv)
        if SANITIZED:
            ok(not SANITIZER_RE.search(srv.log()), "%s: %s: no sanitizer report" % (backend, name), srv.log())


def test_socat_inetd(backend):
    socat = need_program("socat")
    if not socat:
        skip("%s: socat as inetd" % backend, "socat not installed")
        return
    for _ in range(3):
        port = free_port()
        cmd = "%s --inetd --backend %s --deny 127.0.0.2" % (ECHOD, backend)
        p = spawn([socat, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % port, "EXEC:%s,nofork" % cmd],
                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait_until(lambda: subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                                             text=True).stdout.strip(), timeout=5):
            break
        p.kill()
        p.wait()
    ok(echoes(("127.0.0.1", port), b"inetd one") and echoes(("127.0.0.1", port), b"inetd two"),
       "%s: socat ... EXEC:'echod --inetd',nofork: each connection echoed" % backend)
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(b"refuse me")
    data, eof = recv_until_eof(s, timeout=5)
    ok(data == b"", "%s: --inetd keeps echod's rules: --deny 127.0.0.2 gets no echo" % backend, data)
    s.close()

    # Each echod prints its last line after closing its connection: let
    # the last one finish before socat (and its process group) is ended.
    def echods_left():
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                return f.read().split()
        except OSError:
            return []
    wait_until(lambda: not echods_left(), timeout=5)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=5)
    finally:
        # socat's children share its stderr: none may keep it open.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    err = p.stderr.read().decode()
    eq(len(re.findall(r"echod: the connection is over", err)), 3, "%s: three echods each ended with their connection"
       % backend)


def test_inetd_datagram(backend):
    srv, port = activated(backend, ["127.0.0.1:%d"], "--inetd", "--idle-timeout", "1",
                          extra=["--datagram", "--inetd"])
    ok(udp_echo(("127.0.0.1", port)), "%s: inetd datagram mode: echoed" % backend, srv.log())
    start = time.monotonic()
    try:
        status = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        status = None
    eq(status, 0, "%s: inetd datagram mode: exit 0 after --idle-timeout 1 without a datagram" % backend)
    ok(time.monotonic() - start >= 0.5, "%s: ... not before" % backend)
    ok(srv.wait_log(r"listening on udp 127\.0\.0\.1:%d \(fd 0, IPv4\) from inetd" % port),
       "%s: ... the socket on standard input" % backend, srv.log())


def test_notify(backend):
    with tempfile.TemporaryDirectory() as d:
        for path in (os.path.join(d, "notify"), "@echod-test-%d-%s" % (os.getpid(), backend)):
            n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            n.bind(path.replace("@", "\0", 1) if path[0] == "@" else path)
            n.settimeout(5)
            srv = Echod("-t", "2", "--grace", "1", backend=backend, env={"NOTIFY_SOCKET": path})
            try:
                first = n.recv(4096).decode()
            except socket.timeout:
                first = ""
            ok(first.startswith("READY=1\nSTATUS=serving with 2 workers"),
               "%s: NOTIFY_SOCKET %s: READY=1 and STATUS= once ready" % (backend, "abstract" if path[0] == "@"
                                                                         else "path"), first)
            srv.proc.send_signal(signal.SIGTERM)
            try:
                last = n.recv(4096).decode()
            except socket.timeout:
                last = ""
            ok(last.startswith("STOPPING=1\nSTATUS=stopping"), "%s: ... STOPPING=1 at SIGTERM" % backend, last)
            eq(srv.stop(), 0, "%s: ... exit 0" % backend)
            n.close()


def test_errors():
    p = subprocess.run(["sh", "-c", 'exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -t 1', ECHOD],
                       capture_output=True, text=True, timeout=10)
    eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]),
       (1, "echod: socket activation: fd 3: Socket operation on non-socket (expected a listening TCP or a UDP "
           "socket, or one TCP connection)"), "a passed descriptor that is no socket: exit 1, one line")
    srv = Echod("-t", "1", env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    ok(srv.tcp and "from systemd" not in srv.log(), "LISTEN_PID of another process: echod opens its own socket",
       srv.log())
    srv.stop()
    p = subprocess.run([ECHOD, "--inetd"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]),
       (1, "echod: --inetd: standard input: Socket operation on non-socket (expected a TCP connection or a UDP "
           "socket)"), "--inetd without a socket: exit 1, one line")


ACTIVATE = need_program("systemd-socket-activate")
test_errors()
if ACTIVATE:
    for_each_backend(test_listen)
    for_each_backend(test_datagram)
    for_each_backend(test_accept)
    for_each_backend(test_inetd_datagram)
else:
    skip("systemd-socket-activate tests", "systemd-socket-activate not installed (Debian package systemd)")
for_each_backend(test_socat_inetd)
for_each_backend(test_notify)
done_testing()
