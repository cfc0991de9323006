#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""tls.t - echod's TLS listener (--tls-port), once per backend.

A self-signed certificate and key (and a second and third pair, for the
reload) are made at run time by `openssl req` in a temporary directory.
Against them:

  - Python's ssl: TLS 1.3, and 1.2 pinned, ALPN "echo" chosen, 1 MB
    echoed byte for byte; a session resumed from its ticket;
  - `openssl s_client -quiet -no_ign_eof` and `socat OPENSSL:` echo;
  - echobench --tls, ping-pong and churn: no error, sessions resumed;
  - refused: a 1.2-only client under --tls-min-version 1.3, an HTTP
    request instead of a ClientHello (others served meanwhile), a client
    that says nothing (closed at the 10 s handshake deadline; it waits
    beside the other cases, on an echod of its own);
  - a client that never reads, under --max-pending 65536: echod's VmRSS
    grows by less than 16 MB, and every byte comes back in order once it
    reads; under --max-pending 1024, a 16 KB record that the library holds
    decrypted is echoed whole without more bytes to wake echod;
  - SIGHUP: a new pair (another CN) for new connections, open ones kept;
    a mismatched pair refused, the one in use kept;
  - the SIGUSR1 table's TLS column, the -v lines, /metrics' close reason
    tls; a PROXY header before the ClientHello; --fault latency and
    corrupt over TLS; the plain listener beside it still plain.

Left out, as echod has them wrong for now: echod_tls_handshakes_total
(counted by the workers, never served by /metrics), and the time of the
first echo after the handshake under --fault latency (it may come back
before its delay).
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

TLS_LISTEN_RE = r"listening on tls (\S+):(\d+) \(fd (\d+), "
METRICS_RE = r"metrics on http (\S+):(\d+) \(fd \d+\)"
HANDSHAKE_S = 10  # CORE_TLS_HANDSHAKE_MS
SUITE13 = "TLS_AES_256_GCM_SHA384"  # OpenSSL 3's first choice for 1.3
WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


# ------------------------------------------------------------ helpers

def make_pair(tmp, name, cn):
    """A self-signed certificate and its key, (cert path, key path)."""
    cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=" + cn, "-keyout", key, "-out", cert],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        bail_out("openssl req failed: " + p.stderr)
    return cert, key


def install(src, dst):
    """Puts file src at dst in one step, as a deployment would (rename)."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".new", "wb") as f:
        f.write(data)
    os.replace(dst + ".new", dst)


def start(backend, cert, key, *args):
    """echod -t 1 -v on 127.0.0.1 with a TLS listener and /metrics; srv.tls
    is the TLS port, srv.port the plain one."""
    srv = Echod("-t", "1", "-b", "127.0.0.1", "-v", "--tls-port", "0", "--tls-cert", cert, "--tls-key", key,
                "--metrics", "127.0.0.1:0", *args, backend=backend)
    m = srv.wait_log(TLS_LISTEN_RE, 1)
    srv.tls = int(m.group(2)) if m else 0
    m = srv.wait_log(METRICS_RE, 1)
    srv.metrics = "http://%s:%s/metrics" % m.groups() if m else None
    return srv


def context(version=None, cafile=None):
    """A client context: ALPN "echo"; no verification unless cafile."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["echo"])
    return ctx


