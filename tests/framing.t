#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""framing.t - -n N with --framing line|raw: all N echoes arrive, then a clean
end-of-file (never a reset), however the client splits or joins its writes;
the lecture's telnet transcript; once per backend."""
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def test_line_limit(backend):
    srv = Echod("-t", "1", "-n", "3", "--framing", "line", backend=backend)
    with connect(srv.addr()) as s:
        for i in (1, 2, 3):
            s.sendall(b"test%d\n" % i)
            eq(recv_exact(s, 6), b"test%d\n" % i, "%s: line %d echoed" % (backend, i))
        ok(sees_eof(s), "%s: after the third line the server closes (EOF, no reset)" % backend)

    # All in one write, with more behind it: exactly three lines come back.
    with connect(srv.addr()) as s:
        s.sendall(b"a\nb\nc\nd\ne\n" + b"x" * 100000)
        data, eof = recv_until_eof(s, 10)
        eq(data, b"a\nb\nc\n", "%s: one write of 5 lines: exactly 3 echoed" % backend)
        ok(eof, "%s: then end-of-file, not a reset, although more was sent" % backend)

    # Lines split across writes, byte by byte.
    with connect(srv.addr()) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"spl\nit\nlines\nnot this\n":
            try:
                s.send(bytes([b]))
            except OSError:
                break
            time.sleep(0.001)
        data, eof = recv_until_eof(s, 10)
        eq(data, b"spl\nit\nlines\n", "%s: lines sent a byte at a time: counted right" % backend)
        ok(eof, "%s: and end-of-file" % backend)

    # The client keeps sending after the limit: the server drains, then
    # closes when the client closes, and the last echo was not destroyed.
    with connect(srv.addr()) as s:
        s.sendall(b"1\n2\n3\n")
        eq(recv_exact(s, 6), b"1\n2\n3\n", "%s: three echoes before more input" % backend)
        for _ in range(50):
            s.sendall(b"still talking\n" * 100)
        ok(sees_eof(s), "%s: the server's FIN arrives while the client still sends" % backend)
        s.shutdown(socket.SHUT_WR)
    ok(srv.alive(), "%s: server alive" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_raw_limit(backend):
    srv = Echod("-t", "1", "-n", "2", backend=backend)
    with connect(srv.addr()) as s:
        s.sendall(b"first")
        eq(recv_exact(s, 5), b"first", "%s: raw: first read echoed" % backend)
        s.sendall(b"second\nwith\nlines")
        data, eof = recv_until_eof(s, 10)
        eq(data, b"second\nwith\nlines", "%s: raw: a read is one message, lines or not" % backend)
        ok(eof, "%s: raw: closed after 2 messages" % backend)
    srv.stop()


def test_linger_timeout(backend):
    srv = Echod("-t", "1", "-n", "1", "--linger", "1", "-v", backend=backend)
    with connect(srv.addr()) as s:
        s.sendall(b"x\n")
        eq(recv_exact(s, 2), b"x\n", "%s: echo before linger" % backend)
        # Never close: the server must give up after --linger seconds.
        ok(srv.wait_log(r"\(linger timeout\)", 5), "%s: a client that never closes is dropped after --linger" % backend)
    srv.stop()


def test_linger_sooner(backend):
    """A deadline sooner than any the loop sleeps towards is kept: an idle
    client has the worker asleep until its idle timeout, 30 s away, when
    another's --linger of 1 s starts. (io_uring leaves one timeout in the
    kernel across wakeups; it must be moved sooner.)"""
    srv = Echod("-t", "1", "-n", "1", "--linger", "1", "--idle-timeout", "30", "-v",
                backend=backend)
    with connect(srv.addr()) as idle:
        ok(srv.wait_log(r"accept fd", 5), "%s: the idle client is accepted" % backend)
        time.sleep(0.3)
        with connect(srv.addr()) as s:
            s.sendall(b"x\n")
            eq(recv_exact(s, 2), b"x\n", "%s: echo before linger, an idle client beside" % backend)
            start = time.monotonic()
            ok(srv.wait_log(r"\(linger timeout\)", 5),
               "%s: ... dropped after --linger 1, not at the other's idle timeout" % backend,
               "%.1f s" % (time.monotonic() - start))
        idle.sendall(b"y")
        eq(recv_exact(idle, 1), b"y", "%s: the idle client is still served" % backend)
    srv.stop()


def test_nc_transcript(backend):
    """The lecture's exercise with a real client: nc sends three lines and
    sees them echoed, then the connection is closed by the server."""
    if need_program("nc") is None:
        skip("%s: nc transcript" % backend, "nc not installed")
        return
    srv = Echod("-t", "1", "-n", "3", "--framing", "line", backend=backend)
    p = subprocess.run(["nc", "-w", "5", "127.0.0.1", str(srv.port)],
                       input=b"test1\ntest2\ntest3\ntest4\n", capture_output=True, timeout=15)
    eq(p.stdout, b"test1\ntest2\ntest3\n", "%s: nc: three lines echoed, the fourth not" % backend)
    srv.stop()


def tmux(*args):
    return subprocess.run(["tmux"] + list(args), capture_output=True, text=True, timeout=10)


def test_telnet_transcript(backend):
    """Drives a real telnet in a tmux pane, as a person would."""
    if need_program("tmux") is None or need_program("telnet") is None:
        skip("%s: telnet transcript under tmux" % backend, "tmux or telnet not installed")
        return
    srv = Echod("-t", "1", "-n", "3", "--framing", "line", backend=backend)
    sock = "echod-test-%s" % uuid.uuid4().hex[:8]
    try:
        tmux("-L", sock, "new-session", "-d", "-x", "120", "-y", "30",
             "telnet 127.0.0.1 %d; echo TELNET-EXITED; sleep 30" % srv.port)
        screen = lambda: tmux("-L", sock, "capture-pane", "-p").stdout
        ok(wait_until(lambda: "Escape character" in screen(), 5), "%s: telnet connected" % backend, screen())
        for i in (1, 2, 3):
            tmux("-L", sock, "send-keys", "test%d" % i, "Enter")
            wait_until(lambda: screen().count("test%d" % i) >= 2, 5)
        text = wait_until(lambda: "TELNET-EXITED" in screen() and screen(), 5) or screen()
        lines = [l for l in text.splitlines() if l.strip()]
        want = ["test1", "test1", "test2", "test2", "test3", "test3", "Connection closed by foreign host."]
        got = [l for l in lines if l.startswith("test") or l.startswith("Connection closed")]
        eq(got, want, "%s: telnet shows the lecture's transcript" % backend)
    finally:
        tmux("-L", sock, "kill-server")
    srv.stop()


for_each_backend(test_line_limit)
for_each_backend(test_raw_limit)
for_each_backend(test_linger_timeout)
for_each_backend(test_linger_sooner)
for_each_backend(test_nc_transcript)
for_each_backend(test_telnet_transcript)
done_testing()
