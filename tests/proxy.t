#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""proxy.t - echod behind HAProxy (--proxy-protocol, --proxy-from,
--proxy-timeout), once per backend.

The test starts HAProxy itself (haproxy -f CFG -db) with a config of its
own on loopback ports chosen at run time: one frontend relays to echod with
`send-proxy` (v1), one with `send-proxy-v2`, one with v2 to a second echod
that has --deny 127.0.0.2. A client bound to 127.0.0.2 connects through
HAProxy and is echoed; echod then names 127.0.0.2 as the peer in the -v
proxy line, the SIGUSR1 table (Via: the balancer), /connections and
/metrics. --deny 127.0.0.2 refuses it through the balancer while 127.0.0.3
is served. Hand-written headers, sent from 127.0.0.1 (the balancer's
address) straight to echod: a v2 header with TLVs and data behind it in one
send (the data echoed, nothing of the header), v1 likewise, v2 LOCAL and v1
UNKNOWN (the balancer stays the peer), and each bad header (malformed v1,
bad v2 version, oversized, truncated by a FIN, none at all, too late, and a
good one from 127.0.0.4, a source not in --proxy-from): that connection
alone is closed, without an echo, while a client through HAProxy is served
beside it, and its reason is counted in echod_proxy_headers_total. A
client of its own from 127.0.0.5 without a header is served.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
TIMEOUT_S = 1  # --proxy-timeout of the echod under test: the late header's wait
PROXY_RE = r"proxy fd (\d+) peer (\S+) via (\S+) \((v\d)(, the balancer's own)?\)"


