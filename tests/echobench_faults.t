#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""echobench_faults.t - echobench against servers that misbehave on purpose.

echod's --fault injection (limit-data, latency, corrupt...) is tested with
echobench, which must then know what to expect. Until echod has it, a small
echo server in this process's threads stands in for each fault:

  - limit: closes each connection once it has echoed N bytes, by FIN or by
    reset (SO_LINGER 0). With --expect-close N the closes are counted, are
    no error, and a new connection takes each one's place for the run's
    duration (closed and open loop, pipelined, stream, -n, churn); a close
    at another count, earlier or later, fails the run with that count.
  - delay: holds each echo 20 ms; p50 shows it, closed and open loop.
  - flip: flips one bit in two bytes of every message; each corrupted echo
    and its bytes are counted with --keep-going, and by default the first
    ends its connection, as it always did.

Ports are chosen by the kernel (port 0) on loopback; every socket wait and
every echobench run has a deadline; echobench runs are reaped by
subprocess.run and the server threads stop with the file.
"""

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

BROKEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_broken.py")


def bench(*args, timeout=30):
    """Runs echobench -q; returns (status, stdout, stderr)."""
    p = subprocess.run([t.ECHOBENCH, "-q"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def bench_json(*args, timeout=30):
    """Runs echobench --json; returns (status, document or None, stderr)."""
    st, out, err = bench("--json", *args, timeout=timeout)
    try:
        return st, json.loads(out), err
    except ValueError:
        return st, None, err + "\nstdout: " + out


def errors(doc):
    return {k: v for k, v in doc["errors"].items() if v} if doc else None


def unsent(conn):
    """Bytes of conn's send queue not yet acknowledged (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


class FaultServer:
    """An echo server on 127.0.0.1 port 0 with one fault, in threads.

    limit: close each connection after echoing that many bytes (rst: by a
    reset); delay: seconds to hold each echo; flip: message size, a bit is
    flipped in bytes 0 and 10 of each message of that size."""

    def __init__(self, limit=None, rst=False, delay=0.0, flip=0):
        self.limit, self.rst, self.delay, self.flip = limit, rst, delay, flip
        self.stopping = threading.Event()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.ls.settimeout(0.1)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            th = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            self.threads.append(th)
            th.start()

    def fault(self, data, pos):
        if self.delay:
            time.sleep(self.delay)
        if self.limit is not None:
            data = data[:self.limit - pos]
        if self.flip:
            data = bytearray(data)
            for i in range(len(data)):
                if (pos + i) % self.flip in (0, 10):
                    data[i] ^= 0x10
        return bytes(data)

    def close(self, conn):
        # What was echoed must reach the client before a reset, which
        # throws away what the send queue still holds.
        deadline = time.monotonic() + 2
        while unsent(conn) and time.monotonic() < deadline:
            time.sleep(0.001)
        if self.rst:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        # A close with unread bytes (the client's next message) would send
        # a reset: send the FIN alone, then read until the client closes.
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        conn.close()

    def serve(self, conn):
        conn.settimeout(10)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pos = 0
        try:
            while not self.stopping.is_set():
                data = conn.recv(65536)
                if not data:
                    break
                out = self.fault(data, pos)
                conn.sendall(out)
                pos += len(out)
                if self.limit is not None and pos >= self.limit:
                    self.close(conn)
                    return
        except OSError:
            pass
        conn.close()

    def stop(self):
        self.stopping.set()
        self.ls.close()
        for th in self.threads:
            th.join(12)


def run_against(server, *args, **kw):
    srv = FaultServer(**server)
    try:
        return bench_json(*args, srv.addr, **kw)
    finally:
        srv.stop()


# ------------------------------------------------------------ usage, documents

def test_usage():
    for args, line in ((["--expect-close", "0"], "echobench: expect-close 0: too small"),
                       (["--expect-close", "1x"], "echobench: expect-close 1x: invalid"),
                       (["--udp", "--expect-close", "1K"],
                        "echobench: --expect-close is for TCP: UDP has no connection to close")):
        st, out, err = bench(*(args + ["127.0.0.1:7"]))
        t.ok(st == 2 and not out and err.splitlines() == [line],
             "%s: exit 2, one line %r" % (" ".join(args), line), "status %d" % st, err)


