#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""instructions.t - `make bench-instructions` (bench/instructions.py) on a
tiny run: echod-epoll, and a peer that listens but never echoes (echod with
the stall fault), which must say n/a with its reason after the deadline
instead of hanging the run. --gate 1 must fail with one line naming the
figure. No figure is judged beyond being a number: what echod costs is for
the benchmark, not for a test.

Skips without valgrind (fails under CI=true) and in sanitizer builds (their
runtime and valgrind cannot share a process).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

SCRIPT = os.path.join(t.ROOT, "bench", "instructions.py")
FIGURE = re.compile(r"^[\d,]+$")


def tables(text):
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]


def run(*args, **env):
    env = dict(os.environ, ECHOD=t.ECHOD, ECHOBENCH=t.ECHOBENCH, **env)
    return subprocess.run([sys.executable, SCRIPT] + list(args), env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_table_and_gate():
    mute = "%s --port {PORT} -b 127.0.0.1 --threads 1 --backend epoll --fault stall" % t.ECHOD
    p = run("--servers", "echod-epoll,mute", "--n1", "20", "--n2", "60", "--deadline", "4",
            "--gate", "1", PEERS="mute=" + mute)
    rows = tables(p.stdout)
    t.ok(rows and rows[0] == ["server", "ping-pong instr/echo", "churn instr/conn"],
         "the table: a column per workload", p.stdout[-2000:], p.stderr[-2000:])
    by = {r[0]: r[1:] for r in rows[1:]}
    t.eq(sorted(by), ["echod-epoll", "mute"], "a row per server asked for")
    cells = by.get("echod-epoll", ["", ""])
    t.ok(all(FIGURE.match(c) for c in cells), "echod-epoll: instructions per echo and per connection",
         cells, p.stderr[-2000:])
    cells = by.get("mute", ["", ""])
    t.ok(all(c.startswith("n/a (") and "within 4 s" in c for c in cells),
         "a server that never echoes: n/a with the reason, after the deadline", cells)
    t.eq(p.returncode, 1, "--gate 1: exit 1")
    last = p.stderr.strip().splitlines()[-1:] or [""]
    t.ok(re.match(r"^instructions\.py: gate: echod-epoll ping-pong: \d+ instructions per echo, "
                  r"over the gate of 1$", last[0]), "and one line that says why", last[0])


def test_bad_input():
    p = run("--servers", "zz")
    t.eq(p.returncode, 2, "an unknown server: exit 2")
    t.ok("unknown server 'zz'" in p.stderr, "and one line that names it", p.stderr)


def main():
    if t.SANITIZED:
        t.skip("bench/instructions.py", "sanitizer build")
    elif t.need_program("valgrind"):
        test_table_and_gate()
        test_bad_input()
    else:
        t.skip("bench/instructions.py", "valgrind not installed")
    t.done_testing()


main()
