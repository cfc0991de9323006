#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""memory_mix.py - echod's resident memory before, during and after a hostile
mix, for BENCHMARKS.md ("Memory after a hostile soak"). Not a test.

usage: bench/memory_mix.py ECHOD BACKEND THREADS [echod options...]

NONREADERS (default 200) clients send 64 KiB chunks without reading until
nothing has moved for 1.5 s, while STREAMERS (default 20) clients each echo
4 MiB and check every byte. Then KEEP (default 8) idle clients connect, the
non-readers close, and VmRSS is read 2.5 s later: memory must go back with
clients still connected, not only once the last one left.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def start(echod, backend, threads, extra):
    p = subprocess.Popen([echod, "--port", "0", "-t", threads, "--backend", backend,
                          "--grace", "0"] + extra,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    port = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        m = re.search(r"listening on tcp \S*:(\d+)", line)
        if m and port is None:
            port = int(m.group(1))
        if "ready" in line:
            break
    if port is None:
        p.kill()
        sys.exit("memory_mix: echod did not start")
    # Keep reading stderr so that echod never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, port


def stream(port, errors):
    blob = os.urandom(4 << 20)
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        def reader():
            while len(got) < len(blob):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got.extend(chunk)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(blob)
        t.join(60)
    if bytes(got) != blob:
        errors.append("a streamer got %d of %d bytes, or other bytes" % (len(got), len(blob)))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.strip().splitlines()[2])
    echod, backend, threads, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    nonreaders = int(os.environ.get("NONREADERS", "200"))
    streamers = int(os.environ.get("STREAMERS", "20"))
    keep = int(os.environ.get("KEEP", "8"))
    p, port = start(echod, backend, threads, extra)
    time.sleep(0.3)
    before = rss_kib(p.pid)
    stuck = []
    for _ in range(nonreaders):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        stuck.append(s)
    errors = []
    workers = [threading.Thread(target=stream, args=(port, errors)) for _ in range(streamers)]
    for t in workers:
        t.start()
    chunk = os.urandom(1 << 16)
    last, peak = time.monotonic(), 0
    while time.monotonic() - last < 1.5:
        for s in stuck:
            try:
                if s.send(chunk) > 0:
                    last = time.monotonic()
            except BlockingIOError:
                pass
        peak = max(peak, rss_kib(p.pid))
    for t in workers:
        t.join(120)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(keep)]
    for s in stuck:
        s.close()
    time.sleep(2.5)
    after = rss_kib(p.pid)
    print("%s -t %s %s: before %d KiB, peak %d KiB, after %d KiB (%d clients still connected)%s"
          % (backend, threads, " ".join(extra), before, peak, after, keep,
             "; " + "; ".join(errors) if errors else ""))
    for s in idle:
        s.close()
    p.terminate()
    p.wait(10)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
