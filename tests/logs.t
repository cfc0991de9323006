#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""logs.t - every log line carries a time stamp, except when standard error
is the journal's stream (JOURNAL_STREAM names its device and inode), which
stamps lines itself; --log-format json writes one JSON object a line. Once
per backend."""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z echod(\[w\d+\])?: \S")


def run_briefly(args, env=None, stderr_stat=False):
    """Runs echod with -v until ready, connects once, stops it; returns its
    stderr lines. With stderr_stat, JOURNAL_STREAM names its stderr pipe."""
    r, w = os.pipe()
    e = dict(os.environ)
    e.pop("JOURNAL_STREAM", None)
    if stderr_stat:
        st = os.fstat(w)
        e["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    e.update(env or {})
    p = spawn([ECHOD, "--port", "0", "-t", "2", "-v", "--grace", "0"] + args, stdin=subprocess.DEVNULL,
              stdout=subprocess.DEVNULL, stderr=w, env=e)
    os.close(w)
    f = os.fdopen(r, "r")
    lines, port = [], None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = f.readline().rstrip("\n")
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on tcp \S+:(\d+)", line)
        if m:
            port = int(m.group(1))
        if re.search(r"\bready\b", line):
            break
    if port:
        with connect(("127.0.0.1", port)) as s:
            s.sendall(b"x")
            recv_exact(s, 1)
    time.sleep(0.1)
    p.terminate()
    p.wait(timeout=10)
    lines += f.read().splitlines()
    f.close()
    return lines


def test_logs(backend):
    b = ["--backend", backend]
    lines = run_briefly(b)
    bad = [x for x in lines if not LINE_RE.match(x)]
    ok(len(lines) >= 5 and not bad, "%s: every line starts with a UTC time stamp (%d lines)" % (backend, len(lines)),
       *bad[:3])
    ok(any("accept fd" in x for x in lines) and any("stopped:" in x for x in lines),
       "%s: ... workers' lines and the exit line too" % backend, "\n".join(lines))

    lines = run_briefly(b, stderr_stat=True)
    ok(lines and all(re.match(r"^echod(\[w\d+\])?: \S", x) for x in lines),
       "%s: stderr is the journal's stream: no time stamps" % backend, *lines[:3])
    lines = run_briefly(b, env={"JOURNAL_STREAM": "1:1"})
    ok(lines and all(LINE_RE.match(x) for x in lines),
       "%s: JOURNAL_STREAM naming another stream: stamped still" % backend, *lines[:3])

    lines = run_briefly(b + ["--log-format", "json"])
    objs = []
    for x in lines:
        try:
            objs.append(json.loads(x))
        except ValueError:
            objs.append(None)
    ok(len(objs) >= 5 and None not in objs, "%s: --log-format json: each line one JSON object" % backend, *lines[:3])
    objs = [o for o in objs if o]
    ok(all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o.get("time", "")) and o.get("level") and
           "msg" in o for o in objs), "%s: ... with time, level and msg" % backend, *lines[:3])
    ok({"msg": "ready", "level": "info"}.items() <= next((o for o in objs if o.get("msg") == "ready"), {}).items(),
       "%s: ... the ready line" % backend, *lines)
    ok(any(o.get("level") == "verbose" and "worker" in o and o["msg"].startswith("accept fd") for o in objs),
       "%s: ... a worker's -v line names its worker" % backend, *lines)


def test_json_all_the_way(backend):
    """With --log-format json every stderr line is JSON: the SIGUSR1 and
    --stats-interval tables too (a line per row, each with its time), and
    the -v and refusal lines carry typed fields beside msg. In text, each
    part of a table starts with a stamped line."""
    srv = Echod("-t", "2", "-u", "-v", "--max-conns", "1", "--stats-interval", "1", "--log-format", "json",
                backend=backend)
    held = connect(srv.addr())
    held.sendall(b"abc")
    recv_exact(held, 3, 5)
    extra = connect(srv.addr())
    ok(closed_within(extra, 5), "%s: json: a client over --max-conns is refused" % backend)
    extra.close()
    srv.proc.send_signal(signal.SIGUSR1)
    ok(srv.wait_log(r"table end$", 5), "%s: json: SIGUSR1's table ends with its end line" % backend)
    ok(wait_until(lambda: sum('"table":"end"' in x for x in srv.raw) >= 2, 5),
       "%s: json: and --stats-interval's table comes too" % backend)
    held.close()
    ok(srv.wait_log(r"close fd \d+", 5), "%s: json: the close line" % backend)
    eq(srv.stop(), 0, "%s: json: exit 0" % backend)
    objs, bad = [], []
    for line in srv.raw:
        try:
            objs.append(json.loads(line))
        except ValueError:
            bad.append(line)
    ok(len(objs) > 15 and not bad, "%s: json: every one of %d lines parses" % (backend, len(srv.raw)), *bad[:5])
    ok(all("time" in o and "level" in o and "msg" in o for o in objs), "%s: json: each with time, level, msg" % backend)
    parts = {o.get("table") for o in objs}
    ok({"connection", "listener", "memory", "totals", "udp", "end"} <= parts,
       "%s: json: the table's parts as lines of their own" % backend, sorted(str(p) for p in parts))
    row = next((o for o in objs if o.get("table") == "connection"), {})
    ok(row.get("state") == "ESTAB" and isinstance(row.get("fd"), int) and row.get("bytes_in") == 3,
       "%s: json: a connection row with typed fields" % backend, row)
    tot = next((o for o in objs if o.get("table") == "totals" and o["refused_by"]["max_conns"]), {})
    eq(tot.get("refused_by", {}).get("max_conns"), 1, "%s: json: the totals count the refusal by reason" % backend)
    close = next((o for o in objs if o.get("event") == "close"), {})
    ok(close.get("reason") == "eof" and close.get("bytes_in") == 3 and close.get("peer", "").startswith("127.0.0.1:")
       and isinstance(close.get("fd"), int), "%s: json: the close line's fields" % backend, close)

    srv = Echod("-t", "1", backend=backend)
    srv.proc.send_signal(signal.SIGUSR1)
    ok(srv.wait_log(r"^echod: end of table$", 5), "%s: text: a table" % backend)
    heads = [x for x in srv.raw if re.search(r"echod: (totals|end of table)$", x)]
    ok(len(heads) == 2 and all(LINE_RE.match(x) for x in heads),
       "%s: text: the table's head lines carry the time stamp" % backend, *heads)
    eq(srv.stop(), 0, "%s: text: exit 0" % backend)


p = subprocess.run([ECHOD, "--log-format", "xml"], capture_output=True, text=True, timeout=10)
eq((p.returncode, p.stderr.splitlines()[0]), (2, "echod: log-format xml: unknown (expected text or json)"),
   "--log-format xml: usage error")
for_each_backend(test_logs)
for_each_backend(test_json_all_the_way)
done_testing()
