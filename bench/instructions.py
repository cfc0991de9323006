#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""instructions.py - `make bench-instructions`: user-space instructions per
echo under valgrind's callgrind, a figure this shared machine's noise does
not move, so that it can gate a change (--gate). Part of the benchmarks
(BENCHMARKS.md), not a test.

usage: bench/instructions.py [--n1 1000] [--n2 3000] [--gate N]
                             [--servers echod-epoll,...] [--deadline 20]

Each server runs under `valgrind --tool=callgrind`; echobench drives N1
echoes (-T 1 -w 0), the server is stopped with SIGINT and the `summary:`
lines of its callgrind output are added up (one per part of every file, a
forking server's children included; `totals:` repeats them and is not
added). Then the same with N2 echoes. (I2 - I1) / (N2 - N1) cancels what
start-up and shut-down cost, which is most of I1. Workloads, both closed
loop with one connection, so that each wakeup carries one echo and the
count does not depend on timing:
  ping-pong  -c 1 -s 64: instructions per echo
  churn      -m churn -c 1 -s 64: a connection per echo, so instructions
             per connection (accept, one echo, the close)
The readiness check reads /proc/net/tcp for the listening port instead of
connecting, so that no probe adds to either count.

Servers: echod-epoll and echod-io_uring (`echod --threads 1 --backend B
-b 127.0.0.1 --port P`, when `echod --list-backends` says B is available),
then every PEERS entry. A server that cannot be measured (it does not
start, answers wrongly, does not echo within the deadline or does not exit
on SIGINT) says n/a with the reason: every step has a deadline, and the
server's process group is killed in the end.

--gate N exits 1, with one line, when echod-epoll's ping-pong figure is
over N (or could not be measured).

Environment: ECHOD, ECHOBENCH (default build/); PEERS='name=cmd {PORT};...'
as for bench/run.sh; VALGRIND (default valgrind).
"""

import argparse
import glob
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

from report import table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHOD = os.environ.get("ECHOD", os.path.join(ROOT, "build", "echod"))
ECHOBENCH = os.environ.get("ECHOBENCH", os.path.join(ROOT, "build", "echobench"))
VALGRIND = os.environ.get("VALGRIND", "valgrind")
WORKLOADS = (("ping-pong", ["-c", "1", "-s", "64"]),
             ("churn", ["-m", "churn", "-c", "1", "-s", "64"]))
GATED = ("echod-epoll", "ping-pong")


def die(msg):
    """A usage error: one line, exit 2."""
    print("instructions.py: " + msg, file=sys.stderr)
    sys.exit(2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers():
    """[(name, command with {PORT} or None, why not)]: echod's backends, PEERS."""
    listed = subprocess.run([ECHOD, "--list-backends"], capture_output=True, text=True).stdout
    res = []
    for b in ("epoll", "io_uring"):
        cmd = "%s --threads 1 --backend %s -b 127.0.0.1 --port {PORT}" % (ECHOD, b)
        ok = "%s available" % b in listed
        res.append(("echod-" + b, cmd if ok else None, "" if ok else "not available here"))
    for item in filter(None, os.environ.get("PEERS", "").split(";")):
        name, _, cmd = item.partition("=")
        if not cmd:
            die("PEERS: '%s' is not name=command" % item)
        res.append((name.strip(), cmd.strip(), ""))
    return res


