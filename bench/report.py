#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""report.py - the tables of `make bench`, from bench/run.sh's run directory.

usage: report.py OUT REPS "ROWS" "COLUMNS" "COST_COLUMNS" OPEN_RATE

OUT holds one SERVER.COLUMN.REP.{json,status,log} per run (no status: that
server cannot run that column here, so its cell says n/a; a .server file:
the server had exited by the end of the run) and the cost pairs
cost.COLUMN.REP.{bare,echobench}.json. Prints, in markdown:
  1. medians of the absolutes: echoes/s (MB/s for streaming columns), p99,
     server CPU-µs per echo; an open-loop run that fell short of the
     offered rate says SHORT, since its CPU per echo is then not at the
     same load as the others'. In a churn column every echo is a
     connection of its own, so echobench's figures are connections/s and
     CPU-µs per connection, and the cells say so (conn/s, µs/conn);
  2. echobench's own CPU per echo in the same runs;
  3. echod (each backend) / each other row, per column: the median of the
     per-repetition ratios (range), for server CPU per echo and for
     throughput. Repetitions are interleaved, so the two runs of a ratio
     are minutes apart at most and a drift of the machine cancels;
  4. echobench's cost against the bare client (the cost pairs).
"""

import json
import os
import re
import statistics
import sys

NAMES = {"a": "a: 1 conn 64 B", "b": "b: 50 conn 512 B", "c": "c: 500 conn 128 B",
         "d": "d: 1 conn 64 KiB x8", "d4": "d4: 4 conn 64 KiB x8",
         "e": "e: UDP 50 x 512 B", "o": "o: 50 conn 512 B at %s/s (open loop)",
         "ch8": "ch8: churn, 8 slots, 64 B", "ch64": "ch64: churn, 64 slots, 64 B"}
STREAMING = ("d", "d4")
CHURN = ("ch8", "ch64")


def units(w):
    """(rate unit, CPU unit) of column w: a churn echo is a connection."""
    return (" conn/s", "µs/conn") if w in CHURN else ("/s", "µs")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Run:
    """One repetition of one cell: its exit status and JSON (or None), and
    why it failed when the JSON cannot say: echobench's last complaint, and
    whether the server had exited by the end of the run."""

    def __init__(self, status, doc, complaint="", exited=False):
        self.status, self.doc = status, doc
        self.complaint, self.exited = complaint, exited

    @property
    def ok(self):
        return self.status == 0 and self.doc is not None and not self.doc.get("failed")

    @property
    def short(self):
        return bool(self.doc and self.doc.get("shortfall"))

    def server_cpu(self):
        """Server CPU-µs per echo, or None when echobench's figure is absurd.

        With a server that forks a child per connection (socat), a child
        that exits inside the window has been seen to yield a wrapped
        (about 3e15) or a near-zero figure; such a run keeps its rate but
        not its CPU.
        """
        v = self.doc["cpu_us_per_request"].get("server", {}).get("total")
        return v if v is not None and 0 < v < 1e6 else None

    def client_cpu(self):
        return self.doc["cpu_us_per_request"]["client"]["total"]

    def rate(self):
        return self.doc["requests_per_s"]


def runs(out, reps, server, w):
    """{rep: Run} for the repetitions of this cell that were started."""
    res = {}
    for rep in range(1, reps + 1):
        base = os.path.join(out, "%s.%s.%d" % (server, w, rep))
        try:
            with open(base + ".status") as f:
                status = int(f.read())
        except (OSError, ValueError):
            continue
        res[rep] = Run(status, load(base + ".json"), complaint(base + ".log"),
                       os.path.exists(base + ".server"))
    return res


def complaint(log):
    """echobench's last line in a run's log, without the address (whose port
    differs in every run, so that the runs of a cell say the same)."""
    try:
        with open(log, errors="replace") as f:
            lines = [line.strip() for line in f if line.startswith("echobench: ")]
    except OSError:
        return ""
    if not lines:
        return ""
    return re.sub(r"\s*\[?[\d.:a-f]+\]?:\d+:", ":", lines[-1][len("echobench: "):])


def fmt_rate(v, w):
    return ("%.1fk" % (v / 1e3) if v >= 1e3 else "%.0f" % v) + units(w)[0]


def fmt_us(v):
    return "%.2f ms" % (v / 1e3) if v >= 1e3 else "%.0f µs" % v


def med(rs, f):
    return statistics.median(f(r) for r in rs)


def cpu_text(rs, w):
    """Median server CPU over the runs that have a figure; says how many."""
    vals = [r.server_cpu() for r in rs if r.server_cpu() is not None]
    if not vals:
        return "CPU n/a"
    s = "%.1f %s" % (statistics.median(vals), units(w)[1])
    return s if len(vals) == len(rs) else s + " (CPU of %d of %d runs)" % (len(vals), len(rs))


def abs_cell(rs, w, which):
    """The medians of one cell; n/a, FAIL (k of n) or SHORT marked."""
    if not rs:
        return "n/a"
    good = [r for r in rs.values() if r.ok]
    if len(good) < len(rs):
        return fail_cell(rs, w, which)
    if which == "client":
        return "%.1f" % med(good, Run.client_cpu)
    rate = fmt_rate(med(good, Run.rate), w)
    if w in STREAMING:
        rate += " (%.0f MB/s)" % med(good, lambda r: r.doc["mb_per_s"])
    short = [r for r in good if r.short]
    if short:
        rate = "SHORT in %d of %d: %s" % (len(short), len(good), rate)
    return "%s, p99 %s, %s" % (rate, fmt_us(med(good, lambda r: r.doc["latency_us"]["p99"])),
                               cpu_text(good, w))


def fail_cell(rs, w, which):
    """FAIL, with what went wrong and the figures of the runs that ended.

    A server that corrupts or drops echoes has no valid figure; the ones
    shown, marked unverified, say only how fast it went while failing.
    """
    bad = [r for r in rs.values() if not r.ok]
    errs = {}
    for r in bad:
        for k, v in ((r.doc or {}).get("errors") or {}).items():
            errs[k] = errs.get(k, 0) + v
    why = ", ".join("%s %d" % kv for kv in sorted(errs.items()) if kv[1])
    why = why or bad[0].complaint or exit_text(bad[0].status)
    if any(r.exited for r in bad):
        why += ", server exited (%d of %d)" % (sum(r.exited for r in bad), len(bad))
    s = "FAIL %d of %d: %s" % (len(bad), len(rs), why)
    ended = [r for r in rs.values() if r.doc and r.doc.get("requests")]
    if ended:
        if which == "client":
            s += " (unverified %.1f)" % med(ended, Run.client_cpu)
        else:
            s += " (unverified %s, %s)" % (fmt_rate(med(ended, Run.rate), w), cpu_text(ended, w))
    return s


def exit_text(status):
    """run.sh's CELL_TIMEOUT kills with SIGKILL: timeout(1) exits 137."""
    return "hung, killed at CELL_TIMEOUT" if status == 137 else "exit %d" % status


