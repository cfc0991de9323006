#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""tls.py - `make bench-tls`: echod's own TLS against the set-ups users
build today (issue 14's TLS column). Part of the benchmarks
(BENCHMARKS.md), not a test.

usage: bench/tls.py [--setups socat,stunnel,haproxy] [--workloads o,churn]
                    [--reps 3] [--duration 4] [--warmup 1] [--backend epoll]
                    [--rate N] [--churn-rate N]

The set-ups, each on SERVER_CPU:
  echod    echod --tls-port (its plain port unused);
  socat    socat OPENSSL-LISTEN:PORT,fork PIPE: a process per connection;
  stunnel  stunnel4 terminating TLS in front of a plain echod;
  haproxy  HAProxy terminating TLS (`bind ... ssl crt PEM`, mode tcp) in
           front of a plain echod.
All use one certificate, an ECDSA P-256 one made at run time by `openssl
req`, so that every handshake signs the same way.

Each repetition starts echod's TLS and one set-up side by side, and two
echobench --tls processes on LOAD_CPU offer each the same fixed rate for
the same seconds, as bench/same_time.py pairs servers: whatever the machine
does then, it does to both. Which side starts first alternates.

CPU is the whole set-up's: utime+stime (and the children's reaped time,
cutime+cstime) summed over every process of its process groups, so
socat's forked children and both stunnel and echod (or HAProxy and echod)
count; sampled from /proc when the warm-up ends and when the measured
seconds end. echobench --server-pid would measure one process only.

Workloads: o = 50 connections x 512 B at 2,000 echoes/s over TLS 1.3 (the
handshakes before the warm-up ends: CPU per echo); churn = echobench -m
churn --tls-no-resume, 10 slots x 64 B at 150 connections/s, a full
handshake and one echo per connection (CPU per handshake, and handshakes
per second per CPU second, its inverse). The cell is echod / set-up, the
median of the per-repetition ratios (range), beside each side's median.

A run that falls short of the offered rate, or has an error (a wrong byte,
a failed handshake), FAILs its repetition.

Environment: ECHOD, ECHOBENCH (default build/), SOCAT, STUNNEL, HAPROXY
(default: on PATH), SERVER_CPU=0 LOAD_CPU=1.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from report import spread, table
from same_time import ECHOBENCH, ECHOD, LOAD_CPU, SERVER_CPU, free_port, stop

SOCAT = os.environ.get("SOCAT") or shutil.which("socat")
STUNNEL = os.environ.get("STUNNEL") or shutil.which("stunnel4") or shutil.which("stunnel")
HAPROXY = os.environ.get("HAPROXY") or shutil.which("haproxy")
TICK = os.sysconf("SC_CLK_TCK")
WORKLOADS = {  # title, echobench arguments, default rate, unit of the CPU
    "o": ("o: 50 conn 512 B", ["-c", "50", "-s", "512"], 2000, "echo"),
    "churn": ("churn: 10 slots 64 B, full handshake a connection",
              ["-m", "churn", "-c", "10", "-s", "64", "--tls-no-resume"], 150, "handshake"),
}