def free_port():
    """A TCP port free a moment ago, for HAProxy, which binds it itself."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether some socket listens on 127.0.0.1:port (/proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:])


class HAProxy:
    """haproxy -db with one tcp frontend per route: {name: (echod port,
    server option)}; self.port[name] is that frontend's port."""

    def __init__(self, tmp, routes):
        self.port = {name: free_port() for name in routes}
        cfg = ["defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 30s",
               "    timeout server 30s"]
        for name, (to, option) in routes.items():
            cfg += ["frontend fe_%s" % name, "    bind 127.0.0.1:%d" % self.port[name],
                    "    default_backend be_%s" % name,
                    "backend be_%s" % name, "    server echod 127.0.0.1:%d %s" % (to, option)]
        self.cfg = os.path.join(tmp, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.errlog = open(os.path.join(tmp, "haproxy.err"), "w+")
        self.proc = spawn([HAPROXY, "-f", self.cfg, "-db"], stdin=subprocess.DEVNULL,
                          stdout=self.errlog, stderr=subprocess.STDOUT)
        # Waited for by its listeners, not by a connection through it, which
        # would reach echod and count there.
        self.up = wait_until(lambda: self.proc.poll() is None and all(map(listening, self.port.values())),
                             timeout=10, step=0.05, what="haproxy's frontends")

    def log(self):
        self.errlog.seek(0)
        return self.errlog.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.errlog.close()


def start_echod(backend, *args):
    srv = Echod("-t", "1", "-b", "127.0.0.1", "-v", "--proxy-protocol", "--proxy-from", "127.0.0.1",
                "--metrics", "127.0.0.1:0", *args, backend=backend)
    m = srv.wait_log(r"metrics on http (\S+):(\d+) \(fd \d+\)", 5)
    srv.metrics = "http://%s:%s/metrics" % m.groups()
    srv.connections = "http://%s:%s/connections" % m.groups()
    return srv


def scrape(srv):
    """{(series, reason): value} of srv's /metrics, summed over workers."""
    with urllib.request.urlopen(srv.metrics, timeout=5) as r:
        text = r.read().decode()
    res = {}
    for name, labels, v in re.findall(r"^(echod_\w+)\{([^}]*)\} (\d+)$", text, re.M):
        m = re.search(r'reason="([^"]*)"', labels)
        key = (name, m.group(1) if m else None)
        res[key] = res.get(key, 0) + int(v)
    return res


def grew(srv, before, want, what):
    """Waits until each (series, reason) of want has grown by its count
    since before, and no other proxy reason or close reason has; ok()."""
    def delta():
        now = scrape(srv)
        return {k: now[k] - before.get(k, 0) for k in now
                if now[k] != before.get(k, 0) and k[0] in (
                    "echod_proxy_headers_total", "echod_connections_closed_total",
                    "echod_connections_refused_total")}
    wait_until(lambda: all(delta().get(k, 0) >= n for k, n in want.items()), timeout=5)
    got = delta()
    # Connections still open close later: only proxy and refusal counts,
    # and the closes asked for, are held to exactly what was asked.
    got = {k: n for k, n in got.items() if k[0] != "echod_connections_closed_total" or k in want}
    return eq(got, want, what)


def client(src, port, host="127.0.0.1"):
    """A TCP connection to host:port from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def served(s, data=b"ping\n"):
    try:
        s.sendall(data)
    except OSError:
        return False
    return recv_exact(s, len(data), timeout=5) == data


def ended(s, timeout=5.0):
    """How s ends without reading a byte: (bytes it got, "eof", "reset" or "open")."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), "open"
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return bytes(buf), "open"
        except ConnectionResetError:
            return bytes(buf), "reset"
        if not chunk:
            return bytes(buf), "eof"
        buf += chunk


def table(srv):
    """The SIGUSR1 table's connection rows: [{"Peer": ..., "Via": ...}]."""
    start = len(srv.lines)
    srv.proc.send_signal(signal.SIGUSR1)
    if not srv.wait_log(r"^echod: end of table$", 5, start):
        return []
    rows, head = [], None
    for line in srv.lines[start:]:
        if line.startswith("W   FD"):
            head = line.split() if "Via" in line else None
        elif line.startswith("echod: "):
            head = None
        elif head:
            cols = line.split()
            if len(cols) == len(head):
                rows.append(dict(zip(head, cols)))
    return rows


def v2(src, dst, sport, dport, tlvs=b"", cmd=0x21, fam=0x11):
    """A v2 header for TCP over IPv4, with TLVs after the addresses."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


def through_haproxy(backend, srv, hp):
    """Group 1: a client 127.0.0.2 through HAProxy, v1 and v2: echoed, and
    named by echod as the peer everywhere."""
    for route, version in (("v1", "v1"), ("v2", "v2")):
        before = scrape(srv)
        start = len(srv.lines)
        c = client("127.0.0.2", hp.port[route])
        cport = c.getsockname()[1]
        payload = pattern(100000, seed=len(route))
        eq(echo_all(c, payload), payload, "%s: %s: 127.0.0.2 through HAProxy: 100000 bytes echoed" % (backend, route))
        m = srv.wait_log(PROXY_RE, 5, start)
        ok(m and m.group(2) == "127.0.0.2:%d" % cport and m.group(3).startswith("127.0.0.1:")
           and m.group(4) == version and not m.group(5),
           "%s: %s: -v: proxy fd N peer 127.0.0.2:%d via 127.0.0.1:... (%s)" % (backend, route, cport, version),
           m and m.group(0), srv.log()[-2000:])
        rows = [r for r in table(srv) if r.get("Peer") == "127.0.0.2:%d" % cport]
        via = m.group(3) if m else "?"
        ok(len(rows) == 1 and rows[0].get("Via") == via,
           "%s: %s: SIGUSR1 table: Peer 127.0.0.2:%d, Via %s" % (backend, route, cport, via), rows,
           srv.log()[-2000:])
        with urllib.request.urlopen(srv.connections, timeout=5) as r:
            conns = json.loads(r.read().decode())
        eq([(x["peer"], x["via"]) for x in conns if x["peer"].startswith("127.0.0.2:")],
           [("127.0.0.2:%d" % cport, via)], "%s: %s: /connections: peer and via" % (backend, route))
        grew(srv, before, {("echod_proxy_headers_total", "ok"): 1},
             "%s: %s: /metrics: echod_proxy_headers_total{reason=\"ok\"} +1, nothing else" % (backend, route))
        c.close()


def deny_through_haproxy(backend, srv, hp):
    """Group 2: --deny 127.0.0.2 applies to the client the header names."""
    before = scrape(srv)
    bad = client("127.0.0.2", hp.port["deny"])
    try:
        bad.sendall(b"ping\n")
    except OSError:
        pass
    data, how = ended(bad)
    ok(data == b"" and how in ("eof", "reset"),
       "%s: --deny 127.0.0.2 through the balancer: closed (%s), nothing echoed" % (backend, how), data)
    good = client("127.0.0.3", hp.port["deny"])
    ok(served(good), "%s: 127.0.0.3 through the same balancer is served" % backend)
    grew(srv, before, {("echod_proxy_headers_total", "ok"): 2, ("echod_connections_refused_total", "deny"): 1,
                       ("echod_connections_closed_total", "proxy"): 1},
         "%s: two headers ok, refused_total{reason=\"deny\"} +1, closed_total{reason=\"proxy\"} +1" % backend)
    ok(srv.wait_log(r"proxy fd \d+ peer 127\.0\.0\.2:\d+ via 127\.0\.0\.1:\d+ \(v2\)", 1),
       "%s: -v: the denied client's proxy line names it" % backend)
    bad.close()
    good.close()


def hand_written(backend, srv):
    """Group 3: headers sent straight from 127.0.0.1, with data behind them
    in the same send: the data is echoed, nothing of the header."""
    before = scrape(srv)
    start = len(srv.lines)
    hdr = v2("192.0.2.7", "127.0.0.1", 4242, srv.port,
             tlv(0x01, b"h2") + tlv(0x02, b"echo.example") + tlv(0x04, b"\0" * 7) + tlv(0xE0, b""))
    data = b"after a v2 header with TLVs\n"
    c = client("127.0.0.1", srv.port)
    c.sendall(hdr + data)
    eq(recv_exact(c, len(data), 5), data, "%s: v2 with 4 TLVs and data in one send: the data echoed" % backend)
    ok(srv.wait_log(r"proxy fd \d+ peer 192\.0\.2\.7:4242 via 127\.0\.0\.1:%d \(v2\)$" % c.getsockname()[1], 5,
                    start), "%s: ... its client 192.0.2.7:4242 is the peer" % backend, srv.log()[-1500:])
    c.shutdown(socket.SHUT_WR)
    eq(ended(c), (b"", "eof"), "%s: ... and nothing of the header comes back, before echod's FIN" % backend)
    c.close()

    data = b"hello after v1"
    c = client("127.0.0.1", srv.port)
    c.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 %d\r\n" % srv.port + data)
    eq(recv_exact(c, len(data), 5), data, "%s: v1 and bytes behind it in one segment: those bytes echoed" % backend)
    c.shutdown(socket.SHUT_WR)
    eq(ended(c), (b"", "eof"), "%s: ... nothing of the v1 line" % backend)
    ok(srv.wait_log(r"proxy fd \d+ peer 198\.51\.100\.7:5555 via 127\.0\.0\.1:\d+ \(v1\)$", 5, start),
       "%s: ... its client 198.51.100.7:5555 is the peer" % backend)
    c.close()
    grew(srv, before, {("echod_proxy_headers_total", "ok"): 2, ("echod_connections_closed_total", "eof"): 2},
         "%s: two headers ok, both closed at eof" % backend)


def balancer_own(backend, srv):
    """Group 4: v2 LOCAL (a health check) and v1 UNKNOWN: served, the
    balancer the peer."""
    before = scrape(srv)
    start = len(srv.lines)
    for what, hdr in (("v2 LOCAL", V2_SIG + b"\x20\x00\x00\x00"), ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n")):
        c = client("127.0.0.1", srv.port)
        me = "127.0.0.1:%d" % c.getsockname()[1]
        c.sendall(hdr + b"health?")
        eq(recv_exact(c, 7, 5), b"health?", "%s: %s: served" % (backend, what))
        m = srv.wait_log(r"proxy fd \d+ peer %s via %s \(v\d, the balancer's own\)$" % (me, me), 5, start)
        ok(m, "%s: %s: -v: the balancer stays the peer (%s)" % (backend, what, me), srv.log()[-1000:])
        rows = [r for r in table(srv) if r.get("Peer") == me]
        ok(len(rows) == 1 and rows[0].get("Via") == "-", "%s: %s: table: Peer %s, no Via" % (backend, what, me),
           rows)
        c.close()
    grew(srv, before, {("echod_proxy_headers_total", "local"): 2}, "%s: reason \"local\" +2" % backend)


def bad_headers(backend, srv, hp):
    """Group 5: each bad header closes its connection only, while a client
    through HAProxy is served beside it; each counts its reason."""
    keeper = client("127.0.0.3", hp.port["v2"])
    ok(served(keeper), "%s: a client through HAProxy, kept open beside the bad headers" % backend)
    head12 = v2("127.0.0.9", "127.0.0.1", 1, 2)
    cases = (
        ("malformed", "a bad v1 line", "127.0.0.1", [b"PROXY TCP4 127.0.0.9 nonsense 1 2\r\nping"]),
        ("malformed", "v2 with version nibble 3", "127.0.0.1", [head12[:12] + b"\x31" + head12[13:] + b"ping"]),
        ("oversized", "v2 announcing 2000 bytes", "127.0.0.1", [head12[:14] + struct.pack("!H", 2000)]),
        ("truncated", "v2 cut short by a FIN", "127.0.0.1", [head12[:20], "FIN"]),
        ("not_allowed", "a good header from 127.0.0.4 (not in --proxy-from)", "127.0.0.4", [head12 + b"ping"]),
        ("missing", "no header from the balancer", "127.0.0.1", [b"ping\n"]),
        ("timeout", "a v1 header still unfinished after --proxy-timeout %d" % TIMEOUT_S, "127.0.0.1",
         [b"PROXY TCP4 127.0.0.9 "]),
        ("timeout", "nothing at all from the balancer for --proxy-timeout %d" % TIMEOUT_S, "127.0.0.1", []),
    )
    for reason, what, src, sends in cases:
        before = scrape(srv)
        t0 = time.monotonic()
        c = client(src, srv.port)
        for chunk in sends:
            if chunk == "FIN":
                c.shutdown(socket.SHUT_WR)
            else:
                c.sendall(chunk)
        # Served while the bad one waits for its end (the late ones, a second).
        ok(served(keeper, b"beside: " + reason.encode() + b"\n"),
           "%s: %s: the client through HAProxy is served meanwhile" % (backend, what))
        data, how = ended(c, TIMEOUT_S + 4)
        took = time.monotonic() - t0
        ok(data == b"" and how in ("eof", "reset")
           and (took >= TIMEOUT_S - 0.1 if reason == "timeout" else took < TIMEOUT_S),
           "%s: %s: closed (%s after %.2f s), nothing echoed" % (backend, what, how, took), data)
        grew(srv, before, {("echod_proxy_headers_total", reason): 1, ("echod_connections_closed_total", "proxy"): 1},
             "%s: %s: proxy_headers_total{reason=\"%s\"} +1, closed_total{reason=\"proxy\"} +1"
             % (backend, what, reason))
        c.close()
    ok(served(keeper, b"still here\n"), "%s: the client through HAProxy is served after them all" % backend)
    keeper.close()


def plain(backend, srv):
    """Group 6: a client of its own (not in --proxy-from) needs no header."""
    before = scrape(srv)
    start = len(srv.lines)
    c = client("127.0.0.5", srv.port)
    ok(served(c, b"no header here\n"), "%s: 127.0.0.5 without a header is served" % backend)
    eq(table(srv) and [r.get("Via") for r in table(srv) if r.get("Peer", "").startswith("127.0.0.5:")], ["-"],
       "%s: ... its own peer in the table, no Via" % backend)
    ok(not srv.wait_log(r"proxy fd", 0.1, start), "%s: ... and no proxy line" % backend)
    c.close()
    # A blank line first could start v2's signature: served at once all
    # the same (it waited for --proxy-timeout before).
    c = client("127.0.0.5", srv.port)
    t0 = time.monotonic()
    ok(served(c, b"\r\n") and time.monotonic() - t0 < 0.5,
       "%s: 127.0.0.5's blank line first is echoed at once (%.2f s)" % (backend, time.monotonic() - t0))
    c.close()
    grew(srv, before, {("echod_proxy_headers_total", "plain"): 2}, "%s: reason \"plain\" +2" % backend)


def test(backend):
    t0 = time.monotonic()
    srv = start_echod(backend, "--proxy-timeout", TIMEOUT_S)
    deny = start_echod(backend, "--deny", "127.0.0.2")
    with tempfile.TemporaryDirectory() as tmp:
        hp = HAProxy(tmp, {"v1": (srv.port, "send-proxy"), "v2": (srv.port, "send-proxy-v2"),
                           "deny": (deny.port, "send-proxy-v2")})
        if not ok(hp.up, "%s: haproxy listens on its frontends" % backend, hp.log()):
            hp.stop()
            return
        through_haproxy(backend, srv, hp)
        deny_through_haproxy(backend, deny, hp)
        hand_written(backend, srv)
        balancer_own(backend, srv)
        bad_headers(backend, srv, hp)
        plain(backend, srv)
        hp.stop()
    eq(srv.stop(), 0, "%s: echod exits 0" % backend)
    eq(deny.stop(), 0, "%s: the --deny echod exits 0" % backend)
    diag("%s: %.1f s" % (backend, time.monotonic() - t0))


def usage():
    for args, first in ((["--proxy-protocol"], "--proxy-protocol"), (["--proxy-from", "127.0.0.1"], "--proxy-from")):
        p = subprocess.run([ECHOD, "-p", "0"] + args, capture_output=True, text=True, timeout=10)
        lines = p.stderr.splitlines()
        ok(p.returncode == 2 and len(lines) == 2 and lines[0].startswith("echod: option " + first),
           "%s alone: usage error, exit 2" % " ".join(args), p.returncode, p.stderr)


usage()
HAPROXY = need_program("haproxy")
if HAPROXY:
    for_each_backend(test)
else:
    skip("echod behind HAProxy", "haproxy not installed")
done_testing()
