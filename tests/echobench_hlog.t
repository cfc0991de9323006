#!/usr/bin/env python3
"""echobench_hlog.t - echobench's HdrHistogram interval log, read back by
HdrHistogram's reference implementation (Debian's libhdrhistogram-java, its
HistogramLogProcessor), and `echobench merge` of several runs.

The log processor must find the same echo count as echobench's summary, per
interval and in all, and the same percentiles within 1 %.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile

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


def main():
    try:
        echod = t.Echod("--threads", "1")
    except (RuntimeError, OSError) as e:
        t.bail_out("echod did not start: %s" % e)
    test_reference_reader(echod)
    echod.stop()
    t.done_testing()


main()
