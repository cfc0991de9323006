#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""same_time.py - `make bench-same-time`: echod's CPU per echo against a
peer's, both serving the same open-loop load at the same time. Part of the
benchmarks (BENCHMARKS.md), not a test.

usage: bench/same_time.py [--workloads a,o,c,ch8,ch64] [--reps 5] [--duration 3]
                          [--warmup 1] [--backends epoll,io_uring] [--rate N]

`make bench` runs one server after another; on this shared machine the same
server moves by +-30 % from one minute to the next, and a ratio of two runs
seconds apart moves almost as much. Here each repetition starts echod and
one peer side by side on SERVER_CPU, and two echobench processes on LOAD_CPU
offer each the same fixed rate (below both servers' saturation) for the same
seconds: whatever the machine does then, it does to both. Each server's
CPU-µs per echo comes from echobench --server-pid; the cell is echod / peer,
the median of the per-repetition ratios (range). A run that falls more than
5 % short of the offered rate, or whose echoes come back wrong, makes its
repetition FAIL: that server did not carry the load.

Served at once, the two share the CPU's caches and interleave their
wakeups; echod against echod gives 0.97-1.00 (BENCHMARKS.md).

Workloads (open loop, -T 1): a = 1 connection x 64 B at 8,000/s,
o = 50 connections x 512 B at 8,000/s, c = 500 connections x 128 B at
15,000/s. Each CPU carries two of everything, so a rate must leave room
for twice a server's cost on SERVER_CPU and twice a client's on LOAD_CPU:
c at 25,000/s asked about 0.9 of each, and a repetition fell short now and
then, a client or a server, whichever the scheduler served last.

Churn (open loop, -m churn -T 1, 64 B, one echo per connection): ch8 = up
to 8 connections at a time, ch64 = up to 64, both at 2,000 connections/s.
A connection costs a server about 30-50 µs of CPU in a closed loop
(accept, one echo, the close) and echobench about 45 µs, so at 2,000/s two
servers take 0.12-0.2 of SERVER_CPU and two clients about 0.18 of
LOAD_CPU. At this rate fewer connections share a wakeup, and served side
by side echod and frevib's epoll server took 50-90 µs each (2026-12-06,
beside other work): still under 0.4 of a CPU, room for the noise. The
cells are CPU per connection, echod / peer.