def listening(port):
    """True once a socket listens on port (any address, IPv4 or IPv6)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                for line in f.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def last_words(log):
    """The server's last line of its own (valgrind's start with ==)."""
    log.seek(0)
    lines = [line.strip() for line in log if line.strip() and not line.startswith("==")]
    return lines[-1] if lines else "no message"


def wait_listening(proc, port, log, deadline):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            return "exited at start: " + last_words(log)
        if listening(port):
            return None
        time.sleep(0.05)
    return "not listening within %g s" % deadline


def drive(args, n, port, deadline):
    """n echoes through echobench; None, or why they did not all come back."""
    argv = [ECHOBENCH] + args + ["-T", "1", "-n", str(n), "-w", "0", "-q", "--json",
                                 "-t", str(deadline), "127.0.0.1:%d" % port]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=deadline)
    except subprocess.TimeoutExpired:
        return "%d echoes not done within %g s" % (n, deadline)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        err = p.stderr.strip().splitlines()
        return "echobench exit %d: %s" % (p.returncode, err[-1] if err else "no result")
    errors = {k: v for k, v in doc.get("errors", {}).items() if v}
    if errors:
        return "echobench: " + " ".join("%s %d" % kv for kv in sorted(errors.items()))
    if p.returncode != 0 or doc.get("requests") != n:
        return "echobench exit %d, %s of %d echoes" % (p.returncode, doc.get("requests"), n)
    return None


def summary(prefix):
    """The instructions of every part of every callgrind file, or None."""
    total, seen = 0, False
    for path in glob.glob(prefix + ".*"):
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("summary:"):
                    total += int(line.split()[1])
                    seen = True
    return total if seen else None


def measure(cmd, args, n, deadline):
    """(instructions, None) of one run of n echoes, or (None, why not)."""
    with tempfile.TemporaryDirectory(prefix="instructions.") as d, \
            open(os.path.join(d, "log"), "w+") as log:
        port = free_port()
        out = os.path.join(d, "callgrind.out")
        argv = [VALGRIND, "--tool=callgrind", "--trace-children=yes",
                "--callgrind-out-file=%s.%%p" % out] + shlex.split(cmd.replace("{PORT}", str(port)))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, start_new_session=True)
        try:
            why = wait_listening(proc, port, log, deadline) or drive(args, n, port, deadline)
            if why is None:
                why = stop(proc, deadline)
        finally:
            kill(proc)
        if why:
            return None, why
        got = summary(out)
        return (got, None) if got is not None else (None, "no callgrind summary")


def stop(proc, deadline):
    """SIGINT, and callgrind writes its file as the server exits.

    valgrind 3.19 runs io_uring_enter as a call that does not block: while
    it waits, valgrind keeps its one-thread-at-a-time lock and the signals
    blocked, and a signal that comes meanwhile is picked up only when
    enough guest code has run since. So an io_uring server waiting for a
    completion may never act on SIGINT (nor echod's main thread run, which
    reads it): n/a after the deadline. A connection to wake the server was
    tried and is not enough.
    """
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(deadline)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        return "did not exit within %g s of SIGINT" % deadline
    return None


def kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def per_echo(name, cmd, args, what, a):
    """(I2 - I1) / (N2 - N1), or None and why not."""
    counts = []
    for n in (a.n1, a.n2):
        got, why = measure(cmd, args, n, a.deadline)
        print("  %s %s n=%d: %s" % (name, what, n, "%d instructions" % got if why is None else why),
              file=sys.stderr)
        if why:
            return None, why
        counts.append(got)
    return (counts[1] - counts[0]) / (a.n2 - a.n1), None


def cell(fig, why):
    return "{:,.0f}".format(fig) if why is None else "n/a (%s)" % why


def gate(results, limit):
    """0 when echod-epoll's ping-pong is within limit, else 1 and one line."""
    fig, why = results.get(GATED, (None, "not measured"))
    if why is not None:
        print("instructions.py: gate: %s %s could not be measured (%s)" % (GATED + (why,)),
              file=sys.stderr)
        return 1
    if fig > limit:
        print("instructions.py: gate: %s %s: %.0f instructions per echo, over the gate of %d"
              % (GATED + (fig, limit)), file=sys.stderr)
        return 1
    print("\nGate: %s %s %.0f instructions per echo, within %d." % (GATED + (fig, limit)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n1", type=int, default=1000)
    ap.add_argument("--n2", type=int, default=3000)
    ap.add_argument("--gate", type=int, default=None,
                    help="exit 1 when echod-epoll's ping-pong figure is over this")
    ap.add_argument("--servers", default="", help="only these rows, comma-separated")
    ap.add_argument("--deadline", type=float, default=20.0,
                    help="seconds for each step: start, the echoes, the exit")
    a = ap.parse_args()
    if not 0 < a.n1 < a.n2:
        die("need 0 < --n1 < --n2")
    try:
        version = subprocess.run([VALGRIND, "--version"], capture_output=True,
                                 text=True).stdout.strip()
    except OSError:
        die("%s not found (Debian: apt-get install valgrind)" % VALGRIND)
    rows = servers()
    if a.servers:
        wanted = a.servers.split(",")
        unknown = set(wanted) - {r[0] for r in rows}
        if unknown:
            die("unknown server '%s' (%s)" % (sorted(unknown)[0], " ".join(r[0] for r in rows)))
        rows = [r for r in rows if r[0] in wanted]
    results = {}
    for name, cmd, why in rows:
        for what, args in WORKLOADS:
            results[(name, what)] = per_echo(name, cmd, args, what, a) if cmd else (None, why)
    print("User-space instructions (callgrind's Ir, the server and its children) per echo: "
          "(I(%d) - I(%d)) / %d, echobench -T 1 -w 0; %s.\n"
          % (a.n2, a.n1, a.n2 - a.n1, version))
    table(["server", "ping-pong instr/echo", "churn instr/conn"],
          [[name] + [cell(*results[(name, w)]) for w, _ in WORKLOADS] for name, _, _ in rows])
    return gate(results, a.gate) if a.gate is not None else 0


if __name__ == "__main__":
    sys.exit(main())