def ratio_cell(mine, theirs, f):
    """Median (range) of f(mine)/f(theirs) over repetitions both ran well."""
    if not mine or not theirs:
        return "n/a"
    pairs = [(mine[k], theirs[k]) for k in mine if k in theirs and mine[k].ok and theirs[k].ok]
    if not pairs:
        return "FAIL"
    vals = [f(a) / f(b) for a, b in pairs if f(a) is not None and f(b)]
    if not vals:
        return "n/a (no CPU figure)"
    s = spread(vals)
    if len(vals) < len(pairs):
        s += " (%d of %d)" % (len(vals), len(pairs))
    if any(a.short or b.short for a, b in pairs):
        s += " SHORT"
    return s


def spread(vals):
    """The median of vals with their range: the text of every ratio cell."""
    return "%.2f (%.2f-%.2f)" % (statistics.median(vals), min(vals), max(vals))


def table(header, lines):
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")


def ratio_tables(cells, rows, cols, names):
    mine = [r for r in rows if r.startswith("echod-") and any(cells[r][w] for w in cols)]
    peers = [r for r in rows if not r.startswith("echod-")]
    if not mine or not peers:
        return
    churn = " (per connection in churn columns)" if set(cols) & set(CHURN) else ""
    for title, f in (("server CPU-µs per echo%s, echod / peer (below 1: echod cheaper)" % churn,
                      Run.server_cpu),
                     ("throughput, echod / peer (above 1: echod faster; MB/s for d, d4%s)"
                      % ("; connections/s for churn" if churn else ""), Run.rate)):
        print()
        print("Paired ratios, %s: median of the per-repetition ratios (range):" % title)
        print()
        lines = [["%s / %s" % (m, p)] + [ratio_cell(cells[m][w], cells[p][w], f) for w in cols]
                 for m in mine for p in peers]
        table(["echod / peer"] + [names[w] for w in cols], lines)