def tls_connect(port, ctx=None, session=None, src=None, before=b""):
    """A TLS connection to 127.0.0.1:port, handshake done (ssl.SSLError if
    it fails); before: bytes sent in the clear first (a PROXY header)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if before:
        s.sendall(before)
    try:
        return (ctx or context()).wrap_socket(s, session=session)
    except Exception:
        s.close()
        raise


def tls_echo(s, payload, timeout=30.0, chunk=16384, sent=0):
    """Sends payload (from byte sent on: the rest was sent already) while
    reading its echo (non-blocking, so neither side's buffers fill up);
    returns what came back. A send that could not finish is offered again
    with the same bytes, as OpenSSL asks."""
    s.setblocking(False)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < len(payload) and time.monotonic() < deadline:
        moved = False
        if sent < len(payload):
            try:
                sent += s.send(payload[sent:sent + chunk])
                moved = True
            except WANT:
                pass
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    deadline = 0
                    break
                out += d
                moved = True
        except WANT:
            pass
        except (ConnectionError, ssl.SSLError):
            break
        if not moved:
            select.select([s], [s] if sent < len(payload) else [], [], 0.05)
    s.setblocking(True)
    s.settimeout(10)
    return bytes(out)


def served(s, data=b"ping\n"):
    try:
        return tls_echo(s, data, 5) == data
    except OSError:
        return False


def ended(s, timeout=5.0):
    """How a raw socket ends: (bytes it got, "eof", "reset" or "open")."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), "open"
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return bytes(buf), "open"
        except ConnectionResetError:
            return bytes(buf), "reset"
        if not d:
            return bytes(buf), "eof"
        buf += d


def scrape(srv):
    """{(series, reason): value} of srv's /metrics, summed over workers."""
    with urllib.request.urlopen(srv.metrics, timeout=5) as r:
        text = r.read().decode()
    res = {}
    for name, labels, v in re.findall(r"^(echod_\w+)\{([^}]*)\} (\d+)$", text, re.M):
        m = re.search(r'reason="([^"]*)"', labels)
        key = (name, m.group(1) if m else None)
        res[key] = res.get(key, 0) + int(v)
    return res, text


def closed_tls(srv):
    return scrape(srv)[0].get(("echod_connections_closed_total", "tls"), 0)


def table(srv):
    """The SIGUSR1 table's connection rows: {peer: {column: value}}."""
    start_at = len(srv.lines)
    srv.proc.send_signal(signal.SIGUSR1)
    if not srv.wait_log(r"^echod: end of table$", 5, start_at):
        return {}
    rows, head = {}, None
    for line in srv.lines[start_at:]:
        if line.startswith("W   FD") and line.rstrip().endswith("TLS"):
            head = line.split()
        elif line.startswith("echod: ") or line.startswith("W "):
            head = None
        elif head:
            cols = line.split()
            if len(cols) == len(head):
                row = dict(zip(head, cols))
                rows[row["Peer"]] = row
    return rows


def peer(s):
    return "127.0.0.1:%d" % s.getsockname()[1]


def accept_fd(srv, s, start_at=0):
    """The descriptor echod's -v accept line gives s's connection."""
    m = srv.wait_log(r"accept fd (\d+) peer %s " % re.escape(peer(s)), 5, start_at)
    return int(m.group(1)) if m else None


def cn(s):
    """The CN of the certificate the server showed s (verified)."""
    for rdn in s.getpeercert().get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def run_client(argv, data, timeout=10):
    """A client program fed data, then EOF half a second later (so that
    the echo is back before it quits); returns (status, stdout)."""
    p = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(data)
    p.stdin.flush()
    time.sleep(0.5)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=5)
        return None, out + err
    return p.returncode, out


# ------------------------------------------------------------- groups

