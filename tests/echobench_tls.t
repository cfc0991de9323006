#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""echobench_tls.t - echobench --tls against a TLS echo server of its own.

The server is Python's ssl module in this process's threads, its
certificate self-signed at run time by `openssl req` into a temporary
directory (another one, unrelated, stands for a wrong CA); it answers ALPN
"echo", issues TLS 1.3 session tickets (as Python's server does by default)
and notes the server name each ClientHello sent (sni_callback).

  - every mode over TLS echoes every byte and exits 0: pingpong, stream,
    churn, an open loop; TLS 1.3 by default, 1.2 with --tls-version 1.2;
  - churn reports handshakes/s, their latency percentiles, and resumed
    handshakes (> 0, and 0 with --tls-no-resume);
  - --tls-verify with the right CA passes, with a wrong CA or a name the
    certificate lacks fails with one clear line, counted, exit 1;
  - --sni sends its name; an address as target sends none;
  - a plain echo server (it sends the ClientHello back) fails clearly;
  - a TLS server that flips a bit is caught, byte and message named;
  - the TLS options are usage errors without --tls, or with --udp.

Ports are chosen by the kernel (port 0) on loopback; every echobench run
has a deadline, and the server threads stop with the file.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

TMP = tempfile.mkdtemp(prefix="echobench-tls.")


def make_cert(name, san):
    """A self-signed EC certificate and its key, by openssl req."""
    cert, key = os.path.join(TMP, name + ".pem"), os.path.join(TMP, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=" + san], check=True, capture_output=True, timeout=30)
    return cert, key


class EchoServer:
    """An echo server on 127.0.0.1, in TLS when given a context."""

    def __init__(self, ctx=None, flip_at=None):
        self.ctx = ctx
        self.flip_at = flip_at  # flip a bit of the byte at this offset
        self.names = []  # server names of the ClientHellos (None: none sent)
        if ctx:
            ctx.sni_callback = lambda s, name, c: self.names.append(name)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(512)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        s.settimeout(30)
        # Its session tickets must not wait for the client's delayed ACK.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.ctx:
                s = self.ctx.wrap_socket(s, server_side=True)
            done = 0
            while True:
                data = s.recv(65536)
                if not data:
                    break
                if self.flip_at is not None and done <= self.flip_at < done + len(data):
                    i = self.flip_at - done
                    data = data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:]
                done += len(data)
                s.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ctx.set_alpn_protocols(["echo"])
    return ctx


def bench(*args, timeout=60):
    """Runs echobench -q; returns (status, stdout, stderr)."""
    p = subprocess.run([t.ECHOBENCH, "-q"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def bench_json(*args, timeout=60):
    st, out, err = bench("--json", *args, timeout=timeout)
    try:
        return st, json.loads(out), err
    except ValueError:
        return st, None, err + "\nstdout: " + out


def errors(doc):
    return {k: v for k, v in doc["errors"].items() if v} if doc else None


def clean(name, st, doc, err):
    good = st == 0 and doc and not errors(doc) and doc["requests"] > 0 and doc["tls"]
    t.ok(good, name, "status %d, errors %s, requests %s, tls %s"
         % (st, errors(doc), doc and doc["requests"], doc and doc["tls"]), err)
    return good


if not shutil.which("openssl"):
    t.skip("echobench --tls", "no openssl command")
    t.done_testing()
    sys.exit(0)
if subprocess.run([t.ECHOBENCH, "--tls", "127.0.0.1:7"], capture_output=True, text=True,
                  timeout=10).stderr.startswith("echobench: --tls: not available"):
    t.skip("echobench --tls", "echobench was built without libssl")
    t.done_testing()
    sys.exit(0)

CERT, KEY = make_cert("echo.test", "DNS:echo.test,DNS:localhost,IP:127.0.0.1")
WRONG_CA, _ = make_cert("other.test", "DNS:other.test")
SRV = EchoServer(tls_context())
TARGET = "127.0.0.1:%d" % SRV.port
RUN = ["-D", "1", "-w", "0.2"]


def test_modes():
    st, doc, err = bench_json("--tls", "-c", 4, *RUN, TARGET)
    if clean("pingpong over TLS: every byte echoed, exit 0", st, doc, err):
        t.eq((doc["tls"]["version"], doc["tls"]["handshakes_all"]), ("TLSv1.3", 4),
             "pingpong: TLS 1.3 by default, one handshake per connection")
    st, doc, err = bench_json("--tls", "-m", "stream", "-c", 2, *RUN, TARGET)
    clean("stream over TLS (64 KiB messages, depth 16): every byte echoed", st, doc, err)
    st, doc, err = bench_json("--tls", "-c", 4, "-r", 400, "-s", 1000, *RUN, TARGET)
    clean("open loop over TLS (-r 400): every byte echoed", st, doc, err)
    st, doc, err = bench_json("--tls", "--tls-version", "1.2", "-c", 2, *RUN, TARGET)
    if clean("--tls-version 1.2: every byte echoed", st, doc, err):
        t.eq(doc["tls"]["version"], "TLSv1.2", "--tls-version 1.2 negotiates TLS 1.2")


def test_churn():
    st, doc, err = bench_json("--tls", "-m", "churn", "-c", 4, *RUN, TARGET)
    if clean("churn over TLS: every byte echoed", st, doc, err):
        tls = doc["tls"]
        lat = tls["handshake_latency_us"]
        t.ok(tls["handshakes"] > 0 and tls["handshakes_per_s"] > 0, "churn: handshakes/s reported",
             json.dumps(tls))
        t.ok(0 < lat["p50"] <= lat["p99"] <= lat["max"], "churn: handshake latency percentiles",
             json.dumps(lat))
        t.ok(0 < tls["resumed"] <= tls["handshakes"], "churn: sessions are resumed (%d of %d)"
             % (tls["resumed"], tls["handshakes"]), json.dumps(tls))
        t.diag("churn against Python's ssl server: %.0f handshakes/s, %d of %d resumed"
               % (tls["handshakes_per_s"], tls["resumed"], tls["handshakes"]))
    st, doc, err = bench_json("--tls", "--tls-no-resume", "-m", "churn", "-c", 4, *RUN, TARGET)
    if clean("churn --tls-no-resume: every byte echoed", st, doc, err):
        t.ok(doc["tls"]["handshakes"] > 0 and doc["tls"]["resumed_all"] == 0,
             "--tls-no-resume: full handshakes only, none resumed", json.dumps(doc["tls"]))
    st, out, err = bench("--tls", "-m", "churn", "-c", 2, *RUN, TARGET)
    lines = [ln for ln in out.splitlines() if ln.startswith(("  tls ", "  handshake "))]
    t.ok(st == 0 and len(lines) == 2 and "/s" in lines[0] and "resumed" in lines[0]
         and "p99" in lines[1], "churn summary: a tls line (handshakes/s, resumed) and a handshake latency line",
         out, err)
    st, doc, err = bench_json("--tls", "--tls-version", "1.2", "-m", "churn", "-c", 2, *RUN, TARGET)
    if clean("churn --tls-version 1.2: every byte echoed", st, doc, err):
        t.ok(doc["tls"]["resumed"] > 0, "TLS 1.2 sessions are resumed too", json.dumps(doc["tls"]))


def test_verify():
    st, doc, err = bench_json("--tls", "--tls-verify", CERT, "-c", 2, *RUN, TARGET)
    clean("--tls-verify with the right CA (the address is in the certificate): passes", st, doc, err)
    st, doc, err = bench_json("--tls", "--tls-verify", CERT, "--sni", "echo.test", "-m", "churn",
                              "-c", 2, *RUN, TARGET)
    clean("--tls-verify and --sni echo.test, churn: passes", st, doc, err)
    st, doc, err = bench_json("--tls", "--tls-verify", WRONG_CA, "-c", 2, *RUN, TARGET)
    t.ok(st == 1 and errors(doc) == {"tls": 2} and doc["failed"]
         and "echobench: conn 0: TLS handshake with %s: certificate verify failed" % TARGET in err,
         "--tls-verify with a wrong CA: each connection counted as a tls error, exit 1, one clear line",
         "status %d, errors %s" % (st, errors(doc)), err)
    st, doc, err = bench_json("--tls", "--tls-verify", CERT, "--sni", "wrong.test", "-c", 1, *RUN, TARGET)
    t.ok(st == 1 and errors(doc) == {"tls": 1} and "certificate verify failed: hostname mismatch" in err,
         "--tls-verify and a name the certificate lacks: hostname mismatch, exit 1",
         "status %d, errors %s" % (st, errors(doc)), err)
    st, out, err = bench("--tls", "--tls-verify", os.path.join(TMP, "missing.pem"), TARGET)
    t.ok(st == 1 and len(err.splitlines()) == 1 and err.startswith("echobench: tls-verify "),
         "--tls-verify with a file that is not there: one line, exit 1", err)


def test_sni():
    del SRV.names[:]
    st, doc, err = bench_json("--tls", "--sni", "echo.test", "-c", 2, *RUN, TARGET)
    clean("--sni echo.test: passes", st, doc, err)
    t.eq(sorted(set(SRV.names)), ["echo.test"], "--sni: the server saw the name in every ClientHello")
    del SRV.names[:]
    st, doc, err = bench_json("--tls", "-c", 1, *RUN, "localhost:%d" % SRV.port)
    clean("a host name as target: passes", st, doc, err)
    t.eq(sorted(set(SRV.names)), ["localhost"], "without --sni the target's host name is sent")
    del SRV.names[:]
    bench_json("--tls", "-c", 1, *RUN, TARGET)
    t.eq(sorted(set(SRV.names)), [None], "without --sni an address as target sends no name (RFC 6066)")


def test_plain_server():
    plain = EchoServer()
    st, doc, err = bench_json("--tls", "-c", 2, *RUN, "127.0.0.1:%d" % plain.port)
    t.ok(st == 1 and doc and errors(doc) == {"tls": 2} and "(not a TLS server?)" in err,
         "--tls against a plain echo server: tls errors, a clear line, exit 1",
         "status %d, errors %s" % (st, errors(doc)), err)


def test_corrupt():
    bad = EchoServer(tls_context(), flip_at=1000)
    st, doc, err = bench_json("--tls", "-c", 2, "-s", 100, *RUN, "127.0.0.1:%d" % bad.port)
    t.ok(st == 1 and doc and errors(doc) == {"mismatch": 2}
         and "echobench: conn 0 message 10 byte 0: sent " in err,
         "a TLS server that flips one bit of byte 1000: caught in the plaintext, exit 1",
         "status %d, errors %s" % (st, errors(doc)), err)


def test_usage():
    for args, line in ((["--sni", "x"], "echobench: --tls-verify, --sni, --tls-version, --tls-no-resume: need --tls"),
                       (["--tls-no-resume"], "echobench: --tls-verify, --sni, --tls-version, --tls-no-resume: need --tls"),
                       (["--tls", "--udp"], "echobench: --tls is for TCP: there is no DTLS"),
                       (["--tls", "--tls-version", "1.1"], "echobench: tls-version 1.1: not 1.2 or 1.3")):
        st, out, err = bench(*(args + [TARGET]))
        t.ok(st == 2 and not out and err.splitlines() == [line],
             "%s: exit 2, one line %r" % (" ".join(args), line), "status %d" % st, err)


try:
    test_modes()
    test_churn()
    test_verify()
    test_sni()
    test_plain_server()
    test_corrupt()
    test_usage()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
t.done_testing()
