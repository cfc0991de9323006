#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""echobench_threshold.t - --threshold and a standard output of one document.

Against tests/bench_broken.py's `delay` server, which holds each echo for
20 ms: `p99<5ms` is broken (exit 3, the threshold and the measured value on
standard error) and `p99<200ms` kept (exit 0); --json carries every
threshold with its verdict; `shortfall` is held to an open loop the server
cannot keep up with and `loss` to a UDP server that drops one datagram in a
hundred. A malformed threshold, or one the run does not measure, is a usage
error of one line; a run whose echoes are wrong exits 1 whatever its
thresholds. Against echod, `errors = 0` is kept, and `--csv -` writes
nothing but CSV on standard output.
"""

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

BROKEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_broken.py")


def bench(*args, timeout=30):
    """Runs echobench -q; returns (status, stdout, stderr)."""
    p = subprocess.run([t.ECHOBENCH, "-q"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def bench_json(*args):
    """Runs echobench --json; returns (status, document or None, stderr)."""
    st, out, err = bench("--json", *args)
    try:
        return st, json.loads(out), err
    except ValueError:
        return st, None, err + "\nstdout: " + out


class Broken:
    """tests/bench_broken.py in one mode; its port read with a deadline."""

    def __init__(self, mode, udp=False):
        argv = [sys.executable, BROKEN, mode] + (["--udp"] if udp else [])
        self.proc = t.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
        rx = re.compile(r"listening on %s 127\.0\.0\.1:(\d+)" % ("udp" if udp else "tcp"))
        deadline = time.monotonic() + 10
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.1)
            if ready:
                line = self.proc.stderr.readline()
                break
        m = rx.search(line.decode())
        if not m:
            raise RuntimeError("bench_broken.py %s did not start: %r" % (mode, line))
        self.addr = "127.0.0.1:%s" % m.group(1)

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


def one_line_usage(args, want, name):
    st, out, err = bench(*(list(args) + ["127.0.0.1:7"]))
    lines = err.splitlines()
    t.ok(st == 2 and not out and len(lines) == 1 and want in lines[0], name,
         "status %d" % st, err)


def test_usage():
    for expr, want in (("p99<5", "latency needs a unit"),
                       ("p98<5ms", "unknown metric"),
                       ("p99>5ms", "no operator"),
                       ("p99<=5ms", "p99 takes < only"),
                       ("max<0ms", "limit must be above 0"),
                       ("p99<fast", "limit is not a number"),
                       ("errors=1", "errors takes = 0 only"),
                       ("loss<1 ms", "loss is a percentage")):
        one_line_usage(["--threshold", expr], "threshold %s: %s" % (expr, want),
                       "--threshold %r: exit 2, one line %r" % (expr, want))
    one_line_usage(["--threshold", "loss<1%"], "loss is measured only with --udp",
                   "--threshold loss on TCP: exit 2, one line")
    one_line_usage(["--threshold", "shortfall<5%"], "only in an open loop",
                   "--threshold shortfall in a closed loop: exit 2, one line")
    st, out, _ = bench("--help")
    t.ok(st == 0 and "--threshold EXPR" in out and "exit 3" in out,
         "--help names --threshold and its exit status 3", out)


def test_latency(srv):
    st, out, err = bench("-c", "1", "-D", "1", "-w", "0", "--threshold", "p99<5ms", srv.addr)
    m = re.search(r"^echobench: threshold p99<5ms broken: p99 was ([\d.]+) ms, limit 5\.00 ms$",
                  err, re.M)
    t.ok(st == 3 and m and float(m.group(1)) >= 15,
         "20 ms per echo, p99<5ms: exit 3, the threshold and p99 measured on stderr",
         "status %d" % st, err)
    t.ok(re.search(r"^  threshold  p99<5ms: p99 [\d.]+ ms, broken$", out, re.M),
         "the summary shows the threshold broken", out)
    st, out, err = bench("-c", "1", "-D", "1", "-w", "0", "--threshold", "p99 < 200 ms", srv.addr)
    t.ok(st == 0 and "broken" not in err and
         re.search(r"^  threshold  p99 < 200 ms: p99 [\d.]+ ms, kept$", out, re.M),
         "20 ms per echo, 'p99 < 200 ms': exit 0, kept", "status %d" % st, out, err)


def test_json(srv):
    st, doc, err = bench_json("-c", "1", "-D", "1", "-w", "0", "--threshold", "p99<200ms",
                              "--threshold", "errors = 0", "--threshold", "p50<1ms", srv.addr)
    th = doc.get("thresholds") if doc else None
    t.ok(st == 3 and isinstance(th, list) and len(th) == 3 and
         all(sorted(x) == ["expr", "limit", "measured", "metric", "ok", "unit"] for x in th),
         "--json: a thresholds array of {expr, metric, unit, limit, measured, ok}; exit 3",
         "status %d" % st, json.dumps(th), err)
    # Each check below fails alone when the array is missing or short.
    p99, errors, p50 = ((th if isinstance(th, list) else []) + [{}, {}, {}])[:3]
    t.ok(p99.get("expr") == "p99<200ms" and p99.get("metric") == "p99"
         and p99.get("unit") == "us" and p99.get("limit") == 200000
         and 15000 <= p99.get("measured", 0) < 200000 and p99.get("ok") is True,
         "--json: p99<200ms kept, limit and p99 in microseconds", json.dumps(p99))
    t.ok(errors.get("expr") == "errors = 0" and errors.get("metric") == "errors"
         and errors.get("measured") == 0 and errors.get("ok") is True,
         "--json: errors = 0 kept", json.dumps(errors))
    t.ok(p50.get("metric") == "p50" and p50.get("measured", 0) >= 15000
         and p50.get("ok") is False and p50.get("measured") == (doc or {}).get("latency_us", {}).get("p50"),
         "--json: p50<1ms broken, measured as latency_us.p50", json.dumps(p50))


def test_shortfall(srv):
    # One connection held 20 ms per echo reaches about 50/s of the 200 offered.
    st, doc, err = bench_json("-c", "1", "-D", "1", "-w", "0", "-r", "200",
                              "--threshold", "shortfall<10%", srv.addr)
    th = doc["thresholds"][0] if doc and doc.get("thresholds") else {}
    t.ok(st == 3 and th.get("ok") is False and th.get("measured", 0) > 50
         and "threshold shortfall<10% broken: shortfall was" in err,
         "open loop beyond the server: shortfall<10% broken, exit 3",
         "status %d" % st, json.dumps(th), err)


def test_loss():
    srv = Broken("drop", udp=True)
    st, doc, err = bench_json("--udp", "-c", "2", "-D", "1", "-w", "0", "-t", "0.2",
                              "--threshold", "loss < 50%", "--threshold", "loss<0.1%",
                              "--threshold", "errors=0", srv.addr)
    srv.stop()
    th = doc.get("thresholds", []) if doc else []
    lost = doc["errors"]["lost"] if doc else 0
    t.ok(st == 3 and len(th) == 3 and th[0]["ok"] and not th[1]["ok"]
         and 0.3 <= th[0]["measured"] <= 3 and lost > 0,
         "UDP, one datagram in 100 dropped: loss<50% kept, loss<0.1% broken, exit 3",
         "status %d, lost %d" % (st, lost), json.dumps(th), err)
    all_errors = sum(doc["errors"].values()) if doc else -1
    t.ok(len(th) == 3 and not th[2]["ok"] and th[2]["measured"] == all_errors >= lost > 0,
         "UDP losses count as errors: errors=0 broken, measured as the errors' sum",
         json.dumps(th), err)


def test_wrong_echoes_exit_1():
    srv = Broken("corrupt")
    st, out, err = bench("-c", "1", "-D", "0.5", "-w", "0", "--threshold", "p99<1ns", srv.addr)
    srv.stop()
    t.ok(st == 1 and "threshold p99<1ns broken" in err,
         "wrong echoes and a broken threshold: exit 1, the threshold still named",
         "status %d" % st, err)


def test_errors_zero(echod):
    st, out, err = bench("-c", "2", "-D", "0.5", "-w", "0", "--threshold", "errors=0",
                         "127.0.0.1:%d" % echod.port)
    t.ok(st == 0 and "errors     none" in out and
         re.search(r"^  threshold  errors=0: errors 0, kept$", out, re.M),
         "a good run against echod: errors=0 kept, exit 0", "status %d" % st, out, err)


def test_csv_stdout(echod):
    st, out, err = bench("-c", "1", "-D", "0.5", "-w", "0", "--csv", "-",
                         "--threshold", "p99<10s", "127.0.0.1:%d" % echod.port)
    try:
        rows = list(csv.reader(io.StringIO(out, newline=""), strict=True))
        numbers = [[float(v) for v in r] for r in rows[1:]]
    except (csv.Error, ValueError) as e:
        rows, numbers = [], str(e)
    t.ok(st == 0 and rows and rows[0] == ["latency_us", "percentile", "count",
                                          "inverse_1_minus_p"]
         and len(rows) > 1 and all(len(r) == 4 for r in rows) and isinstance(numbers, list),
         "--csv -: standard output is CSV alone, every row 4 numeric fields after the header",
         "status %d" % st, out[:2000], err)
    t.ok("echobench:" not in out and "latency " not in out and "threshold" not in out,
         "--csv -: no summary line on standard output", out[:2000])
    t.ok("errors     none" in err and "threshold  p99<10s" in err,
         "--csv -: the summary, thresholds included, on standard error", err)


def main():
    test_usage()
    srv = Broken("delay")
    test_latency(srv)
    test_json(srv)
    test_shortfall(srv)
    srv.stop()
    test_loss()
    test_wrong_echoes_exit_1()
    try:
        echod = t.Echod("--threads", "1")
    except (RuntimeError, OSError) as e:
        t.bail_out("echod did not start: %s" % e)
    test_errors_zero(echod)
    test_csv_stdout(echod)
    echod.stop()
    t.done_testing()


main()
