#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""echobench_hlog.t - echobench's HdrHistogram interval log, read back by
HdrHistogram's reference implementation (Debian's libhdrhistogram-java, its
HistogramLogProcessor); several load hosts merged; the SVG plots.

The log processor must find the same echo count as echobench's summary, per
interval and in all, and the same percentiles within 1 %. The multi-host run
is simulated on loopback: three echobench processes, each from its own
source address (127.0.0.2, .3, .4) and all with the same --start-at, against
one echod, then `echobench merge`. The plots are rendered to PNG with
rsvg-convert and their series counted.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

TMP = tempfile.mkdtemp(prefix="echobench-hlog-t.")
JAR = "/usr/share/java/hdrhistogram.jar"


def bench_json(*args):
    p = subprocess.run([t.ECHOBENCH, "--json", "-q"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr + "\nstdout: " + p.stdout


def java_processor(hlog):
    """HistogramLogProcessor's CSV of a log, values in microseconds."""
    java = t.need_program("java")
    if not java or not os.path.exists(JAR):
        if t.IN_CI:
            t.ok(False, "libhdrhistogram-java is installed (%s)" % JAR)
        return None
    out = os.path.join(TMP, "processed")
    p = subprocess.run([java, "-cp", JAR, "org.HdrHistogram.HistogramLogProcessor", "-csv",
                        "-i", hlog, "-o", out, "-outputValueUnitRatio", "1000"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode:
        return {"error": p.stdout + p.stderr}
    with open(out) as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    return {"header": rows[0], "rows": rows[1:]}


def close(a, b, rel=0.01):
    return abs(a - b) <= rel * max(abs(b), 1e-9)


def test_reference_reader(echod):
    hlog = os.path.join(TMP, "run.hlog")
    st, doc, err = bench_json("-c", "2", "-D", "2", "-w", "0.3", "--hlog", hlog,
                              "127.0.0.1:%d" % echod.port)
    t.ok(st == 0 and doc and doc["requests"] > 0, "run with --hlog: exit 0", err)
    with open(hlog) as f:
        head = f.read(400)
    t.ok(head.startswith("#[Histogram log format version 1.3]\n#[StartTime: ")
         and '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
         in head and ",HISTF" in head, "--hlog: the standard header lines, base64 V2 histograms",
         head)
    proc = java_processor(hlog)
    if proc is None:
        t.skip("HdrHistogram's HistogramLogProcessor reads the log", "no java or jar")
        return
    t.ok("rows" in proc and proc["rows"], "HdrHistogram's HistogramLogProcessor reads the log",
         proc.get("error"))
    if "rows" not in proc or not doc:
        return
    col = {name: i for i, name in enumerate(proc["header"])}
    last = proc["rows"][-1]
    measured = [iv["echoes"] for iv in doc["intervals"] if not iv["warmup"]]
    got = [int(r[col["Int_Count"]]) for r in proc["rows"]]
    t.eq(int(last[col["Total_Count"]]), doc["requests"],
         "reference reader: total count equals echobench's echoes")
    t.ok(len(got) == len(measured) and all(close(a, b, 0.01) for a, b in zip(got, measured)),
         "reference reader: one histogram per measured interval, counts agree",
         "hlog %s, json %s" % (got, measured))
    lat = doc["latency_us"]
    pairs = [("Total_50%", "p50"), ("Total_90%", "p90"), ("Total_99%", "p99"),
             ("Total_99.9%", "p99_9")]
    bad = ["%s: java %s, echobench %s" % (k, last[col[k]], lat[j]) for k, j in pairs
           if not close(float(last[col[k]]), lat[j])]
    t.ok(not bad, "reference reader: p50, p90, p99, p99.9 within 1 % of echobench's", *bad)


def bench(*args, timeout=60):
    p = subprocess.run([t.ECHOBENCH] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_multi_host(echod):
    # Three "hosts" told to measure the same seconds.
    start = time.time() + 2.5
    procs, runs = [], []
    for i in (2, 3, 4):
        base = os.path.join(TMP, "host%d" % i)
        procs.append((base, t.spawn(
            [t.ECHOBENCH, "--json", "-q", "-c", "3", "-D", "1.5", "-w", "0.3",
             "--start-at", "%.3f" % start, "--source", "127.0.0.%d" % i,
             "--hlog", base + ".hlog", "127.0.0.1:%d" % echod.port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for base, p in procs:
        out, err = p.communicate(timeout=60)
        with open(base + ".json", "w") as f:
            f.write(out)
        try:
            runs.append(json.loads(out))
        except ValueError:
            t.ok(False, "host run produces JSON", out, err)
            return
        t.ok(p.returncode == 0 and not [k for k, v in runs[-1]["errors"].items() if v],
             "host %s: every echo verified, exit 0" % base[-5:], err)
    t.ok(all(abs(r["window_start_unix"] - start) < 0.05 for r in runs),
         "--start-at: every host's window began at the given time",
         [r["window_start_unix"] - start for r in runs])
    st, out, err = bench("merge", "--json", *[b + ".hlog" for b, _ in procs])
    st2, out2, err2 = bench("merge", "--json", *[b + ".json" for b, _ in procs])
    try:
        merged, merged2 = json.loads(out), json.loads(out2)
    except ValueError:
        t.ok(False, "merge --json produces JSON", out, err, out2, err2)
        return
    total = sum(r["requests"] for r in runs)
    p99s = [r["p99_us"] for r in merged["runs"]]
    t.diag("hosts: %s echoes, p99 %s us; merged %d, p99 %.1f us" %
           ([r["requests"] for r in runs], p99s, merged["requests"],
            merged["latency_us"]["p99"]))
    t.ok(st == 0 and merged["requests"] == total and merged2["requests"] == total,
         "merge: the merged echo count is the sum of the hosts' (from hlogs and from JSON)",
         "sum %d, hlogs %d, json %d" % (total, merged["requests"], merged2["requests"]), err)
    t.ok(min(p99s) <= merged["latency_us"]["p99"] <= max(p99s)
         and all(close(a["p99_us"], r["latency_us"]["p99"]) for a, r in zip(merged["runs"], runs)),
         "merge: the merged p99 lies between the hosts' p99s (percentiles of merged histograms)",
         p99s, merged["latency_us"])
    t.ok(merged["latency_us"]["p99"] == merged2["latency_us"]["p99"]
         and abs(merged["seconds"] - 1.5) < 0.1,
         "merge: hlogs and JSON give the same result, over the shared window",
         merged["seconds"], merged2["seconds"])
    st, out, err = bench("merge", "--svg", os.path.join(TMP, "merged.svg"),
                         *[b + ".json" for b, _ in procs])
    t.ok(st == 0 and "echobench merge: 3 runs" in out and "p99" in out,
         "merge: text report and --svg", out, err)


def test_multihost_script(echod):
    # bench/multihost.sh as README shows it, with "ssh" replaced by a
    # command that runs locally from the host's name as --source address.
    rsh = os.path.join(TMP, "rsh")
    with open(rsh, "w") as f:
        f.write('#!/bin/sh\nexec sh -c "$2 --source $1"\n')
    os.chmod(rsh, 0o755)
    out = os.path.join(TMP, "multihost")
    env = dict(os.environ, RSH=rsh, REMOTE=t.ECHOBENCH, ECHOBENCH=t.ECHOBENCH, LEAD="3", OUT=out)
    p = subprocess.run([os.path.join(t.ROOT, "bench", "multihost.sh"), "127.0.0.1:%d" % echod.port,
                        "127.0.0.5", "127.0.0.6", "--", "-c", "2", "-D", "1", "-w", "0.3"],
                       capture_output=True, text=True, timeout=60, env=env)
    try:
        runs = [json.load(open(os.path.join(out, h + ".json"))) for h in ("127.0.0.5", "127.0.0.6")]
        merged = json.load(open(os.path.join(out, "merged.json")))
    except (OSError, ValueError) as e:
        runs, merged = [], {"error": str(e)}
    t.ok(p.returncode == 0 and runs and merged.get("requests") == sum(r["requests"] for r in runs)
         and "echobench merge: 2 runs" in p.stdout,
         "bench/multihost.sh: two hosts' runs merged", p.stdout, p.stderr, merged.get("error"))


class Recorder:
    """An echo server that notes each connection's peer address and time."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.peers = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append((peer[0], time.monotonic()))
            threading.Thread(target=self.echo, args=(c,), daemon=True).start()

    @staticmethod
    def echo(c):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        c.close()


def test_source_and_connect_rate():
    rec = Recorder()
    st, out, err = bench("-q", "-c", "6", "-D", "0.3", "-w", "0", "--source", "127.0.0.2",
                         "--source", "127.0.0.3", "--connect-rate", "20",
                         "127.0.0.1:%d" % rec.sock.getsockname()[1])
    rec.sock.close()
    # The first connection is echobench's probe, from the first source.
    addrs = sorted(a for a, _ in rec.peers[1:])
    times = sorted(w for _, w in rec.peers[1:])
    t.ok(st == 0 and addrs == ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3
         and rec.peers[0][0] == "127.0.0.2",
         "--source: connections spread over the given addresses", rec.peers, err)
    # Six connections at 20/s: the last starts 5 gaps (0.25 s) after the first.
    t.ok(len(times) == 6 and times[-1] - times[0] >= 0.2,
         "--connect-rate 20: six connections take at least 0.2 s to open",
         times and times[-1] - times[0])
    st, out, err = bench("--start-at", "1000", "-D", "1", "127.0.0.1:9")
    t.ok(st != 0 and len(err.splitlines()) == 1, "--start-at in the past: one line, failure", err)


def svg_series(path):
    doc = xml.dom.minidom.parse(path)
    lines = doc.getElementsByTagName("polyline")
    labels = [g.getElementsByTagName("text")[0].firstChild.data
              for g in doc.getElementsByTagName("g") if g.getAttribute("class") == "legend"]
    return len(lines), len({p.getAttribute("stroke") for p in lines}), labels


def render(svg):
    """rsvg-convert's PNG of an SVG: (ok, detail)."""
    tool = t.need_program("rsvg-convert")
    if not tool:
        return None, "no rsvg-convert"
    png = svg + ".png"
    p = subprocess.run([tool, "-o", png, svg], capture_output=True, text=True, timeout=60)
    with open(png, "rb") as f:
        head = f.read(24)
    good = p.returncode == 0 and head[:8] == b"\x89PNG\r\n\x1a\n" \
        and int.from_bytes(head[16:20], "big") >= 800
    return good, p.stderr


def test_plots(echod):
    one = os.path.join(TMP, "one.svg")
    st, out, err = bench("-q", "-c", "2", "-D", "0.5", "-w", "0", "--svg", one,
                         "127.0.0.1:%d" % echod.port)
    plot = os.path.join(TMP, "plot.svg")
    st2, out2, err2 = bench("plot", "--svg", plot, os.path.join(TMP, "host2.json"),
                            os.path.join(TMP, "host3.hlog"), os.path.join(TMP, "run.hlog"))
    t.ok(st == 0 and st2 == 0, "--svg and plot write their SVGs", err, err2)
    for path, want, names in ((one, 1, []), (plot, 3, ["host2.json", "host3.hlog", "run.hlog"]),
                              (os.path.join(TMP, "merged.svg"), 1, ["merged"])):
        try:
            n, colors, labels = svg_series(path)
        except Exception as e:  # noqa: BLE001 - any parse failure fails the test
            n, colors, labels = 0, 0, [str(e)]
        t.ok(n == want and colors == want and len(labels) == want
             and all(any(x.startswith(name) for x in labels) for name in names),
             "%s: %d series, each its own colour, in the legend" % (os.path.basename(path), want),
             labels)
        with open(path) as f:
            text = f.read()
        t.ok("latency (log scale)" in text and "text-anchor='end'>99." in text,
             "%s: log latency axis, last percentile label inside the picture"
             % os.path.basename(path))
        good, detail = render(path)
        if good is None:
            t.skip("%s renders to PNG" % os.path.basename(path), detail)
        else:
            t.ok(good, "%s: rsvg-convert renders it to PNG" % os.path.basename(path), detail)


def main():
    try:
        echod = t.Echod("--threads", "1")
    except (RuntimeError, OSError) as e:
        t.bail_out("echod did not start: %s" % e)
    test_reference_reader(echod)
    test_multi_host(echod)
    test_source_and_connect_rate()
    test_multihost_script(echod)
    test_plots(echod)
    echod.stop()
    t.done_testing()


main()
