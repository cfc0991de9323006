#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""valgrind.t - echod under valgrind's memcheck for a short run on
the epoll backend: echoes, a stream, a half-close, a reset mid-message, a client
that never reads, a refused UDP source and an echoed datagram, then SIGTERM.
memcheck must report no error and no definitely or indirectly lost block,
and echod must exit 0.

Skips without valgrind (fails under CI=true); skips in sanitizer builds
(their runtime and valgrind cannot share a process)."""
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
from soaklib import reset_close  # noqa: E402

VALGRIND = ["--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
            "--track-fds=no", "--quiet"]


def workload(srv):
    addr = srv.addr()
    for i in range(5):
        with connect(addr) as s:
            data = pattern(1000 * (i + 1), seed=i)
            if echo_all(s, data, timeout=20) != data:
                return "echo %d" % i
    with connect(addr) as s:
        data = pattern(1 << 20, seed=9)
        if echo_all(s, data, timeout=60) != data:
            return "stream"
    with connect(addr) as s:
        s.sendall(b"half\n")
        s.shutdown(socket.SHUT_WR)
        if recv_until_eof(s, 20) != (b"half\n", True):
            return "half-close"
    s = connect(addr)
    s.sendall(pattern(100000))
    reset_close(s)
    quiet = connect(addr)
    fill_until_blocked(quiet, pattern(4 << 20), quiet=1.0, limit=20)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(b"datagram", addr)
    try:
        back = u.recv(100)
    except socket.timeout:
        back = None
    u.close()
    quiet.close()
    return None if back == b"datagram" else "udp: %r" % back


def test(backend):
    srv = Echod("-u", "-t", "2", backend=backend, wait=False,
                prefix=["valgrind"] + VALGRIND)
    srv.wait_listening(timeout=60)
    failed = workload(srv)
    ok(failed is None, "%s: the workload ran under valgrind" % backend, failed)
    status = srv.stop(timeout=60)
    errors = [line for line in srv.log().splitlines() if line.startswith("==")]
    eq(status, 0, "%s: echod exits 0 under memcheck (99 = memcheck found errors)" % backend)
    ok(not errors, "%s: memcheck reports nothing" % backend, *errors[:40])


if SANITIZED:
    skip("valgrind memcheck", "sanitizer build")
elif need_program("valgrind"):
    test("epoll")
    # valgrind runs one thread at a time and does not know that a thread
    # waiting in io_uring_enter may block: with echod's worker waiting
    # there, the main thread never runs its SIGTERM (3.19 hung at stop in
    # 1 of 3 runs with one worker, and served nothing with two).
    skip("io_uring: memcheck", "valgrind 3.19 cannot run a thread that waits in io_uring_enter beside others")
else:
    skip("valgrind memcheck", "valgrind not installed")
done_testing()