def cost_table(out, reps, cost_cols, names):
    """Per-pair ratios echobench / bare client, CPU per echo and rate."""
    if not cost_cols or not os.path.exists(os.path.join(out, "cost.log")):
        return
    print()
    print("echobench's cost against bench/bare_client.c (send/recv only, no checks), "
          "both one thread on the load CPU, each against an echod --threads 1 --backend epoll "
          "of its own, %d pairs served at once; ratios are medians of per-pair ratios "
          "(range); the goal is CPU at most 1.10, rate at least 0.90:" % reps)
    print()
    lines = []
    for w in cost_cols:
        cpu, rate, eb, bare = [], [], [], []
        for rep in range(1, reps + 1):
            e = load(os.path.join(out, "cost.%s.%d.echobench.json" % (w, rep)))
            b = load(os.path.join(out, "cost.%s.%d.bare.json" % (w, rep)))
            if not e or not b or e.get("failed") or not b["echoes"]:
                continue
            ec = e["cpu_us_per_request"]["client"]["total"]
            eb.append(ec)
            bare.append(b["cpu_us_per_echo"])
            cpu.append(ec / b["cpu_us_per_echo"])
            rate.append(e["requests_per_s"] / b["requests_per_s"])
        if not cpu:
            lines.append([names[w], "FAIL", "", "", ""])
            continue
        lines.append([names[w], "%.2f" % statistics.median(eb), "%.2f" % statistics.median(bare),
                      spread(cpu), spread(rate)])
    table(["workload", "echobench CPU-µs/echo", "bare CPU-µs/echo", "CPU ratio", "rate ratio"],
          lines)


def main():
    out, reps, rows, cols, cost_cols, open_rate = sys.argv[1:7]
    reps, rows, cols, cost_cols = int(reps), rows.split(), cols.split(), cost_cols.split()
    names = dict(NAMES, o=NAMES["o"] % ("%gk" % (float(open_rate) / 1e3)))
    cells = {r: {w: runs(out, reps, r, w) for w in cols} for r in rows}
    churn = bool(set(cols) & set(CHURN))
    if cols:
        table(["server"] + [names[w] for w in cols],
              [[r] + [abs_cell(cells[r][w], w, "server") for w in cols] for r in rows])
        print()
        print("Cells: echoes/s (and MB/s each way for streaming), p99 latency, server CPU-µs "
              "per echo (user+sys), medians. n/a: the server is not available here or does "
              "not serve that column (UDP). SHORT: an open-loop run fell more than 5 % short "
              "of the offered rate, so that server did not carry the same load." +
              (" Churn (ch8, ch64): a new connection per echo, so conn/s and server "
               "CPU-µs per connection (µs/conn)." if churn else ""))
        print()
        print("echobench's own CPU-µs per echo (same runs%s):"
              % ("; per connection in churn columns" if churn else ""))
        print()
        table(["server"] + cols, [[r] + [abs_cell(cells[r][w], w, "client") for w in cols]
                                  for r in rows])
        ratio_tables(cells, rows, cols, names)
    cost_table(out, reps, cost_cols, names)


if __name__ == "__main__":
    main()
