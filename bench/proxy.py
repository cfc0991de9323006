#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""proxy.py - `make bench-proxy`: what the PROXY header costs echod (issue
14's PROXY column). Part of the benchmarks (BENCHMARKS.md), not a test.

usage: bench/proxy.py [--workloads o,churn] [--reps 5] [--duration 3]
                      [--warmup 1] [--backend epoll] [--rate N] [--churn-rate N]

Each repetition starts two echods side by side on SERVER_CPU, one with
--proxy-protocol --proxy-from 127.0.0.1 and one without, each behind an
HAProxy of its own on LOAD_CPU (`send-proxy-v2` for the first, a plain
`server` line for the second), and two echobench processes on LOAD_CPU
offer each HAProxy the same fixed rate for the same seconds, as
bench/same_time.py pairs servers: whatever the machine does then, it does
to both. echod's CPU-µs per echo comes from echobench --server-pid (echod's
pid, not HAProxy's); the cell is with header / without, the median of the
per-repetition ratios (range), beside the median of each side. Which pair
starts first alternates.

Workloads: o = 50 connections x 512 B at 4,000/s, the header paid once a
connection and then amortised; churn = echobench -m churn, 10 slots x 64 B
at 500 connections/s, one echo per connection, so a header per echo: where
its cost shows. The rates are lower than same_time.py's because HAProxy's
own work (two of them) shares LOAD_CPU with both clients.

A run that falls short of the offered rate, or has an error (a proxied
echod that got no header closes the connection, which is one), FAILs its
repetition.

Environment: ECHOD, ECHOBENCH (default build/), HAPROXY (default: haproxy
on PATH), SERVER_CPU=0 LOAD_CPU=1.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from report import spread, table
from same_time import ECHOBENCH, ECHOD, LOAD_CPU, SERVER_CPU, free_port, result, stop

HAPROXY = os.environ.get("HAPROXY") or shutil.which("haproxy")
WORKLOADS = {  # title, echobench arguments, default rate
    "o": ("o: 50 conn 512 B", ["-c", "50", "-s", "512"], 4000),
    "churn": ("churn: 10 slots 64 B, 1 echo a connection", ["-m", "churn", "-c", "10", "-s", "64"], 500),
}


def listening(port):
    """Whether 127.0.0.1:port listens (/proc/net/tcp): echod and HAProxy
    are waited for this way, since a probe straight to a proxied echod
    without a header is refused."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:])


def wait_listening(port, proc, what):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited %d" % (what, proc.returncode))
        if listening(port):
            return
        time.sleep(0.02)
    raise RuntimeError("%s not listening within 5 s" % what)


def spawn(argv, cpu):
    return subprocess.Popen(["taskset", "-c", cpu] + argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def start_pair(tmp, backend, header):
    """An echod (with --proxy-protocol when header) behind its HAProxy;
    [(echod, port), (haproxy, port)] once an echo comes back through both."""
    procs = []
    try:
        port = free_port()
        argv = [ECHOD, "--port", str(port), "--threads", "1", "--backend", backend, "-b", "127.0.0.1"]
        if header:
            argv += ["--proxy-protocol", "--proxy-from", "127.0.0.1"]
        procs.append((spawn(argv, SERVER_CPU), port))
        wait_listening(port, procs[0][0], "echod")
        front = free_port()
        cfg = os.path.join(tmp, "haproxy-%d.cfg" % front)
        with open(cfg, "w") as f:
            f.write("global\n    maxconn 4096\n"
                    "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n"
                    "    timeout server 30s\n"
                    "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
                    "backend be\n    server echod 127.0.0.1:%d%s\n"
                    % (front, port, " send-proxy-v2" if header else ""))
        procs.append((spawn([HAPROXY, "-f", cfg, "-db"], LOAD_CPU), front))
        wait_listening(front, procs[1][0], "haproxy")
        probe = subprocess.run([ECHOBENCH, "-c", "1", "-n", "1", "-w", "0", "-q", "-t", "1",
                                "127.0.0.1:%d" % front], capture_output=True, timeout=10)
        if probe.returncode != 0:
            raise RuntimeError("no echo through haproxy (%s)" % ("send-proxy-v2" if header else "plain"))
        return procs
    except BaseException:
        for p, _ in procs:
            stop(p)
        raise


def load(args, front, pid, duration, warmup):
    """An echobench run through HAProxy on LOAD_CPU, measuring echod (pid)."""
    argv = ["taskset", "-c", LOAD_CPU, ECHOBENCH] + args + [
        "-T", "1", "-D", str(duration), "-w", str(warmup), "-q", "--json", "--server-pid", str(pid),
        "127.0.0.1:%d" % front]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def one_rep(tmp, backend, args, duration, warmup, header_first):
    """(with header, without) echod CPU-µs per echo, or why not."""
    order = [True, False] if header_first else [False, True]
    pairs = []
    try:
        for header in order:
            pairs.append(start_pair(tmp, backend, header))
        runs = [load(args, front, echod.pid, duration, warmup) for (echod, _), (_, front) in pairs]
        got = [result(r, duration + warmup + 30) for r in runs]
    except RuntimeError as e:
        return None, str(e)
    finally:
        for pair in pairs:
            for p, _ in reversed(pair):
                stop(p)
    if not header_first:
        got.reverse()
    for (_, why), who in zip(got, ("with header", "without")):
        if why:
            return None, "%s %s" % (who, why)
    return (got[0][0], got[1][0]), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="o,churn")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--backend", default="epoll")
    ap.add_argument("--rate", type=int, default=0, help="echoes/s of o (default 4000)")
    ap.add_argument("--churn-rate", type=int, default=0, help="connections/s of churn (default 500)")
    a = ap.parse_args()
    if not HAPROXY:
        sys.exit("proxy.py: haproxy not found (HAPROXY=, or install Debian's haproxy)")
    works = a.workloads.split(",")
    for w in works:
        if w not in WORKLOADS:
            sys.exit("proxy.py: unknown workload '%s' (%s)" % (w, " ".join(WORKLOADS)))
    rates = {"o": a.rate, "churn": a.churn_rate}
    titles, cells = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            for i, w in enumerate(works):
                title, args, own = WORKLOADS[w]
                rate = rates[w] or own
                titles[w] = "%s at %d/s" % (title, rate)
                got, why = one_rep(tmp, a.backend, args + ["-r", str(rate)], a.duration, a.warmup,
                                   (rep + i) % 2 == 0)
                pairs, fails = cells.setdefault(w, ([], []))
                (pairs.append(got) if got else fails.append(why))
                print("  %s rep %d: %s" % (w, rep + 1, "%.1f / %.1f µs" % got if got else why), file=sys.stderr)
    print("echod-%s CPU-µs per echo behind HAProxy, with send-proxy-v2 (--proxy-protocol) / without, both "
          "served at the same time under the same open-loop load: median of the per-repetition ratios "
          "(range), and each side's median; %d repetitions of %g s:\n" % (a.backend, a.reps, a.duration))
    rows = []
    for w in works:
        pairs, fails = cells[w]
        if pairs:
            ratio = spread([h / p for h, p in pairs])
            sides = ["%.1f" % statistics.median(x) for x in zip(*pairs)]
        else:
            ratio, sides = "FAIL", ["-", "-"]
        if fails:
            ratio += " (%d of %d: %s)" % (len(fails), a.reps, fails[0])
        rows.append([titles[w], ratio] + sides)
    table(["workload", "with / without", "with header µs", "without µs"], rows)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