def python_clients(b, srv):
    """Group 1: Python's ssl, 1.3 and 1.2, ALPN, 1 MB, resumption, the
    -v lines and the table's TLS column; the plain listener still plain."""
    start_at = len(srv.lines)
    ctx13 = context("1.3")  # a session resumes only in the context it came from
    s13 = tls_connect(srv.tls, ctx13)
    s12 = tls_connect(srv.tls, context("1.2"))
    eq((s13.version(), s13.selected_alpn_protocol()), ("TLSv1.3", "echo"), "%s: TLS 1.3, ALPN echo selected" % b)
    eq((s12.version(), s12.selected_alpn_protocol()), ("TLSv1.2", "echo"), "%s: TLS 1.2 pinned, ALPN echo" % b)
    for s, v in ((s13, "1.3"), (s12, "1.2")):
        payload = pattern(1 << 20, seed=len(v) + ord(v[-1]))
        back = tls_echo(s, payload)
        ok(back == payload, "%s: TLS %s: 1 MB echoed byte for byte" % (b, v), "%d bytes back" % len(back))
    fd13, fd12 = accept_fd(srv, s13, start_at), accept_fd(srv, s12, start_at)
    c12 = s12.cipher()[0]
    ok(srv.wait_log(r"^echod\[w0\]: tls fd %d TLSv1\.3 %s$" % (fd13, SUITE13), 5, start_at),
       "%s: -v: tls fd %s TLSv1.3 %s" % (b, fd13, SUITE13), srv.log()[-1500:])
    ok(srv.wait_log(r"^echod\[w0\]: tls fd %d TLSv1\.2 %s$" % (fd12, re.escape(c12)), 5, start_at),
       "%s: -v: tls fd %s TLSv1.2 %s" % (b, fd12, c12), srv.log()[-1500:])
    rows = table(srv)
    eq((rows.get(peer(s13), {}).get("TLS"), rows.get(peer(s12), {}).get("TLS")),
       ("TLSv1.3/" + SUITE13, "TLSv1.2/" + c12), "%s: SIGUSR1 table: TLS column gives version/cipher" % b)

    # A session resumed: the 1.3 ticket comes with the first read.
    sess = s13.session
    s13.close()
    s12.close()
    start_at = len(srv.lines)
    r = tls_connect(srv.tls, ctx13, session=sess)
    ok(r.session_reused and served(r), "%s: a new connection resumes the session and is served" % b)
    fd = accept_fd(srv, r, start_at)
    ok(srv.wait_log(r"^echod\[w0\]: tls fd %d TLSv1\.3 %s resumed$" % (fd, SUITE13), 5, start_at),
       "%s: -v: ... logged resumed" % b, srv.log()[-800:])
    r.close()

    # The plain listener beside it: bytes that look like a TLS record
    # come back as they are.
    c = connect(("127.0.0.1", srv.port))
    hello = b"\x16\x03\x01\x00\x05plain"
    c.sendall(hello)
    eq(recv_exact(c, len(hello), 5), hello, "%s: the plain listener echoes in the clear beside the TLS one" % b)
    rows = table(srv)
    eq(rows.get(peer(c), {}).get("TLS"), "-", "%s: ... its table row has no TLS" % b)
    c.close()


def tool_clients(b, srv):
    """Group 2: openssl s_client and socat."""
    for name, argv in (("openssl s_client", ["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.tls,
                                             "-quiet", "-no_ign_eof"]),
                       ("socat", [SOCAT, "-", "OPENSSL:127.0.0.1:%d,verify=0" % srv.tls])):
        if name == "socat" and not SOCAT:
            skip("%s: socat OPENSSL: echoes" % b, "socat not installed")
            continue
        line = ("through %s\n" % name).encode()
        st, out = run_client(argv, line)
        ok(st == 0 and out == line, "%s: %s echoes (exit %s)" % (b, name, st), out)


def echobench(b, srv):
    """Group 3: echobench --tls, ping-pong and churn."""
    if not BENCH_TLS:
        skip("%s: echobench --tls ping-pong" % b, "this echobench has no --tls")
        skip("%s: echobench --tls churn" % b, "this echobench has no --tls")
        return
    target = "127.0.0.1:%d" % srv.tls
    for mode, extra in (("ping-pong", []), ("churn", ["-m", "churn"])):
        p = subprocess.run([ECHOBENCH, "-q", "--json", "--tls", "-c", "4", "-D", "1", "-w", "0.2"] + extra + [target],
                           capture_output=True, text=True, timeout=60)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            doc = None
        errs = {k: v for k, v in doc["errors"].items() if v} if doc else None
        tls = (doc or {}).get("tls") or {}
        good = p.returncode == 0 and doc and not errs and doc["requests"] > 0 and tls.get("version") == "TLSv1.3"
        if mode == "churn":
            good = good and tls.get("resumed", 0) > 0
        ok(good, "%s: echobench --tls %s: exit 0, every echo verified, no error%s" % (
            b, mode, ", sessions resumed" if mode == "churn" else ""),
           "status %d, errors %s, tls %s" % (p.returncode, errs, json.dumps(tls)), p.stderr[-1000:])
        if mode == "churn" and tls:
            diag("%s: churn: %d handshakes, %d resumed, %.0f/s" % (
                b, tls.get("handshakes", 0), tls.get("resumed", 0), tls.get("handshakes_per_s", 0)))


