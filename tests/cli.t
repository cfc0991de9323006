#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""cli.t - usage errors (exit 2), run-time errors (exit 1), each one clear
line on stderr; --help and --version; SIGINT/SIGTERM stop cleanly (exit 0)."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def run(*args):
    return subprocess.run([ECHOD] + list(args), capture_output=True, text=True, timeout=10)


def first_line(p):
    return p.stderr.splitlines()[0] if p.stderr else ""


for args, want in [
        (["-p", "70000"], "echod: port 70000: too large"),
        (["-p", "http"], "echod: port http: invalid"),
        (["-n", "0"], "echod: messages 0: too small"),
        (["--framing", "words"], "echod: framing words: unknown (expected raw or line)"),
        (["-b", "1.2.3"], "echod: bind 1.2.3: not an IPv4 or IPv6 address"),
        (["--bogus"], "echod: option --bogus: unknown"),
        (["-t"], "echod: option -t: needs a value"),
        (["extra"], "echod: argument extra: unexpected"),
        (["--backend", "kqueue"], "echod: backend kqueue: unknown (expected auto, epoll or io_uring)")]:
    p = run(*args)
    eq((p.returncode, first_line(p)), (2, want), "usage error %s: exit 2 and one line" % " ".join(args))
    eq(p.stderr.splitlines()[1:], ["Try 'echod --help'."], "usage error %s: then where to look, nothing more" % " ".join(args))

# TLS's options: each of --tls-port and the pair without the other, or
# --tls-port where it cannot be served. A build without libssl refuses
# --tls-port itself, whatever comes with it.
TLS_BUILT = "TLS is not available" not in run("--tls-port", "0").stderr
PAIR = ["--tls-cert", "c.pem", "--tls-key", "k.pem"]
for args, want in [
        (["--tls-port", "0"], "echod: option --tls-port: needs --tls-cert and --tls-key"),
        (["--tls-port", "0", "--tls-cert", "c.pem"], "echod: option --tls-port: needs --tls-cert and --tls-key"),
        (["--tls-port", "0", "--inetd"] + PAIR,
         "echod: option --tls-port: not supported with --inetd (its socket is served plain)"),
        (["--tls-port", "0", "--no-tcp", "-u"] + PAIR, "echod: option --tls-port: not with --no-tcp (TLS is TCP)"),
        (PAIR, "echod: option --tls-cert: needs --tls-port"),
        (["--tls-key", "k.pem"], "echod: option --tls-key: needs --tls-port"),
        (["--tls-ciphers", "TLS_AES_128_GCM_SHA256"], "echod: option --tls-ciphers: needs --tls-port"),
        (["--tls-port", "70000"] + PAIR, "echod: tls-port 70000: too large"),
        (["--tls-min-version", "1.1"], "echod: tls-min-version 1.1: unknown (expected 1.2 or 1.3)")]:
    if not TLS_BUILT and "--tls-port" in args and "70000" not in args:
        want = "echod: option --tls-port: TLS is not available (built without libssl)"
    p = run(*args)
    eq((p.returncode, first_line(p)), (2, want), "usage error %s: exit 2 and one line" % " ".join(args))

p = run("--help")
ok(p.returncode == 0 and "--port" in p.stdout and "--framing" in p.stdout, "--help: exit 0, options listed")
# --help is printed from the option table the parser reads; the README's
# option list and the man page are held against it, both ways.
helped = re.findall(r"^  (?:-(\w), |    )--([a-z0-9-]+)", p.stdout, re.M)
longs = [name for _, name in helped]
with open(os.path.join(ROOT, "man", "echod.1")) as f:
    man = f.read()
with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
listing = readme[readme.index("\n## Options\n"):]
listing = listing[:listing.index("\n#", 1)]
man_items = set(re.findall(r"^\.It (?:Fl \w , )?Fl -([a-z0-9-]+)", man, re.M))
synopsis = man[man.index(".Sh SYNOPSIS"):man.index(".Sh DESCRIPTION")]
readme_items = set(re.findall(r"^    (?:-\w, |    )--([a-z0-9-]+)", listing, re.M))
ok(len(longs) > 30, "--help lists the options (%d)" % len(longs))
eq(sorted(set(longs) - man_items), [], "the man page describes every option --help lists")
eq(sorted(man_items - set(longs)), [], "the man page describes no option --help does not list")
eq(sorted(n for s, n in helped if n not in ("help", "version")
          and not re.search(r"Fl (?:-%s\b|%s\b)" % (re.escape(n), s or "--"), synopsis)), [],
   "the man page's synopsis names every option")
eq(sorted(set(longs) - readme_items - {"help", "version"}), [], "README's option list has every option --help lists")
eq(sorted(readme_items - set(longs)), [], "README's option list has no option --help does not list")
for short, name in helped:
    if short:
        ok(re.search(r"^\.It Fl %s , Fl -%s\b" % (short, name), man, re.M),
           "the man page gives -%s with --%s" % (short, name))
p = run("--version")
ok(p.returncode == 0 and re.match(r"echod \d+\.\d+", p.stdout), "--version: exit 0 and a version")