def listening(port):
    """Whether 127.0.0.1:port listens (/proc/net/tcp): a probe through TLS
    would count in what is measured, this does not."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:])


def spawn(argv, pgid=0):
    """argv on SERVER_CPU in process group pgid (0: a new one)."""
    return subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=pgid)


class Setup:
    """A set-up's processes, all in the process group of the first one;
    self.port is where its clients connect."""

    def __init__(self, name, tmp, pem, cert, key, backend):
        self.name, self.procs = name, []
        try:
            self._start(tmp, pem, cert, key, backend)
        except BaseException:
            self.stop()
            raise

    def _add(self, argv, port):
        p = spawn(argv, self.procs[0].pid if self.procs else 0)
        self.procs.append(p)
        deadline = time.monotonic() + 5
        while not listening(port):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s: %s not listening on %d" % (self.name, os.path.basename(argv[0]), port))
            time.sleep(0.02)

    def _echod(self, backend, *args):
        port = free_port()
        self._add([ECHOD, "--port", str(port), "--threads", "1", "--backend", backend, "-b", "127.0.0.1"]
                  + list(args), port)
        return port

    def _start(self, tmp, pem, cert, key, backend):
        self.port = free_port()
        if self.name == "echod":
            self._add([ECHOD, "--port", str(free_port()), "--threads", "1", "--backend", backend, "-b",
                       "127.0.0.1", "--tls-port", str(self.port), "--tls-cert", cert, "--tls-key", key],
                      self.port)
        elif self.name == "socat":
            self._add([SOCAT, "OPENSSL-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,cert=%s,verify=0" % (self.port, pem),
                       "PIPE"], self.port)
        elif self.name == "stunnel":
            # The echod first: the set-up's group is its pid.
            back = self._echod(backend)
            cfg = os.path.join(tmp, "stunnel-%d.conf" % self.port)
            with open(cfg, "w") as f:
                f.write("foreground = yes\npid =\n[echo]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
                        "cert = %s\nkey = %s\n" % (self.port, back, cert, key))
            self._add([STUNNEL, cfg], self.port)
        elif self.name == "haproxy":
            back = self._echod(backend)
            cfg = os.path.join(tmp, "haproxy-%d.cfg" % self.port)
            with open(cfg, "w") as f:
                f.write("global\n    maxconn 4096\n    nbthread 1\n"
                        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n"
                        "    timeout server 30s\n"
                        "frontend fe\n    bind 127.0.0.1:%d ssl crt %s\n    default_backend be\n"
                        "backend be\n    server echod 127.0.0.1:%d\n" % (self.port, pem, back))
            self._add([HAPROXY, "-f", cfg, "-db"], self.port)

    def cpu_ticks(self):
        """utime+stime of every live process of the group, and what its
        members reaped of their children (socat's forks)."""
        pgid, total = self.procs[0].pid, 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile: its time is in its parent's
                continue
            if int(fields[2]) == pgid:
                total += sum(int(x) for x in fields[11:15])
        return total

    def stop(self):
        if self.procs:
            stop(self.procs[0])  # the whole group


def load(args, port, duration, warmup):
    argv = ["taskset", "-c", LOAD_CPU, ECHOBENCH] + args + [
        "--tls", "-T", "1", "-D", str(duration), "-w", str(warmup), "-q", "--json", "127.0.0.1:%d" % port]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def outcome(run, timeout, unit):
    """(echoes or full handshakes in the measured seconds, handshakes/s),
    or why the run failed."""
    try:
        out, _ = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        return None, "hung"
    try:
        doc = json.loads(out)
    except ValueError:
        return None, "no result (exit %d)" % run.returncode
    errors = {k: v for k, v in doc.get("errors", {}).items() if v}
    if errors:
        return None, " ".join("%s %d" % kv for kv in sorted(errors.items()))
    if doc.get("shortfall"):
        return None, "short"
    if run.returncode != 0 or doc.get("failed"):
        return None, "exit %d" % run.returncode
    tls = doc.get("tls") or {}
    if unit == "handshake":
        if tls.get("resumed"):
            return None, "%d sessions resumed" % tls["resumed"]
        return (tls.get("handshakes", 0), tls.get("handshakes_per_s", 0.0)), None
    return (doc["requests"], tls.get("handshakes_per_s", 0.0)), None


def one_rep(tmp, files, backend, name, args, duration, warmup, unit, echod_first):
    """((echod CPU-µs, its /s), (set-up CPU-µs, its /s)) per unit, or why not."""
    order = ["echod", name] if echod_first else [name, "echod"]
    setups = []
    try:
        for n in order:
            setups.append(Setup(n, tmp, *files, backend))
        runs = [load(args, s.port, duration, warmup) for s in setups]
        time.sleep(warmup)
        t0 = [s.cpu_ticks() for s in setups]
        time.sleep(duration)
        t1 = [s.cpu_ticks() for s in setups]
        got = [outcome(r, warmup + duration + 30, unit) for r in runs]
    except RuntimeError as e:
        return None, str(e)
    finally:
        for s in setups:
            s.stop()
    res = []
    for s, a, b, (counts, why) in zip(setups, t0, t1, got):
        if why:
            return None, "%s %s" % (s.name, why)
        if not counts[0]:
            return None, "%s: nothing counted" % s.name
        res.append(((b - a) * 1e6 / TICK / counts[0], counts[1]))
    if not echod_first:
        res.reverse()
    return tuple(res), None


def make_files(tmp):
    """An ECDSA P-256 certificate and key, and both in one PEM (socat's
    cert=, HAProxy's crt)."""
    cert, key, pem = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return pem, cert, key


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setups", default="socat,stunnel,haproxy")
    ap.add_argument("--workloads", default="o,churn")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--backend", default="epoll")
    ap.add_argument("--rate", type=int, default=0, help="echoes/s of o (default 2000)")
    ap.add_argument("--churn-rate", type=int, default=0, help="connections/s of churn (default 150)")
    a = ap.parse_args()
    have = {"socat": SOCAT, "stunnel": STUNNEL, "haproxy": HAPROXY}
    names = a.setups.split(",")
    for n in names:
        if n not in have:
            sys.exit("tls.py: unknown set-up '%s' (%s)" % (n, " ".join(have)))
        if not have[n]:
            sys.exit("tls.py: %s not found (install Debian's %s)" % (n, "stunnel4" if n == "stunnel" else n))
    works = a.workloads.split(",")
    for w in works:
        if w not in WORKLOADS:
            sys.exit("tls.py: unknown workload '%s' (%s)" % (w, " ".join(WORKLOADS)))
    rates = {"o": a.rate, "churn": a.churn_rate}
    cells, titles = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(tmp)
        for rep in range(a.reps):
            for i, n in enumerate(names):
                for w in works:
                    title, args, own, unit = WORKLOADS[w]
                    rate = rates[w] or own
                    titles[w] = "%s at %d/s" % (title, rate)
                    got, why = one_rep(tmp, files, a.backend, n, args + ["-r", str(rate)], a.duration, a.warmup,
                                       unit, (rep + i) % 2 == 0)
                    pairs, fails = cells.setdefault((n, w), ([], []))
                    (pairs.append(got) if got else fails.append(why))
                    print("  %s %s rep %d: %s" % (n, w, rep + 1, "echod %.1f µs / %s %.1f µs" % (
                        got[0][0], n, got[1][0]) if got else why), file=sys.stderr)
    print("CPU-µs per echo (o) and per full handshake (churn) of the whole set-up (every process: "
          "utime+stime), echod-%s's own TLS / the set-up, both served at the same time under the "
          "same open-loop echobench --tls load: median of the per-repetition ratios (range), and each "
          "side's median; handshakes per CPU-second is 1e6 / CPU-µs per handshake; %d repetitions "
          "of %g s:\n" % (a.backend, a.reps, a.duration))
    rows = []
    for n in names:
        for w in works:
            pairs, fails = cells[(n, w)]
            unit = WORKLOADS[w][3]
            if pairs:
                ratio = spread([e[0] / s[0] for e, s in pairs])
                mine = statistics.median(e[0] for e, _ in pairs)
                theirs = statistics.median(s[0] for _, s in pairs)
                sides = ["%.1f" % mine, "%.1f" % theirs]
                per_cpu = ["%.0f / %.0f" % (1e6 / mine, 1e6 / theirs)] if unit == "handshake" else ["-"]
            else:
                ratio, sides, per_cpu = "FAIL", ["-", "-"], ["-"]
            if fails:
                ratio += " (%d of %d: %s)" % (len(fails), a.reps, fails[0])
            rows.append(["echod / %s" % n, titles[w], ratio] + sides + per_cpu)
    table(["pair", "workload", "echod / set-up", "echod µs", "set-up µs", "handshakes per CPU-s"], rows)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