def test_documents():
    p = subprocess.run([t.ECHOBENCH, "--help"], capture_output=True, text=True, timeout=10)
    helped = set(re.findall(r"^  (?:-\w, |    )--([a-z0-9-]+)", p.stdout, re.M))
    with open(os.path.join(t.ROOT, "man", "echobench.1")) as f:
        man = f.read()
    items = set(re.findall(r"^\.It Fl (?:\w , Fl )?-([a-z0-9-]+)", man, re.M))
    with open(os.path.join(t.ROOT, "README.md")) as f:
        readme = f.read()
    sect = readme[readme.index("## echobench"):]
    sect = sect[:sect.index("\n## ")]
    new = {"expect-close", "keep-going"}
    t.ok(p.returncode == 0 and new <= helped, "--help lists --expect-close and --keep-going", p.stdout)
    t.eq(sorted(helped ^ items), [], "man/echobench.1 describes exactly the options --help lists")
    t.eq(sorted(o for o in new if "`--%s" % o not in sect), [],
         "README's echobench section documents --expect-close and --keep-going")


# ------------------------------------------------------------ expected closes

def expect_ok(name, st, doc, err, closes_min=1, requests_min=1):
    good = (st == 0 and doc and not errors(doc) and not doc["failed"]
            and doc["expected_closes"] >= closes_min and doc["requests"] >= requests_min)
    t.ok(good, name, "status %d, errors %s, expected_closes %s, requests %s"
         % (st, errors(doc), doc and doc["expected_closes"], doc and doc["requests"]), err)
    return good


def test_expected_close():
    for rst in (False, True):
        how = "reset" if rst else "FIN"
        st, doc, err = run_against({"limit": 1000, "rst": rst}, "-c", "2", "-s", "64", "-D", "1",
                                   "-w", "0", "--expect-close", "1000")
        # 15 echoes a connection, then a new one: a 1 s run makes many.
        if expect_ok("close by %s after 1000 bytes, expected: counted, no error, exit 0" % how,
                     st, doc, err, closes_min=10, requests_min=100):
            t.ok(doc["expect_close_bytes"] == 1000 and doc["seconds"] >= 0.9,
                 "%s: reconnected for the run's whole duration, JSON names the limit" % how,
                 {k: doc[k] for k in ("expect_close_bytes", "seconds", "expected_closes")})
        else:
            t.ok(False, "%s: reconnected for the run's whole duration" % how)
    srv = FaultServer(limit=1000)
    st, out, err = bench("-c", "1", "-s", "64", "-D", "0.5", "-w", "0", "--expect-close", "1000",
                         srv.addr)
    srv.stop()
    t.ok(st == 0 and re.search(r"^  closes +\d+ expected closes, after 1000 bytes each$", out, re.M)
         and "errors     none" in out, "text summary: a line of expected closes, errors none", out, err)


def test_in_flight():
    # The close cuts a message partly echoed, with others in flight.
    runs = (("depth 4, 100-byte messages", {"limit": 1000}, ["-c", "2", "-s", "100", "-d", "4"]),
            ("open loop, depth 2", {"limit": 1000, "rst": True},
             ["-c", "2", "-s", "64", "-d", "2", "-r", "2000"]),
            ("stream, 64 KiB x 16, 1 MiB a connection", {"limit": 1 << 20},
             ["-m", "stream", "-c", "1"]),
            ("K suffix: 1K", {"limit": 1024}, ["-c", "1", "-s", "100"]))
    for name, server, args in runs:
        limit = "1K" if name.startswith("K suffix") else server["limit"]
        st, doc, err = run_against(server, *args, "-D", "1", "-w", "0", "--expect-close", limit)
        expect_ok("expected close, %s: no error, exit 0" % name, st, doc, err)
    # Cut messages give their quota back: -n still measures exactly N.
    st, doc, err = run_against({"limit": 1000}, "-c", "2", "-s", "64", "-d", "2", "-n", "500",
                               "-w", "0", "--expect-close", "1000")
    if expect_ok("expected close with -n 500: no error, exit 0", st, doc, err, closes_min=10):
        t.eq(doc["requests"], 500, "expected close with -n 500: exactly 500 echoes measured")
    else:
        t.ok(False, "expected close with -n 500: exactly 500 echoes measured")
    # Churn: every connection is cut before its 2000-byte echo completes.
    st, doc, err = run_against({"limit": 1000}, "-m", "churn", "-c", "2", "-s", "2000", "-D", "1",
                               "-w", "0", "--expect-close", "1000")
    expect_ok("churn, every connection closed after 1000 of 2000 bytes: counted, exit 0",
              st, doc, err, closes_min=10, requests_min=0)


