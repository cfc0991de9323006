#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""conns.py - what a connection costs echod: idle memory, and CPU per echo
as the count grows. Part of the benchmarks (BENCHMARKS.md), not a test.

usage: bench/conns.py [--backends epoll,io_uring] [--counts 10000,MAX]
                      [--reps 3] [--duration 3] [--size 128] [--many 10000]

1. Idle memory: a fresh `echod --threads 1 --backend B` gets 200 connections
   that each echo one byte (so that whatever a connection keeps after its
   first echo is counted once the server is warm), then N more that do the
   same and stay open, idle. From /proc/PID/smaps_rollup (Rss, Pss,
   Private_*) and VmRSS before and after, the cost per connection is
   (after - before) / N. N defaults to 10000 and to the most this process's
   descriptor limit allows (at most 19500; this process holds every client
   socket, so its own limit counts, not only echod's).
2. Flatness: `echobench -T 1 -c C -s SIZE` ping-pong at C = 50 and C = MANY
   (default 10000), server on CPU 0 and echobench on CPU 1, REPS
   interleaved repetitions (every backend and count once, then again):
   echoes/s, server and echobench CPU-µs per echo, medians, and MANY / 50 as
   the median of the per-repetition ratios.

Environment: ECHOD, ECHOBENCH (default build/), SERVER_CPU=0, LOAD_CPU=1.
"""

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHOD = os.environ.get("ECHOD", os.path.join(ROOT, "build", "echod"))
ECHOBENCH = os.environ.get("ECHOBENCH", os.path.join(ROOT, "build", "echobench"))
SERVER_CPU = int(os.environ.get("SERVER_CPU", "0"))
LOAD_CPU = int(os.environ.get("LOAD_CPU", "1"))
WARM = 200
SPARE = 100  # descriptors this process keeps for itself besides the sockets


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """echod --port 0 on SERVER_CPU; reads its TCP port from stderr."""

    def __init__(self, backend):
        cpu = SERVER_CPU
        self.proc = subprocess.Popen(
            [ECHOD, "--port", "0", "--threads", "1", "--backend", backend, "--bind", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        self.port = None
        deadline = time.monotonic() + 10
        for line in self.proc.stderr:
            m = re.search(r"listening on tcp \S+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if "echod: ready" in line or time.monotonic() > deadline:
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("echod --backend %s did not start" % backend)

    def memory(self):
        """{field: bytes} from smaps_rollup, and VmRSS."""
        res = {}
        with open("/proc/%d/smaps_rollup" % self.proc.pid) as f:
            for line in f:
                m = re.match(r"(\w+):\s+(\d+) kB", line)
                if m:
                    res[m.group(1)] = int(m.group(2)) * 1024
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    res["VmRSS"] = int(line.split()[1]) * 1024
        res["Private"] = res.get("Private_Clean", 0) + res.get("Private_Dirty", 0)
        return res

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_idle(port, n):
    """n connections that have each echoed one byte, left open."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"x")
        socks.append(s)
    for s in socks:
        if s.recv(1) != b"x":
            raise RuntimeError("no echo")
    return socks


def idle_cost(backend, n):
    srv = Server(backend)
    socks = []
    try:
        socks = open_idle(srv.port, WARM)
        time.sleep(0.5)
        before = srv.memory()
        socks += open_idle(srv.port, n)
        time.sleep(0.5)
        after = srv.memory()
    finally:
        srv.stop()
        for s in socks:
            s.close()
    return {k: (after[k] - before[k]) / n for k in ("VmRSS", "Rss", "Pss", "Private")}


def bench(backend, conns, args):
    srv = Server(backend)
    cpu = LOAD_CPU
    try:
        p = subprocess.run(
            [ECHOBENCH, "-T", "1", "-c", str(conns), "-s", str(args.size), "-D", str(args.duration),
             "-w", str(args.warmup), "-q", "--json", "--server-pid", str(srv.proc.pid),
             "127.0.0.1:%d" % srv.port],
            capture_output=True, text=True, timeout=args.duration + args.warmup + 120,
            preexec_fn=lambda: (raise_nofile(), os.sched_setaffinity(0, {cpu})))
    finally:
        srv.stop()
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = None
    if p.returncode != 0 or not doc or doc.get("failed"):
        print("conns.py: %s %d connections: echobench exit %d: %s" %
              (backend, conns, p.returncode, p.stderr.strip()[-300:]), file=sys.stderr)
        return None
    cpu = doc["cpu_us_per_request"]
    return doc["requests_per_s"], cpu["server"]["total"], cpu["client"]["total"]


def table(header, lines):
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")


def idle_part(args, limit):
    most = min(19500, limit - SPARE - WARM)
    counts = [most if c == "MAX" else int(c) for c in args.counts.split(",")]
    lines = []
    for n in counts:
        if n + WARM + SPARE > limit:
            print("conns.py: %d connections exceed this process's descriptor limit %d; skipped" %
                  (n, limit), file=sys.stderr)
            continue
        for b in args.backends.split(","):
            c = idle_cost(b, n)
            lines.append([b, str(n)] + ["%.0f" % c[k] for k in ("VmRSS", "Rss", "Pss", "Private")])
    print("Idle connections: bytes per connection, (after - before) / N, each connection "
          "having echoed one byte, after %d warm ones:" % WARM)
    print()
    table(["backend", "N", "VmRSS", "Rss", "Pss", "Private"], lines)


def flat_part(args):
    backends = args.backends.split(",")
    res = {(b, c): [] for b in backends for c in (50, args.many)}
    for _ in range(args.reps):
        for b in backends:
            for c in (50, args.many):
                res[(b, c)].append(bench(b, c, args))
                print("  %s %d connections done" % (b, c), file=sys.stderr)
    print()
    print("Ping-pong %d B, echobench -T 1 on CPU %d, echod --threads 1 on CPU %d, %d interleaved "
          "repetitions of %gs (+%gs warm-up); medians, and %d / 50 as the median of the "
          "per-repetition ratios (range):" % (args.size, LOAD_CPU, SERVER_CPU, args.reps,
                                             args.duration, args.warmup, args.many))
    print()
    lines = []
    for b in backends:
        few, many = res[(b, 50)], res[(b, args.many)]
        ok = [(x, y) for x, y in zip(few, many) if x and y]
        if not ok:
            lines.append([b, "FAIL"] + [""] * 8)
            continue

        def m(i, rs):
            return "%.1f" % statistics.median(r[i] for r in rs)

        def ratio(i):
            v = [y[i] / x[i] for x, y in ok]
            return "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v))
        lines.append([b, "%sk" % m(0, [(x[0] / 1e3,) for x, _ in ok]),
                      "%sk" % m(0, [(y[0] / 1e3,) for _, y in ok]), ratio(0),
                      m(1, [x for x, _ in ok]), m(1, [y for _, y in ok]), ratio(1),
                      m(2, [x for x, _ in ok]), m(2, [y for _, y in ok]), ratio(2)])
    # The client's cost too: at MANY it, not the server, sets the rate.
    table(["backend", "echoes/s at 50", "at %d" % args.many, "ratio",
           "server CPU-µs/echo at 50", "at %d" % args.many, "ratio",
           "echobench CPU-µs/echo at 50", "at %d" % args.many, "ratio"], lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default="epoll,io_uring")
    ap.add_argument("--counts", default="10000,MAX")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--many", type=int, default=10000)
    ap.add_argument("--no-idle", action="store_true", help="only the flatness part")
    ap.add_argument("--no-flat", action="store_true", help="only the idle memory part")
    args = ap.parse_args()
    limit = raise_nofile()
    if not args.no_idle:
        idle_part(args, limit)
    if not args.no_flat:
        flat_part(args)


if __name__ == "__main__":
    main()
