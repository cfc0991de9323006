#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""metrics.t - --metrics: GET /metrics passes `promtool check metrics` and
counts what the test did; a real Prometheus scrapes it and its API returns
the accepted-connections counter; only GET /metrics and /connections are
answered; a slow HTTP client, a flood of bad requests, /connections and
SIGUSR1 tables do not slow a client's echo beside them; once per backend."""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

METRICS_RE = r"metrics on http (\S+):(\d+) \(fd \d+\)"


def start(backend, *args):
    srv = Echod("-t", "2", "-b", "127.0.0.1", "--metrics", "127.0.0.1:0", *args, backend=backend)
    m = srv.wait_log(METRICS_RE, 5)
    srv.metrics = (m.group(1), int(m.group(2))) if m else None
    return srv


def http(addr, raw, timeout=5.0):
    """Sends raw bytes; returns (status, body) of the answer."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(raw)
        data, _ = recv_until_eof(s, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d+)", head)
    return (int(m.group(1)) if m else None), body


def get(addr, path):
    return http(addr, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())


def value(text, name, labels=""):
    total = 0
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), text, re.M):
        if labels in m.group(1):
            total += float(m.group(2))
    return total


def make_traffic(srv, n):
    for i in range(n):
        with connect(srv.addr()) as s:
            s.sendall(b"hello %d\n" % i)
            recv_exact(s, len(b"hello %d\n" % i), 5)
            s.shutdown(socket.SHUT_WR)
            sees_eof(s, 5)


def test_endpoints(backend, promtool):
    srv = start(backend)
    ok(srv.metrics, "%s: echod logs where --metrics listens" % backend, srv.log())
    make_traffic(srv, 3)
    held = connect(srv.addr())
    held.sendall(b"x")
    recv_exact(held, 1, 5)
    status, body = get(srv.metrics, "/metrics")
    text = body.decode()
    eq(status, 200, "%s: GET /metrics answers 200" % backend)
    eq(value(text, "echod_connections_accepted_total"), 4, "%s: accepted counts the 4 connections" % backend)
    eq(value(text, "echod_connections_closed_total", 'reason="eof"'), 3, "%s: 3 closed by eof" % backend)
    # Every reason of src/close_reason.h, for every worker: the list is walked.
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "close_reason.h")) as f:
        labels = re.findall(r'X\(CLOSE_\w+, "(\w+)"', f.read())
    ok(len(labels) >= 8 and all('reason="%s"' % r in text for r in labels),
       "%s: /metrics has a closed_total series for every close reason" % backend,
       [r for r in labels if 'reason="%s"' % r not in text])
    eq(value(text, "echod_connections_open"), 1, "%s: 1 open" % backend)
    eq(value(text, "echod_connection_lifetime_seconds_bucket", 'le="+Inf"'), 3,
       "%s: the lifetime histogram counts the 3 closed" % backend)
    ok('backend="%s"' % backend in text, "%s: build info names the backend" % backend)
    ok("(null)" not in text and 'reason="send_timeout"' in text and 'verdict="access"' in text,
       "%s: every close reason and UDP verdict has its label" % backend)
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        ok(p.returncode == 0, "%s: promtool check metrics accepts /metrics" % backend,
           p.stdout.decode(), p.stderr.decode())
    status, body = get(srv.metrics, "/connections")
    rows = json.loads(body) if status == 200 else []
    eq([(r["peer"], r["state"]) for r in rows], [("127.0.0.1:%d" % held.getsockname()[1], "ESTAB")],
       "%s: GET /connections lists the open connection" % backend)
    eq(get(srv.metrics, "/nope")[0], 404, "%s: an unknown path is 404" % backend)
    eq(http(srv.metrics, b"POST /metrics HTTP/1.1\r\n\r\n")[0], 405, "%s: POST is 405" % backend)
    eq(http(srv.metrics, b"\x00garbage\r\n\r\n")[0], 400, "%s: garbage is 400" % backend)
    eq(http(srv.metrics, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000)[0], 431,
       "%s: an endless header is cut off (431)" % backend)
    # Far more than the 4 KiB head echod reads, still coming while echod
    # answers: the 431 must end in echod's FIN, not a reset (a close with
    # the rest unread), which clients report as an error of their own.
    endings = []
    for _ in range(5):
        with socket.create_connection(srv.metrics, timeout=10) as s:
            def feed():
                try:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nX: ")
                    for _ in range(32):
                        s.sendall(b"a" * 65536)
                except OSError:
                    pass
            t = threading.Thread(target=feed)
            t.start()
            data, eof = recv_until_eof(s, 10)
            t.join(10)
        endings.append((data[:12], eof))
    eq(endings, [(b"HTTP/1.1 431", True)] * 5,
       "%s: an endless header gets its 431 and a clean end, not a reset, 5 times of 5" % backend)
    eq(http(srv.metrics, b"GET /metrics HTTP/2.0\r\n\r\n")[0], 505, "%s: HTTP/2.0 is 505" % backend)
    eq(http(srv.metrics, b"GET /healthz HTTP/1.0\r\n\r\n"), (200, b"ok\n"), "%s: HTTP/1.0 is answered" % backend)
    eq(http(srv.metrics, b"GET /" + b"x" * 100 + b" HTTP/1.1\r\n\r\n")[0], 414, "%s: a long target is 414" % backend)
    held.close()
    eq(srv.stop(), 0, "%s: echod exits 0" % backend)


def rtt_median(addr, seconds):
    """Median echo round trip (ms) of 64-byte messages over `seconds`."""
    times = []
    with connect(addr) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            s.sendall(b"r" * 64)
            if len(recv_exact(s, 64, 5)) != 64:
                return None
            times.append((time.monotonic() - t) * 1000)
            time.sleep(0.002)
    return statistics.median(times)


def test_isolation(backend):
    # One worker: every echo, report and metrics request meets on it.
    srv = Echod("-t", "1", "-b", "127.0.0.1", "--metrics", "127.0.0.1:0", backend=backend)
    m = srv.wait_log(METRICS_RE, 5)
    maddr = (m.group(1), int(m.group(2)))
    before = rtt_median(srv.addr(), 1.0)
    stop = threading.Event()

    def slow():  # one byte a second, as the issue says
        try:
            with socket.create_connection(maddr, timeout=5) as s:
                for b in b"GET /metrics HTTP/1.1\r\n":
                    if stop.wait(1.0):
                        return
                    s.sendall(bytes([b]))
        except OSError:
            pass

    def flood():
        while not stop.is_set():
            try:
                http(maddr, b"BREW /coffee HTCPCP/1.0\r\n\r\n", 2)
                http(maddr, b"GET /" + b"z" * 5000, 2)
                get(maddr, "/connections")
            except OSError:
                pass

    def usr1():
        while not stop.wait(0.05):
            srv.proc.send_signal(signal.SIGUSR1)

    threads = [threading.Thread(target=f, daemon=True) for f in [slow] * 20 + [flood, flood, usr1]]
    for t in threads:
        t.start()
    during = rtt_median(srv.addr(), 2.0)
    stop.set()
    for t in threads:
        t.join(10)
    ok(before is not None and during is not None and during - before < 5.0,
       "%s: echo median RTT %.3f ms beside slow and bad HTTP clients, /connections and SIGUSR1 tables (%.3f ms alone; bound +5 ms)"
       % (backend, during or -1, before or -1))
    eq(get(maddr, "/metrics")[0], 200, "%s: /metrics still answers afterwards" % backend)
    eq(srv.stop(), 0, "%s: echod exits 0" % backend)


def run_prometheus(prom, targets, counts):
    """A real Prometheus, its own config and storage, scrapes every
    target; its API must return each echod's accepted counter."""
    tmp = tempfile.mkdtemp(prefix="echod-prom-")
    try:
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: echod\n    static_configs:\n"
                    "      - targets: [%s]\n" % ", ".join("'%s:%d'" % t for t in targets))
        log = open(os.path.join(tmp, "log"), "w+")
        p = spawn([prom, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                   "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                   "--web.listen-address=127.0.0.1:0"], stdout=log, stderr=subprocess.STDOUT)

        def api_port():
            log.seek(0)
            m = re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', log.read())
            return m and int(m.group(1))
        port = wait_until(api_port, 30, 0.1)
        ok(port, "prometheus starts and listens", open(os.path.join(tmp, "log")).read()[-2000:])
        if not port:
            return
        url = "http://127.0.0.1:%d/api/v1/query?query=echod_connections_accepted_total" % port

        def scraped():
            try:
                res = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
            except (OSError, ValueError, KeyError):
                return None
            got = {}
            for r in res:
                inst = r["metric"]["instance"]
                got[inst] = got.get(inst, 0) + int(float(r["value"][1]))
            return got if len(got) == len(targets) else None
        got = wait_until(scraped, 30, 0.25)
        want = {"%s:%d" % t: n for t, n in zip(targets, counts)}
        eq(got, want, "prometheus's API returns each echod's accepted count (%s)" % want)
        p.terminate()
        p.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_prometheus(prom):
    servers, counts = [], []
    for name, available, why in backends():
        if not available:
            continue
        srv = start(name)
        n = 2 + len(servers) * 3  # a different count per backend
        make_traffic(srv, n)
        servers.append(srv)
        counts.append(n)
    run_prometheus(prom, [s.metrics for s in servers], counts)
    for s in servers:
        s.stop()


def test_usage():
    for args, want in ((["--metrics", "nonsense"], "echod: metrics nonsense: expected ADDRESS:PORT, as 127.0.0.1:9100"),
                       (["--metrics", "[::1]"], "echod: metrics [::1]: expected ADDRESS:PORT, as 127.0.0.1:9100"),
                       (["--stats-interval", "0"], "echod: stats-interval 0: too small")):
        p = subprocess.run([ECHOD, "-p", "0"] + args, capture_output=True, text=True, timeout=10)
        eq((p.returncode, p.stderr.splitlines()[:1]), (2, [want]),
           "usage error %s: exit 2 and one line, before anything starts" % " ".join(args))


test_usage()
promtool = need_program("promtool")
if promtool is None:
    skip("promtool check metrics", "promtool not installed (Debian package prometheus)")


def scrape(srv):
    status, body = get(srv.metrics, "/metrics")
    return body.decode() if status == 200 else "", body


def promtool_ok(body, what):
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        ok(p.returncode == 0, "%s: promtool check metrics accepts it" % what, p.stdout.decode(), p.stderr.decode())



def scrape_until(srv, n, timeout=5.0):
    """A scrape once sent and received bytes read n: the worker counts an
    echo after its send returns, which can be after the client has it (a
    sanitizer build read 260608 of 262144 once). (text, body, counts)."""
    got = [None]

    def counted():
        text, body = scrape(srv)
        got[0] = (text, body, (value(text, "echod_sent_bytes_total"),
                               value(text, "echod_received_bytes_total"),
                               value(text, "echod_messages_total")))
        return got[0][2][:2] == (n, n)

    wait_until(counted, timeout)
    return got[0]

def test_live_counters(backend):
    """Byte and message counters grow while a connection streams, not at
    its close: scraped twice while it is open, both grow by what was
    echoed in between; UDP bytes are counted both ways."""
    srv = start(backend, "-u", "--udp-rate", "0", "--udp-byte-rate", "0")
    with connect(srv.addr()) as s:
        chunk = pattern(256 * 1024)
        eq(echo_all(s, chunk), chunk, "%s: the first 256 KiB come back" % backend)
        text, body, first = scrape_until(srv, len(chunk))
        promtool_ok(body, "%s: a scrape during a stream" % backend)
        eq(echo_all(s, chunk), chunk, "%s: 256 KiB more come back" % backend)
        text, body, second = scrape_until(srv, 2 * len(chunk))
        eq(first[:2], (len(chunk), len(chunk)), "%s: open, the first scrape counts the bytes echoed so far" % backend)
        eq(second[:2], (2 * len(chunk), 2 * len(chunk)),
           "%s: open, the second scrape counts what was echoed in between" % backend)
        ok(0 < first[2] < second[2], "%s: messages grow while it is open (%s, %s)" % (backend, first[2], second[2]))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"d" * 100, srv.addr())
    eq(u.recv(200), b"d" * 100, "%s: a datagram is echoed" % backend)
    u.close()
    # The worker counts a reply once sendmmsg returns, which may be after
    # the client has it: wait for the count (it was read 0 once, beside a
    # loaded machine), with a deadline.
    got = [None]

    def counted():
        text, _ = scrape(srv)
        got[0] = (value(text, "echod_udp_received_bytes_total"), value(text, "echod_udp_sent_bytes_total"))
        return got[0] == (100, 100)

    wait_until(counted, 5)
    eq(got[0], (100, 100), "%s: UDP bytes in and out are counted" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def refused_by(srv, reason):
    text, _ = scrape(srv)
    return value(text, "echod_connections_refused_total", 'reason="%s"' % reason)


def test_refusals(backend):
    """Each kind of refusal is counted under its reason where it happens."""
    cases = ((["--deny", "127.0.0.2"], "127.0.0.2", "deny"),
             (["--allow", "127.0.0.3"], "127.0.0.4", "not_allowed"),
             (["--max-per-source", "1"], None, "per_source"),
             (["--max-conns", "1"], None, "max_conns"))
    for args, source, reason in cases:
        srv = start(backend, *args)
        held = None
        if source is None:
            held = connect(srv.addr())
            held.sendall(b"x")
            recv_exact(held, 1, 5)
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(5)
        c.bind((source or "127.0.0.1", 0))
        c.connect(srv.addr())
        ok(closed_within(c, 5), "%s: %s: the client is refused" % (backend, reason))
        c.close()
        ok(wait_until(lambda: refused_by(srv, reason) == 1, 5),
           "%s: refused_total{reason=\"%s\"} counts it" % (backend, reason), scrape(srv)[0][-2000:])
        text, _ = scrape(srv)
        eq(value(text, "echod_connections_refused_total"), 1, "%s: %s: and no other reason does" % (backend, reason))
        if held:
            held.close()
        eq(srv.stop(), 0, "%s: %s: exit 0" % (backend, reason))


def test_health(backend):
    srv = start(backend, "--grace", "10")
    eq(get(srv.metrics, "/healthz"), (200, b"ok\n"), "%s: /healthz is 200" % backend)
    eq(get(srv.metrics, "/readyz"), (200, b"ok\n"), "%s: /readyz is 200 while every worker serves" % backend)
    status, body = http(srv.metrics, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    eq((status, body), (200, b""), "%s: HEAD /metrics answers 200 without a body" % backend)
    with socket.create_connection(srv.metrics, timeout=5) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\n\r\n")
        head, _ = recv_until_eof(s, 5)
    ok(b"Content-Length: 3\r\n" in head, "%s: HEAD gives GET's Content-Length" % backend, head)
    held = connect(srv.addr())
    held.sendall(b"x")
    recv_exact(held, 1, 5)
    srv.proc.send_signal(signal.SIGTERM)
    ok(wait_until(lambda: get(srv.metrics, "/readyz")[0] == 503, 5),
       "%s: /readyz is 503 during SIGTERM's grace" % backend)
    eq(get(srv.metrics, "/healthz")[0], 200, "%s: while /healthz stays 200" % backend)
    held.close()
    ok(wait_until(lambda: srv.proc.poll() is not None, 10), "%s: echod ends once the held client is gone" % backend)
    eq(srv.stop(), 0, "%s: exit 0" % backend)


def test_http(backend):
    test_endpoints(backend, promtool)
    test_live_counters(backend)
    test_refusals(backend)
    test_health(backend)


for_each_backend(test_http)
for_each_backend(test_isolation)
prom = need_program("prometheus")
if prom:
    test_prometheus(prom)
else:
    skip("a real prometheus scrapes echod", "prometheus not installed (Debian package prometheus)")
done_testing()