def refusals(b, srv):
    """Group 4: an HTTP request instead of a ClientHello is closed and
    counted, while a TLS client beside it is served."""
    keeper = tls_connect(srv.tls)
    ok(served(keeper), "%s: a TLS client kept open beside the refusals" % b)
    before = closed_tls(srv)
    start_at = len(srv.lines)
    c = connect(("127.0.0.1", srv.tls))
    req = b"GET / HTTP/1.0\r\n\r\n"
    c.sendall(req)
    data, how = ended(c)
    ok(how in ("eof", "reset") and req not in data,
       "%s: an HTTP request instead of a ClientHello: closed (%s), not echoed" % (b, how), data)
    fd = accept_fd(srv, c, start_at)
    ok(srv.wait_log(r"^echod\[w0\]: tls fd %d peer %s: handshake failed: \S" % (fd, re.escape(peer(c))), 5,
                    start_at), "%s: -v: tls fd %s peer ...: handshake failed: REASON" % (b, fd), srv.log()[-800:])
    ok(wait_until(lambda: closed_tls(srv) == before + 1, 5),
       "%s: /metrics: echod_connections_closed_total{reason=\"tls\"} +1" % b)
    ok(served(keeper, b"still here\n"), "%s: the TLS client beside it is served" % b)
    c.close()
    keeper.close()


def min13(b, tmp, cert, key):
    """Group 5: --tls-min-version 1.3 refuses a 1.2-only client; and a
    PROXY header before the ClientHello names the client."""
    srv = start(b, cert, key, "--tls-min-version", "1.3", "--proxy-protocol", "--proxy-from", "127.0.0.2")
    start_at = len(srv.lines)
    try:
        s = tls_connect(srv.tls, context("1.2"))
        s.close()
        refused = None
    except (ssl.SSLError, ConnectionError) as e:
        refused = str(e)
    ok(refused, "%s: --tls-min-version 1.3: a 1.2-only client's handshake fails (%s)" % (b, refused))
    ok(srv.wait_log(r"tls fd \d+ peer 127\.0\.0\.1:\d+: handshake failed: \S", 5, start_at),
       "%s: ... logged handshake failed" % b, srv.log()[-800:])
    ok(wait_until(lambda: closed_tls(srv) == 1, 5), "%s: ... counted, close reason tls" % b)
    s = tls_connect(srv.tls, context("1.3"))
    ok(served(s), "%s: ... a 1.3 client is served" % b)
    s.close()
    hdr = b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 %d\r\n" % srv.tls
    s = tls_connect(srv.tls, src="127.0.0.2", before=hdr)
    ok(served(s), "%s: a PROXY header, then the TLS handshake: served" % b)
    ok(srv.wait_log(r"proxy fd \d+ peer 192\.0\.2\.9:4242 via 127\.0\.0\.2:\d+ \(v1\)", 5, start_at),
       "%s: ... the header's client is the peer" % b, srv.log()[-800:])
    s.close()
    eq(srv.stop(), 0, "%s: the min-1.3 echod exits 0" % b)


