#!/usr/bin/env python3
"""logs.t - every log line carries a time stamp, except when standard error
is the journal's stream (JOURNAL_STREAM names its device and inode), which
stamps lines itself; --log-format json writes one JSON object a line. Once
per backend."""
import json
import os
import re
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


p = subprocess.run([ECHOD, "--log-format", "xml"], capture_output=True, text=True, timeout=10)
eq((p.returncode, p.stderr.splitlines()[0]), (2, "echod: log-format xml: unknown (expected text or json)"),
   "--log-format xml: usage error")
for_each_backend(test_logs)
done_testing()
