#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""control.t - --fault and --control: the control plane, not the faults'
effects on echoes. GET, PUT, POST and DELETE on /faults round trip, with
400, 404, 405, 409, 411, 413 and 501 where they belong; the listener's
bounds (a slow client dropped at its deadline while echoes and other
control clients go on, clients beyond the bound, a lingering close after
a refused body); it is never the metrics listener, and /metrics counts
each fault (echod_faults_total); unix:PATH is a 0600 socket; bad
--control and --fault values are usage errors; a fault without seed=
prints its seed at start."""
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

CONTROL_RE = r"control on tcp (\S+):(\d+) \(fd \d+\)"
METRICS_RE = r"metrics on http (\S+):(\d+) \(fd \d+\)"
CLIENT_S = 5  # httpd.h: HTTPD_CLIENT_MS


def start(*args):
    srv = Echod("-t", "1", "-b", "127.0.0.1", *args)
    m = srv.wait_log(CONTROL_RE, 5)
    srv.control = (m.group(1), int(m.group(2))) if m else None
    m = srv.wait_log(METRICS_RE, 1)
    srv.metrics = (m.group(1), int(m.group(2))) if m else None
    return srv


def exchange(s, raw, timeout=5.0):
    """Sends raw on s; returns (status, headers, body) of the answer."""
    s.sendall(raw)
    data, _ = recv_until_eof(s, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d+)", head)
    headers = dict((k.lower(), v) for k, _, v in
                   (line.decode().partition(": ") for line in head.split(b"\r\n")[1:]))
    return (int(m.group(1)) if m else None), headers, body


def http(addr, raw, timeout=5.0):
    with socket.create_connection(addr, timeout=timeout) as s:
        return exchange(s, raw, timeout)


def request(addr, method, path, body=None):
    raw = b"%s %s HTTP/1.1\r\nHost: x\r\n" % (method.encode(), path.encode())
    if body is not None:
        raw += b"Content-Length: %d\r\n" % len(body)
    return http(addr, raw + b"\r\n" + (body or b""))


def names(body):
    try:
        return [(f["name"], f["activations"]) for f in json.loads(body)["faults"]]
    except (ValueError, KeyError, TypeError):
        return body


def test_usage():
    for args, first in ((["--control", "nonsense"],
                         "echod: control nonsense: expected ADDRESS:PORT or unix:PATH, as 127.0.0.1:9101"),
                        (["--control", "unix:"],
                         "echod: control unix:: expected ADDRESS:PORT or unix:PATH, as 127.0.0.1:9101"),
                        (["--fault", "latency:delay=x"], "echod: fault 'latency:delay=x': "),
                        (["--fault", "nosuchfault"], "echod: fault 'nosuchfault': ")):
        p = subprocess.run([ECHOD, "-p", "0"] + args, capture_output=True, text=True, timeout=10)
        lines = p.stderr.splitlines()
        ok(p.returncode == 2 and len(lines) == 2 and lines[0].startswith(first)
           and lines[1] == "Try 'echod --help'.",
           "usage error %s: exit 2, one line, where to look" % " ".join(args), p.returncode, p.stderr)


def test_round_trips():
    srv = start("--fault", "latency:delay=1ms", "--fault", "latency:name=b,seed=7,delay=1ms",
                "--control", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
    ok(srv.control and srv.metrics, "the control and metrics lines name their ports", srv.log())
    seeds = re.findall(r"^echod: fault (\S+): seed (\d+) \(use seed= to repeat\)$", srv.log(), re.M)
    eq([n for n, _ in seeds], ["latency"], "a seed line for the fault without seed=, none for seed=7")
    status, headers, body = request(srv.control, "GET", "/faults")
    eq((status, headers.get("content-type"), names(body)), (200, "application/json", [("latency", 0), ("b", 0)]),
       "GET /faults: the --fault set as JSON, activations 0")
    spec = [f["spec"] for f in json.loads(body)["faults"]][0] if status == 200 else ""
    ok("seed=%s" % (seeds[0][1] if seeds else "?") in spec, "the spec carries the seed printed", spec)
    _, _, text = request(srv.metrics, "GET", "/metrics")
    ok(re.search(rb'^echod_faults_total\{type="latency",name="latency"\} 0$', text, re.M)
       and re.search(rb'^echod_faults_total\{type="latency",name="b"\} 0$', text, re.M)
       and b"# TYPE echod_faults_total counter" in text, "/metrics: echod_faults_total for each fault",
       [l for l in text.decode().splitlines() if "fault" in l])

    put = b"# the new set\nlatency:name=x,delay=2ms\n\n  latency:name=y,seed=1,delay=1ms  \r\n"
    status, _, body = request(srv.control, "PUT", "/faults", put)
    eq((status, names(body)), (200, [("x", 0), ("y", 0)]), "PUT /faults: replaced ('#' and blank lines skipped)")
    eq(names(request(srv.control, "GET", "/faults")[2]), [("x", 0), ("y", 0)], "GET after PUT shows x and y")
    _, _, text = request(srv.metrics, "GET", "/metrics")
    eq(re.findall(rb'^echod_faults_total\{type="latency",name="(\w+)"\} 0$', text, re.M), [b"x", b"y"],
       "/metrics follows the new set")
    status, _, body = request(srv.control, "POST", "/faults", b"latency:name=z,delay=1ms\n")
    eq((status, names(body)), (201, [("x", 0), ("y", 0), ("z", 0)]), "POST /faults: added, 201")
    status, _, body = request(srv.control, "POST", "/faults", b"latency:name=z,delay=1ms")
    ok(status == 409 and body.count(b"\n") == 1, "POST of a name taken: 409, one line", status, body)
    status, headers, body = request(srv.control, "POST", "/faults", b"latency:delay=x")
    ok(status == 400 and headers.get("content-type") == "text/plain" and body.count(b"\n") == 1
       and body.startswith(b"fault 'latency:delay=x': "), "POST of a bad spec: 400 and its one line", status, body)
    status, _, body = request(srv.control, "PUT", "/faults", b"latency:name=ok,delay=1\nbogus\n")
    ok(status == 400 and body.startswith(b"fault 'bogus'"), "PUT with a bad line: 400 naming it", status, body)
    eq(names(request(srv.control, "GET", "/faults")[2]), [("x", 0), ("y", 0), ("z", 0)],
       "a refused PUT leaves the set as it was")
    status, _, body = request(srv.control, "PUT", "/faults", b"latency:name=d,delay=1\nlatency:name=d,delay=1\n")
    eq(status, 409, "PUT with a name twice: 409")
    eq(request(srv.control, "DELETE", "/faults/z")[0], 204, "DELETE /faults/z: 204")
    eq(request(srv.control, "DELETE", "/faults/z")[0], 404, "DELETE of it again: 404")
    eq(request(srv.control, "DELETE", "/faults/nosuch")[0], 404, "DELETE of an unknown fault: 404")
    many = b"".join(b"latency:name=f%d,delay=1\n" % i for i in range(33))
    eq(request(srv.control, "PUT", "/faults", many)[0], 507, "PUT of 33 faults: 507 (a set holds 32)")
    eq(names(request(srv.control, "GET", "/faults")[2]), [("x", 0), ("y", 0)], "GET: x and y left")
    test_refusals(srv)
    test_metrics_listener(srv)
    eq(srv.stop(), 0, "echod exits 0")


def test_refusals(srv):
    status, headers, _ = request(srv.control, "PATCH", "/faults")
    eq((status, headers.get("allow")), (405, "GET, HEAD, PUT, POST, DELETE"), "PATCH: 405 with Allow")
    status, headers, _ = request(srv.control, "DELETE", "/faults")
    eq((status, headers.get("allow")), (405, "GET, HEAD, PUT, POST"), "DELETE /faults: 405 with Allow")
    eq(request(srv.control, "GET", "/metrics")[0], 404, "another path: 404")
    eq(http(srv.control, b"POST /faults HTTP/1.1\r\n\r\nlatency")[0], 411, "POST without Content-Length: 411")
    eq(http(srv.control, b"POST /faults HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nlatency\r\n0\r\n\r\n")[0],
       501, "a chunked body: 501")
    eq(http(srv.control, b"\x00garbage\r\n\r\n")[0], 400, "a malformed request: 400")
    eq(http(srv.control, b"GET /faults HTTP/1.1\r\nContent-Length: 1x\r\n\r\n")[0], 200,
       "GET ignores a body's length")
    eq(http(srv.control, b"PUT /faults HTTP/1.1\r\nContent-Length: 1x\r\n\r\n")[0], 400, "a bad Content-Length: 400")
    # An oversized body, still coming while echod answers: the 413 must
    # arrive and end in echod's FIN, not a reset.
    with socket.create_connection(srv.control, timeout=10) as s:
        def feed():
            try:
                s.sendall(b"PUT /faults HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n")
                for _ in range(16):
                    s.sendall(b"#" * 65536)
            except OSError:
                pass
        t = threading.Thread(target=feed)
        t.start()
        data, eof = recv_until_eof(s, 10)
        t.join(10)
    eq((data[:12], eof), (b"HTTP/1.1 413", True), "an oversized body: 413 and a clean end")


def test_metrics_listener(srv):
    eq(request(srv.metrics, "GET", "/faults")[0], 404, "GET /faults on the metrics listener: 404")
    eq(request(srv.metrics, "PUT", "/faults", b"latency")[0], 405, "PUT /faults on the metrics listener: 405")
    eq(request(srv.metrics, "DELETE", "/faults/x")[0], 405, "DELETE on the metrics listener: 405")


def test_bounds():
    srv = start("--control", "127.0.0.1:0")
    stop = threading.Event()
    slow_end = []

    def slow():  # one byte a second
        t0 = time.monotonic()
        try:
            with socket.create_connection(srv.control, timeout=CLIENT_S + 5) as s:
                for b in b"GET /faults HTTP/1.1\r\nHost: slow\r\n\r\n":
                    s.sendall(bytes([b]))
                    if stop.wait(1.0):
                        return
                    if recv_until_eof(s, 0.01)[1]:
                        break
        except OSError:
            pass
        slow_end.append(time.monotonic() - t0)

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    served, echoed = [], []
    with connect(srv.addr()) as c:
        end = time.monotonic() + CLIENT_S + 1
        while time.monotonic() < end:
            c.sendall(b"ping")
            echoed.append(recv_exact(c, 4, 5) == b"ping")
            served.append(request(srv.control, "GET", "/faults")[0] == 200)
            time.sleep(0.2)
    t.join(CLIENT_S + 10)
    stop.set()
    ok(slow_end and CLIENT_S - 1 <= slow_end[0] <= CLIENT_S + 3,
       "a client sending a byte a second is dropped at its deadline (%ss)" % CLIENT_S, slow_end)
    ok(echoed and all(echoed), "echoes go on meanwhile (%d)" % len(echoed))
    ok(served and all(served), "other control clients are answered meanwhile (%d)" % len(served))

    idle = [socket.create_connection(srv.control, timeout=5) for _ in range(16)]
    time.sleep(0.2)
    last = socket.create_connection(srv.control, timeout=5)
    ok(closed_within(idle[0], 3), "a 17th client: the oldest of 16 is dropped")
    eq(exchange(last, b"GET /faults HTTP/1.1\r\n\r\n")[0], 200, "and the 17th is answered")
    for s in idle + [last]:
        s.close()
    eq(request(srv.control, "GET", "/faults")[0], 200, "the listener still answers")
    eq(srv.stop(), 0, "echod exits 0")


def test_listeners():
    srv = Echod("-t", "1", "-b", "127.0.0.1", "--metrics", "127.0.0.1:0")
    m = srv.wait_log(METRICS_RE, 5)
    _, _, text = request((m.group(1), int(m.group(2))), "GET", "/metrics")
    ok(b"echod_faults_total" not in text and not re.search(r"^echod: fault ", srv.log(), re.M),
       "neither --fault nor --control: no fault series, no seed line")
    mport = int(m.group(2))
    p = subprocess.run([ECHOD, "-p", "0", "-t", "1", "-b", "127.0.0.1", "--control", "127.0.0.1:%d" % mport],
                       capture_output=True, text=True, timeout=10)
    lines = [unstamp(l) for l in p.stderr.splitlines() if "echod: backend " not in l]
    eq((p.returncode, lines), (1, ["echod: bind control 127.0.0.1:%d: Address already in use" % mport]),
       "--control on a port in use (the metrics one): exit 1, one line, before any listening line")
    srv.stop()
    p = subprocess.run([ECHOD, "-p", "0", "-t", "1", "-b", "127.0.0.1", "--metrics", "127.0.0.1:%d" % mport,
                        "--control", "127.0.0.1:%d" % mport], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 1, "--control and --metrics on one port: refused, two listeners never share")


def test_unix(tmp):
    path = os.path.join(tmp, "ctl.sock")
    srv = Echod("-t", "1", "-b", "127.0.0.1", "--control", "unix:" + path)
    ok(srv.wait_log(r"control on unix %s \(fd \d+\)" % re.escape(path), 1), "the control line names the path",
       srv.log())
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "unix:PATH: the socket's mode is 0600")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        status, _, body = exchange(s, b"POST /faults HTTP/1.1\r\nContent-Length: 22\r\n\r\nlatency:name=u,delay=1")
    eq((status, names(body)), (201, [("u", 0)]), "unix:PATH: POST /faults works over it")
    eq(srv.stop(), 0, "echod exits 0")
    ok(not os.path.exists(path), "the socket file is removed at exit")

    if os.path.lexists(path):
        os.unlink(path)
    with open(path, "w") as f:
        f.write("not a socket")
    p = subprocess.run([ECHOD, "-p", "0", "-t", "1", "-b", "127.0.0.1", "--control", "unix:" + path],
                       capture_output=True, text=True, timeout=10)
    eq((p.returncode, [unstamp(l) for l in p.stderr.splitlines() if "echod: backend " not in l]),
       (1, ["echod: bind control unix:%s: File exists" % path]), "a file that is no socket is never replaced")
    os.unlink(path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    srv = Echod("-t", "1", "-b", "127.0.0.1", "--control", "unix:" + path)
    ok(srv.alive() and stat.S_IMODE(os.stat(path).st_mode) == 0o600,
       "a stale socket file nobody listens on is replaced")
    p = subprocess.run([ECHOD, "-p", "0", "-t", "1", "-b", "127.0.0.1", "--control", "unix:" + path],
                       capture_output=True, text=True, timeout=10)
    eq((p.returncode, [unstamp(l) for l in p.stderr.splitlines() if "echod: backend " not in l]),
       (1, ["echod: bind control unix:%s: Address already in use" % path]), "a live one is not taken over")
    eq(srv.stop(), 0, "echod exits 0")


test_usage()
test_round_trips()
test_bounds()
test_listeners()
with tempfile.TemporaryDirectory() as tmp:
    test_unix(tmp)
done_testing()