def never_reads(b, srv):
    """Group 6: a TLS client that sends 20 MB and reads nothing until its
    send blocks: --max-pending bounds echod; then it reads it all."""
    warm = tls_connect(srv.tls)
    served(warm)
    warm.close()
    rss0 = srv.rss_kib()
    s = tls_connect(srv.tls)
    payload = pattern(20 << 20, seed=9)
    s.setblocking(False)
    sent, last = 0, time.monotonic()
    deadline = last + 60
    while sent < len(payload) and time.monotonic() < deadline and time.monotonic() - last < 1.0:
        try:
            sent += s.send(payload[sent:sent + 16384])
            last = time.monotonic()
        except WANT:
            select.select([], [s], [], 0.05)
    rss1 = srv.rss_kib()
    ok(sent < len(payload), "%s: the client's send blocks after %d of 20 MB" % (b, sent))
    ok(rss1 - rss0 < 16 * 1024, "%s: echod's VmRSS grew by %d KiB (< 16 MB) meanwhile" % (b, rss1 - rss0))
    back = tls_echo(s, payload, timeout=60, sent=sent)
    ok(back == payload, "%s: once it reads, all 20 MB come back in order" % b, "%d bytes back" % len(back))
    s.close()


def small_room(b, cert, key):
    """Group 6b: --max-pending 1024 and one 16 KB record: the library
    decrypts the whole record but echod may take 1 KB at a time, so the
    rest waits in the library, which no readiness announces; echod must
    read it again once its sends made room."""
    srv = start(b, cert, key, "--max-pending", "1024")
    s = tls_connect(srv.tls)
    for i in range(3):
        data = pattern(16384, seed=20 + i)
        s.sendall(data)  # one record, then nothing until its echo is back
        back = recv_exact(s, len(data), 10)
        ok(back == data, "%s: --max-pending 1024: a 16 KB record echoed whole (%d)" % (b, i + 1),
           "%d bytes back" % len(back))
    s.close()
    srv.stop()


def reload(b, tmp, pairs):
    """Group 7: SIGHUP loads a new pair for new connections; a bad one is
    refused and the one in use kept."""
    cert, key = os.path.join(tmp, "live.crt"), os.path.join(tmp, "live.key")
    install(pairs["a"][0], cert)
    install(pairs["a"][1], key)
    cafile = os.path.join(tmp, "ca.pem")
    with open(cafile, "w") as f:
        for c, _ in pairs.values():
            f.write(open(c).read())
    verify = context(cafile=cafile)
    srv = start(b, cert, key)
    old = tls_connect(srv.tls, verify)
    eq(cn(old), "echod-a", "%s: reload: the first certificate (CN echod-a)" % b)
    install(pairs["b"][0], cert)
    install(pairs["b"][1], key)
    start_at = len(srv.lines)
    srv.proc.send_signal(signal.SIGHUP)
    ok(srv.wait_log(r"^echod: tls: certificate reloaded$", 5, start_at), "%s: SIGHUP: certificate reloaded" % b,
       srv.log()[-600:])
    new = tls_connect(srv.tls, verify)
    eq(cn(new), "echod-b", "%s: a new connection sees the new certificate (CN echod-b)" % b)
    ok(served(old, b"old one\n"), "%s: the connection opened before keeps working" % b)
    # A new certificate with the old key: they do not match.
    install(pairs["c"][0], cert)
    install(pairs["a"][1], key)
    start_at = len(srv.lines)
    srv.proc.send_signal(signal.SIGHUP)
    m = srv.wait_log(r"^echod: tls: reload: (\S+): (.+); keeping the certificate in use$", 5, start_at)
    ok(m, "%s: a mismatched pair: one line, the certificate in use kept" % b, srv.log()[-600:])
    if m:
        diag("%s: %s" % (b, m.group(0)))
    ok(len([l for l in srv.lines[start_at:] if l.startswith("echod: tls:")]) == 1, "%s: ... only that line" % b)
    s = tls_connect(srv.tls, verify)
    eq(cn(s), "echod-b", "%s: new connections still get CN echod-b" % b)
    ok(served(s) and served(new) and served(old, b"oldest\n"), "%s: all three connections are served" % b)
    for x in (s, new, old):
        x.close()
    eq(srv.stop(), 0, "%s: the reloading echod exits 0" % b)


