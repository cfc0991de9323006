#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""units.t - the systemd units: `make install` puts them under PREFIX
(staged under DESTDIR) with ExecStart naming the installed echod; each
passes `systemd-analyze verify`; `systemd-analyze security --offline=true`
rates the services at an exposure of 3.0 or less; and the command line each
ExecStart gives echod starts it, on each backend."""
import os
import re
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

UNITS = ["echod.socket", "echod.service", "echod@.service"]
SERVICES = ["echod.service", "echod@.service"]
MAX_EXPOSURE = 3.0


def make_install(**var):
    """make install with var (PREFIX, DESTDIR); the build echod's tests run."""
    args = ["make", "-s", "-C", ROOT, "install", "SANITIZE=" + os.environ.get("ECHOD_SANITIZE", "")]
    args += ["%s=%s" % kv for kv in var.items()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def exec_start(path):
    with open(path) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return shlex.split(line.split("=", 1)[1])
    return []


def test_install(tmp):
    staged = os.path.join(tmp, "stage")
    p = make_install(DESTDIR=staged, PREFIX="/usr")
    ok(p.returncode == 0, "make install DESTDIR=... PREFIX=/usr", p.stderr)
    unitdir = os.path.join(staged, "usr/lib/systemd/system")
    ok(all(os.path.isfile(os.path.join(unitdir, u)) for u in UNITS),
       "units staged under DESTDIR in PREFIX/lib/systemd/system", os.listdir(staged))
    eq(exec_start(os.path.join(unitdir, "echod.service"))[:1], ["/usr/bin/echod"],
       "ExecStart names PREFIX's echod, not DESTDIR's")
    prefix = os.path.join(tmp, "prefix")
    p = make_install(PREFIX=prefix)
    ok(p.returncode == 0, "make install PREFIX=...", p.stderr)
    return os.path.join(prefix, "lib/systemd/system")


def test_verify(unitdir, analyze):
    for group in (["echod.socket", "echod.service"], ["echod@.service"]):
        p = subprocess.run([analyze, "verify", "--man=no"] + [os.path.join(unitdir, u) for u in group],
                           capture_output=True, text=True, timeout=60)
        eq((p.returncode, p.stdout + p.stderr), (0, ""), "systemd-analyze verify %s: no complaint" % " ".join(group))
    for svc in SERVICES:
        p = subprocess.run([analyze, "security", "--offline=true", os.path.join(unitdir, svc)],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", p.stdout)
        ok(m and float(m.group(1)) <= MAX_EXPOSURE,
           "systemd-analyze security --offline=true %s: exposure %s <= %.1f" % (svc, m.group(1) if m else "?",
                                                                              MAX_EXPOSURE), p.stdout[-500:], p.stderr)


def test_exec_start(backend, unitdir):
    argv = exec_start(os.path.join(unitdir, "echod.service"))[1:]
    srv = Echod(*argv, backend=backend)
    with connect(srv.addr()) as s:
        s.sendall(b"unit")
        eq(recv_exact(s, 4), b"unit", "%s: echod.service's ExecStart options: echod serves" % backend)
    eq(srv.stop(), 0, "%s: ... and exits 0" % backend)


with tempfile.TemporaryDirectory() as tmp:
    unitdir = test_install(tmp)
    analyze = need_program("systemd-analyze")
    if analyze:
        test_verify(unitdir, analyze)
    else:
        skip("systemd-analyze verify and security", "systemd-analyze not installed (Debian package systemd)")
    for_each_backend(lambda b: test_exec_start(b, unitdir))
done_testing()
