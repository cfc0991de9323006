#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""churn.t - 100,000 connect, echo, close cycles (echobench -m churn: 16
slots on two client threads, every echoed byte checked) against two
workers, once per backend; afterwards echod holds no descriptor, no memory
and no socket state more than before.

The memory bound: RSS after the cycles <= RSS after a 5,000-cycle warm-up
+ 1 MiB. The warm-up lets the allocator, the connection table and the
io_uring ring reach their working size; past it a connection must cost
nothing, and leaking even one 32-byte allocation per connection would
grow RSS by 3 MiB over 100,000.

CHURN_CYCLES overrides the count (make soak passes it); sanitizer builds
run 10,000 cycles and skip the memory bound (ASan's quarantine keeps freed
memory on purpose)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
from soaklib import close_wait, fd_count, settle_baseline, settled, socket_states  # noqa: E402

CYCLES = int(os.environ.get("CHURN_CYCLES") or (10000 if SANITIZED else 100000))
WARMUP = 5000


def churn(addr, n):
    """Runs n cycles; returns (echobench's JSON summary or None, its stderr)."""
    p = subprocess.run([ECHOBENCH, "-m", "churn", "-c", "16", "-T", "2", "-n", str(n), "-w", "0",
                        "-t", "5", "-j", "-q", "%s:%d" % addr], capture_output=True, text=True,
                       timeout=300)
    try:
        return json.loads(p.stdout), p.stderr
    except ValueError:
        return None, p.stderr + p.stdout[-500:]


def leftovers(port):
    """Sockets on echod's port in any state but LISTEN: what its closes
    left in the kernel (TIME-WAIT included: echod closes second)."""
    ss = need_program("ss")
    if not ss:
        return []
    out = subprocess.run([ss, "-tanH", "sport", "= :%d" % port], capture_output=True, text=True,
                         timeout=10).stdout
    return [line for line in out.splitlines() if not line.startswith("LISTEN")]


def test(backend):
    srv = Echod("-t", "2", backend=backend)
    pid = srv.proc.pid
    base = settle_baseline(pid)
    warm, err = churn(srv.addr(), WARMUP)
    ok(warm and not warm["failed"], "%s: %d warm-up cycles" % (backend, WARMUP), err)
    rss0 = srv.rss_kib()
    t0 = time.monotonic()
    res, err = churn(srv.addr(), CYCLES)
    took = time.monotonic() - t0
    errors = res and {k: v for k, v in res["errors"].items() if v}
    ok(res and not res["failed"] and not errors and res["requests"] == CYCLES,
       "%s: %d connect, echo, close cycles, every byte back" % (backend, CYCLES),
       errors or err)
    fds, cw = settled(pid, base, timeout=10.0)
    eq(fds, base, "%s: echod's descriptors back to the baseline" % backend)
    ok(not cw, "%s: no socket of echod in CLOSE-WAIT" % backend, *cw[:3])
    wait_until(lambda: not leftovers(srv.port), 10.0, 0.2)
    left = leftovers(srv.port)
    ok(not left, "%s: no socket state left on echod's port" % backend,
       "%d sockets, e.g. %s" % (len(left), left[:3]) if left else "")
    eq(socket_states(pid), {"LISTEN": 2}, "%s: echod holds its two listeners only" % backend)
    rss1 = srv.rss_kib()
    diag("%s: %d cycles in %.1f s; RSS %d KiB after warm-up, %d KiB after" % (
        backend, CYCLES, took, rss0, rss1))
    if SANITIZED:
        skip("%s: memory bound" % backend, "sanitizer build")
    else:
        ok(rss1 <= rss0 + 1024, "%s: resident memory within 1 MiB of the warm-up's" % backend)
    srv.stop()


if not os.access(ECHOBENCH, os.X_OK):
    bail_out("echobench not built: %s" % ECHOBENCH)
for_each_backend(test)
done_testing()