# A port someone else holds: one line naming the address and the cause.
holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
holder.bind(("::", 0))
holder.listen()
port = holder.getsockname()[1]
p = run("-p", str(port), "-t", "1")
eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]), (1, "echod: bind [::]:%d: Address already in use" % port),
   "a port in use: exit 1, one line naming address and cause")
holder.close()

# Two echods on one port: SO_REUSEPORT must not let the second share it.
first = Echod("-t", "2")
p = run("-p", str(first.port), "-t", "2")
eq(p.returncode, 1, "a second echod on the same port is refused, not silently sharing it")
ok("Address already in use" in p.stderr, "... with the cause", p.stderr)
first.stop()

p = run("-p", "0", "-b", "192.0.2.1")
eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]),
   (1, "echod: bind 192.0.2.1:0: Cannot assign requested address"),
   "an address this host does not have: exit 1, one line")

for sig in (signal.SIGINT, signal.SIGTERM):
    srv = Echod("-t", "2")
    conns = [connect(srv.addr()) for _ in range(5)]
    for c in conns:
        c.sendall(b"x")
        recv_exact(c, 1)
    eq(srv.stop(sig), 0, "%s with open connections: exit 0" % signal.Signals(sig).name)
    ok(all(closed_within(c, 3) for c in conns),
       "%s: connections were closed" % signal.Signals(sig).name)
    ok(re.search(r"stopped: 5 connections", srv.log()), "%s: the exit line counts connections" % signal.Signals(sig).name, srv.log())
    for c in conns:
        c.close()

p = run("--no-tcp")
eq((p.returncode, first_line(p)), (2, "echod: option --no-tcp: needs --udp"), "--no-tcp alone: usage error")
p = run("-u", "--udp-deny-ports", "7,x")
eq((p.returncode, first_line(p)), (2, "echod: udp-deny-ports x: invalid"), "a bad deny list: usage error")

# UDP port in use.
holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
holder.bind(("::", 0))
port = holder.getsockname()[1]
p = run("-p", str(port), "-t", "1", "-u", "--no-tcp")
eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]), (1, "echod: bind udp [::]:%d: Address already in use" % port),
   "a UDP port in use: exit 1, one line")
holder.close()



def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """Nothing listens on 127.0.0.1:port any more: a bind takes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# A start that fails refuses before it announces: no listening line, one
# line naming the operation and the cause, and no socket left behind.
busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
busy.bind(("127.0.0.1", 0))
busy.listen()
late = []
# A certificate with another's key: one line naming the key file.
certs = tempfile.TemporaryDirectory()
if TLS_BUILT and need_program("openssl"):
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "2", "-subj", "/CN=" + name, "-keyout", os.path.join(certs.name, name + ".key"),
                        "-out", os.path.join(certs.name, name + ".crt")], capture_output=True, timeout=30, check=True)
    late.append((["--tls-port", "0", "--tls-cert", os.path.join(certs.name, "a.crt"),
                  "--tls-key", os.path.join(certs.name, "b.key")],
                 "echod: tls: %s: key values mismatch" % os.path.join(certs.name, "b.key")))
for args, want in tuple(late) + ((["--user", "nobody_such"], "echod: user nobody_such: no such user"),
                   (["--user", "nobody:no_such_group"], "echod: user no_such_group: no such group"),
                   (["--metrics", "127.0.0.1:%d" % busy.getsockname()[1]],
                    "echod: metrics 127.0.0.1:%d: Address already in use" % busy.getsockname()[1]),
                   (["-b", "127.0.0.1", "-b", "192.0.2.1"], "echod: bind 192.0.2.1:{port}: Cannot assign requested address")):
    port = free_port()
    p = run("-p", str(port), "-t", "2", "-b", "127.0.0.1", *args) if "-b" not in args else run("-p", str(port), "-t", "2", *args)
    lines = [unstamp(x) for x in p.stderr.splitlines()]
    ok(p.returncode == 1 and not [x for x in lines if "listening on" in x or x.endswith("echod: ready")],
       "%s: exit 1 before any listening line" % " ".join(args), *lines)
    eq([x for x in lines if not x.startswith("echod: backend ")], [want.format(port=port)],
       "%s: one line naming the operation and the cause" % " ".join(args))
    ok(port_free(port), "%s: no socket left on the port" % " ".join(args))
busy.close()
certs.cleanup()

p = run("--list-backends")
ok(p.returncode == 0 and re.search(r"^epoll available", p.stdout, re.M), "--list-backends lists epoll as available")
chosen = re.findall(r"^(\S+) available, auto's choice: (.+)$", p.stdout, re.M)
listed = re.findall(r"^(\S+) available", p.stdout, re.M)
ok(len(chosen) == 1 and listed and chosen[0][0] == listed[0],
   "--list-backends: the first available backend, and only it, says it is auto's choice and why", p.stdout)
if chosen:
    srv = Echod("-b", "127.0.0.1", "-t", "1")
    ok(srv.wait_log(r"^echod: backend %s$" % re.escape(chosen[0][0])),
       "--backend auto (the default) starts the backend --list-backends says it chooses", srv.log())
    srv.stop()
done_testing()