Environment: ECHOD, ECHOBENCH (default build/); PEERS='name=cmd {PORT};...'
as for bench/run.sh (bench/peers.sh prints it); UVLOOP_PYTHON, a Python
with uvloop for a uvloop row (default: /usr/bin/python3 if it has it);
SERVER_CPU=0 LOAD_CPU=1.
"""

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from report import spread, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHOD = os.environ.get("ECHOD", os.path.join(ROOT, "build", "echod"))
ECHOBENCH = os.environ.get("ECHOBENCH", os.path.join(ROOT, "build", "echobench"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
WORKLOADS = {  # title, echobench arguments, offered rate (echoes/s)
    "a": ("a: 1 conn 64 B", ["-c", "1", "-s", "64"], 8000),
    "o": ("o: 50 conn 512 B", ["-c", "50", "-s", "512"], 8000),
    "c": ("c: 500 conn 128 B", ["-c", "500", "-s", "128"], 15000),
    "ch8": ("ch8: churn, 8 slots, 64 B", ["-m", "churn", "-c", "8", "-s", "64"], 2000),
    "ch64": ("ch64: churn, 64 slots, 64 B", ["-m", "churn", "-c", "64", "-s", "64"], 2000),
}


def workload(w, rate):
    """(column title, echobench arguments) of workload w at rate (0: its own)."""
    title, args, own = WORKLOADS[w]
    rate = rate or own
    text = "%gk" % (rate / 1000) if rate >= 1000 else "%d" % rate
    unit = " conn/s" if "churn" in args else "/s"
    return "%s at %s%s" % (title, text, unit), args + ["-r", str(rate)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peers():
    """[(name, command with {PORT})]: PEERS, then uvloop if there is one."""
    res = []
    for item in filter(None, os.environ.get("PEERS", "").split(";")):
        name, _, cmd = item.partition("=")
        if not cmd:
            sys.exit("same_time.py: PEERS: '%s' is not name=command" % item)
        res.append((name.strip(), cmd.strip()))
    py = os.environ.get("UVLOOP_PYTHON", "/usr/bin/python3")
    if os.path.exists(py) and subprocess.run([py, "-c", "import uvloop"],
                                             capture_output=True).returncode == 0:
        res.append(("uvloop", "%s %s --loop uvloop --port {PORT}"
                    % (py, os.path.join(ROOT, "bench", "ref_asyncio.py"))))
    return res


def start(cmd):
    """cmd on SERVER_CPU, its own process group; (process, port) once it echoes.
    The port is found free and then given to the server, so another process
    (a client's ephemeral port) may take it first: a server that exits at
    once is started again on another port, up to three times."""
    for _ in range(3):
        port = free_port()
        argv = ["taskset", "-c", SERVER_CPU] + shlex.split(cmd.replace("{PORT}", str(port)))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            probe = subprocess.run([ECHOBENCH, "-c", "1", "-n", "1", "-w", "0", "-q", "-t", "1",
                                    "127.0.0.1:%d" % port], capture_output=True)
            if probe.returncode == 0:
                return proc, port
            time.sleep(0.05)
        if proc.poll() is None:
            break
    stop(proc)
    raise RuntimeError("did not echo within 5 s: " + cmd)


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def load(args, port, pid, duration, warmup):
    """An echobench run on LOAD_CPU, not waited for."""
    argv = ["taskset", "-c", LOAD_CPU, ECHOBENCH] + args + [
        "-T", "1", "-D", str(duration), "-w", str(warmup), "-q", "--json", "--server-pid", str(pid),
        "127.0.0.1:%d" % port]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def result(run, timeout):
    """Server CPU-µs per echo (per connection in churn) of a finished load,
    or why the run failed."""
    try:
        out, _ = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        return None, "hung"
    try:
        doc = json.loads(out)
    except ValueError:
        return None, "no result (exit %d)" % run.returncode
    errors = {k: v for k, v in doc.get("errors", {}).items() if v}
    if errors:
        return None, " ".join("%s %d" % kv for kv in sorted(errors.items()))
    if doc.get("shortfall"):
        return None, "short"
    if run.returncode != 0 or doc.get("failed"):
        return None, "exit %d" % run.returncode
    return doc["cpu_us_per_request"]["server"]["total"], None


def one_rep(echod_cmd, peer_cmd, args, duration, warmup, echod_first):
    """(echod CPU, peer CPU) per echo under the same load at once, or why not."""
    order = [echod_cmd, peer_cmd] if echod_first else [peer_cmd, echod_cmd]
    servers = []
    try:
        for cmd in order:
            servers.append(start(cmd))
        runs = [load(args, port, proc.pid, duration, warmup) for proc, port in servers]
        got = [result(r, duration + warmup + 30) for r in runs]
    finally:
        for proc, _ in servers:
            stop(proc)
    if not echod_first:
        got.reverse()
    for (_, why), who in zip(got, ("echod", "peer")):
        if why:
            return None, "%s %s" % (who, why)
    return (got[0][0], got[1][0]), None


def cell(pairs, failures, reps):
    if not pairs:
        return "FAIL %d of %d: %s" % (len(failures), reps, failures[0] if failures else "?")
    text = spread([e / p for e, p in pairs])
    if failures:
        text += " (%d of %d: %s)" % (len(failures), reps, failures[0])
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="a,o")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--backends", default="epoll,io_uring")
    ap.add_argument("--rate", type=int, default=0,
                    help="offered echoes/s (connections/s in churn) for every workload "
                    "(default: its own)")
    a = ap.parse_args()
    works = a.workloads.split(",")
    for w in works:
        if w not in WORKLOADS:
            print("same_time.py: unknown workload '%s' (%s)" % (w, " ".join(WORKLOADS)),
                  file=sys.stderr)
            return 2
    listed = subprocess.run([ECHOD, "--list-backends"], capture_output=True, text=True).stdout
    backends = [b for b in a.backends.split(",") if "%s available" % b in listed]
    rows = []
    for b in backends:
        for name, cmd in peers():
            rows.append(("echod-%s / %s" % (b, name),
                         "%s --port {PORT} --threads 1 --backend %s" % (ECHOD, b), cmd))
    if not rows:
        sys.exit("same_time.py: no peer to compare with (PEERS, uvloop) or no backend")
    cells = {}
    for rep in range(a.reps):
        for w in works:
            for i, (row, echod_cmd, peer_cmd) in enumerate(rows):
                got, why = one_rep(echod_cmd, peer_cmd, workload(w, a.rate)[1], a.duration,
                                   a.warmup, (rep + i) % 2 == 0)
                pairs, fails = cells.setdefault((row, w), ([], []))
                (pairs.append(got) if got else fails.append(why))
                print("  %s %s rep %d: %s" % (row, w, rep + 1,
                      "%.1f / %.1f µs" % got if got else why), file=sys.stderr)
    churn = any("churn" in WORKLOADS[w][1] for w in works)
    churn = " (per connection in churn columns)" if churn else ""
    print("Server CPU-µs per echo%s, echod / peer, both serving the same open-loop load at "
          "the same time: median of the per-repetition ratios (range), %d repetitions of "
          "%g s:\n" % (churn, a.reps, a.duration))
    table(["echod / peer"] + [workload(w, a.rate)[0] for w in works],
          [[row] + [cell(*cells[(row, w)], a.reps) for w in works] for row, _, _ in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