def test_wrong_close():
    cases = ((512, False, r"conn \d+: closed after 512 bytes, expected 1000"),
             (512, True, r"conn \d+: reset after 512 bytes, expected 1000"),
             (1500, False, r"conn \d+: \d+ bytes echoed, expected a close after 1000"))
    for limit, rst, want in cases:
        st, doc, err = run_against({"limit": limit, "rst": rst}, "-c", "1", "-s", "64", "-D", "1",
                                   "-w", "0", "--expect-close", "1000")
        first = err.splitlines()[0] if err else ""
        t.ok(st == 1 and doc and doc["failed"] and errors(doc).get("closed", 0) >= 1
             and re.search(want, first),
             "server closes (%s) after %d bytes, 1000 expected: closed error with the count, exit 1"
             % ("reset" if rst else "FIN", limit), "status %d, errors %s" % (st, errors(doc)), err)
    st, doc, err = run_against({"limit": 1000}, "-c", "1", "-s", "64", "-D", "1", "-w", "0")
    t.ok(st == 1 and doc and errors(doc).get("closed", 0) >= 1 and doc["expected_closes"] == 0,
         "the same close without --expect-close: an error, exit 1", errors(doc), err)


# ------------------------------------------------------------ latency

def test_delay():
    for name, args in (("closed loop", []), ("open loop", ["-r", "40"])):
        st, doc, err = run_against({"delay": 0.02}, "-c", "2", "-s", "64", "-D", "1", "-w", "0",
                                   *args)
        p50 = doc["latency_us"]["p50"] if doc else 0
        t.diag("20 ms delay, %s: p50 %.0f us" % (name, p50))
        t.ok(st == 0 and doc and not errors(doc) and doc["requests"] >= 20 and p50 >= 20000,
             "server holding each echo 20 ms, %s: p50 >= 20 ms" % name,
             "status %d, p50 %s us" % (st, p50), err)


# ------------------------------------------------------------ corruption

def test_corrupt():
    st, doc, err = run_against({"flip": 64}, "-c", "2", "-s", "64", "-n", "200", "-w", "0",
                               "--keep-going")
    t.ok(st == 1 and doc and doc["failed"] and errors(doc) == {"mismatch": 200}
         and doc["corrupted_bytes"] == 400 and doc["requests"] == 200,
         "--keep-going: 200 echoes with two flipped bits each: 200 mismatches, 400 bytes, exit 1",
         "status %d, errors %s, corrupted_bytes %s, requests %s"
         % (st, errors(doc), doc and doc["corrupted_bytes"], doc and doc["requests"]), err)
    st, doc, err = run_against({"flip": 64}, "-c", "2", "-s", "64", "-D", "0.5", "-w", "0")
    first = err.splitlines()[0] if err else ""
    t.ok(st == 1 and doc and errors(doc) == {"mismatch": 2} and doc["corrupted_bytes"] == 4
         and re.search(r"conn \d+ message 0 byte 0: sent 0x.., got 0x..", first),
         "by default a corrupted echo ends its connection: 2 connections, 2 mismatches, 4 bytes",
         "status %d, errors %s, corrupted_bytes %s" % (st, errors(doc), doc and doc["corrupted_bytes"]),
         err)
    srv = FaultServer(flip=64)
    st, out, err = bench("-c", "1", "-s", "64", "-n", "50", "-w", "0", "--keep-going", srv.addr)
    srv.stop()
    t.ok(st == 1 and re.search(r"^  errors +mismatch 50 \(100 bytes corrupted\)$", out, re.M),
         "text summary: mismatch 50 (100 bytes corrupted)", out, err)


def test_udp_corrupt():
    # bench_broken.py flips one byte of every 100th datagram.
    srv = t.spawn([sys.executable, BROKEN, "corrupt", "--udp"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = srv.stderr.readline().decode()
    m = re.search(r"listening on udp (\S+:\d+)", line)
    st, doc, err = bench_json("--udp", "-c", "2", "-n", "1000", "-w", "0", "-t", "0.3",
                              m.group(1) if m else "127.0.0.1:7")
    srv.kill()
    srv.wait(timeout=5)
    n = errors(doc).get("mismatch", 0) if doc else 0
    t.ok(st == 1 and n >= 1 and doc["corrupted_bytes"] == n,
         "UDP: each corrupted datagram's differing byte counted", errors(doc), err)


def main():
    test_usage()
    test_documents()
    test_expected_close()
    test_in_flight()
    test_wrong_close()
    test_delay()
    test_corrupt()
    test_udp_corrupt()
    t.done_testing()


main()