def faults(b, cert, key):
    """Group 8: --fault over TLS acts on the plaintext."""
    srv = start(b, cert, key, "--fault", "latency:delay=50ms")
    s = tls_connect(srv.tls)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # The first echo after the handshake too: its read was once stamped
    # when the handshake's last step began, and came back at 41 ms.
    rtts, good = [], True
    for i in range(10):
        t0 = time.monotonic()
        good = served(s, b"%016d" % i) and good
        rtts.append(time.monotonic() - t0)
    ok(good and min(rtts) >= 0.050, "%s: latency:delay=50ms over TLS: 10 echoes, each RTT >= 50 ms (min %.1f ms)"
       % (b, min(rtts) * 1e3))
    s.close()
    srv.stop()
    srv = start(b, cert, key, "--fault", "corrupt:p=1")
    s = tls_connect(srv.tls)
    data = pattern(10000, seed=4)
    back = tls_echo(s, data, 10)
    ok(len(back) == len(data) and all(bin(x ^ y).count("1") == 1 for x, y in zip(data, back)),
       "%s: corrupt:p=1 over TLS: every plaintext byte of 10000 changed by one bit, records intact" % b, len(back))
    s.close()
    srv.stop()


def test(b):
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="echod-tls.") as tmp:
        pairs = {n: make_pair(tmp, n, "echod-" + n) for n in ("a", "b", "c")}
        cert, key = pairs["a"]
        # The silent client waits out the handshake deadline beside the rest.
        quiet = start(b, cert, key)
        q = connect(("127.0.0.1", quiet.tls))
        q_t0 = time.monotonic()
        q_end = []
        # Timed on a thread of its own, so that slow groups do not delay
        # the moment the close is seen.
        q_thread = threading.Thread(target=lambda: q_end.append(ended(q, HANDSHAKE_S + 5)
                                                                + (time.monotonic() - q_t0,)))
        q_thread.start()
        srv = start(b, cert, key, "--max-pending", "65536")
        python_clients(b, srv)
        tool_clients(b, srv)
        echobench(b, srv)
        refusals(b, srv)
        counts = {r: n for (name, r), n in scrape(srv)[0].items() if name == "echod_tls_handshakes_total"}
        ok(counts.get("full", 0) >= 2 and counts.get("resumed", 0) >= 1 and counts.get("failed", 0) >= 1,
           "%s: /metrics: echod_tls_handshakes_total counts full, resumed and failed handshakes" % b, counts)
        never_reads(b, srv)
        small_room(b, cert, key)
        min13(b, tmp, cert, key)
        reload(b, tmp, pairs)
        faults(b, cert, key)
        eq(srv.stop(), 0, "%s: echod exits 0" % b)
        q_thread.join(HANDSHAKE_S + 10)
        data, how, took = q_end[0] if q_end else (b"", "open", time.monotonic() - q_t0)
        ok(data == b"" and how in ("eof", "reset") and HANDSHAKE_S - 0.5 <= took <= HANDSHAKE_S + 3,
           "%s: a client that says nothing is closed at the handshake deadline (%s after %.1f s)" % (b, how, took))
        ok(quiet.wait_log(r"tls fd \d+ peer 127\.0\.0\.1:\d+: handshake not done in time$", 2),
           "%s: ... logged: handshake not done in time" % b, quiet.log()[-600:])
        ok(wait_until(lambda: closed_tls(quiet) == 1, 3), "%s: ... counted, close reason tls" % b)
        q.close()
        eq(quiet.stop(), 0, "%s: the quiet echod exits 0" % b)
    diag("%s: %.1f s" % (b, time.monotonic() - t0))


if not shutil.which("openssl"):
    skip("echod over TLS", "no openssl command to make a certificate")
else:
    SOCAT = need_program("socat")
    p = subprocess.run([ECHOBENCH, "--help"], capture_output=True, text=True, timeout=10)
    BENCH_TLS = "--tls" in p.stdout + p.stderr
    for_each_backend(test)
done_testing()
