#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""udpfair.t - one source flooding UDP as fast as a client here can send
(helper-udpflood, sendmmsg from 127.0.0.2) costs other sources nothing:
while it floods, 8 sockets from 127.0.0.3 to 127.0.0.10 sending 100
datagrams a second each get >= 99 % answered, with p99 round trip
<= 20 ms (each in one of up to three rounds: see test_fair); the
flooder is shed (logged) and still answered at its --udp-rate. Default options (-u, --udp-rate 1000), once per backend."""
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

FLOOD = os.path.join(HELPERS_DIR, "helper-udpflood")
SOURCES = 8
RATE = 100  # datagrams a second from each source
MEASURE = 2.5  # seconds the sources send, inside the flood
FLOOD_SECS = MEASURE + 1.5
WANT_ANSWERED = 99.0  # percent
WANT_P99_MS = 20.0
SHED_MOST = 10  # percent of the flood echod may receive itself


def measure(port, seconds):
    """Sends RATE a second from each source; returns (sent, rtts)."""
    socks = []
    for i in range(SOURCES):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.%d" % (3 + i), 0))
        s.setblocking(False)
        socks.append(s)
    sent, rtts = 0, []
    t0 = time.monotonic()
    due = t0
    # Late answers count until half a second after the last send.
    while time.monotonic() < t0 + seconds + 0.5:
        now = time.monotonic()
        if now >= due and now < t0 + seconds:
            for s in socks:
                s.sendto(struct.pack("!d", time.monotonic()), ("127.0.0.1", port))
                sent += 1
            due += 1.0 / RATE
        wait = max(0.0, min(due - time.monotonic(), 0.01))
        ready, _, _ = select.select(socks, [], [], wait)
        got = time.monotonic()
        for s in ready:
            while True:
                try:
                    data = s.recv(64)
                except BlockingIOError:
                    break
                rtts.append(got - struct.unpack("!d", data)[0])
    for s in socks:
        s.close()
    return sent, sorted(rtts)


def flood_round(srv):
    """One flood with the sources measured inside it: (answered %, p99 ms,
    the figures in words, the flooder's exit status)."""
    flood = subprocess.Popen([FLOOD, "127.0.0.2", "127.0.0.1", str(srv.port), str(FLOOD_SECS)],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sent, rtts = measure(srv.port, MEASURE)
    out, _ = flood.communicate(timeout=30)
    answered = 100.0 * len(rtts) / sent
    p99 = rtts[max(0, int(len(rtts) * 0.99) - 1)] * 1000 if rtts else float("inf")
    figures = "%d of %d answered (%.2f %%), p99 %.2f ms, max %.1f ms; flooder %s" % (
        len(rtts), sent, answered, p99, rtts[-1] * 1000 if rtts else 0, out.strip())
    return answered, p99, figures, flood.returncode


def test_fair(backend):
    """Up to three floods, until one has left >= 99 % answered and one has
    shown p99 <= 20 ms. The machine's own scheduling (prove -j2 beside the
    soak, other suites at once) delays any one round's replies and, on a
    loaded machine, lets a round lose 1-3 %: with the filter, rounds read
    99.2, 99.5 and 97.3 % then. Without the kernel filter (net_udp_shed
    doing nothing) rounds read 88-97 %, and once 99.85 %: what proves the
    filter is the share of the flood echod receives itself, checked after
    (2-3 % with it, 46-59 % without)."""
    srv = Echod("-u", "--no-tcp", backend=backend)
    rounds = []
    while len(rounds) < 3 and (not rounds or max(r[0] for r in rounds) < WANT_ANSWERED
                               or min(r[1] for r in rounds) > WANT_P99_MS):
        rounds.append(flood_round(srv))
        diag("%s: round %d: %s" % (backend, len(rounds), rounds[-1][2]))
    eq([r[3] for r in rounds], [0] * len(rounds), "%s: the flooder ran" % backend)
    ok(max(r[0] for r in rounds) >= WANT_ANSWERED,
       "%s: under a one-source flood, >= %.0f %% of other sources' datagrams answered, in one of %d rounds"
       % (backend, WANT_ANSWERED, len(rounds)), *[r[2] for r in rounds])
    ok(min(r[1] for r in rounds) <= WANT_P99_MS, "%s: ... with p99 round trip <= %.0f ms (%s ms)"
       % (backend, WANT_P99_MS, ", ".join("%.2f" % r[1] for r in rounds)))
    ok(srv.wait_log(r"udp: flood from 127\.0\.0\.2 \(", timeout=1),
       "%s: the flood is shed and logged" % backend, srv.log())
    # After the flood its source is answered again: at once by its rate
    # budget, though its shedding lasts until the worker next judges it
    # (a datagram reaching the worker a second on), so keep sending.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    reply = None
    end = time.monotonic() + 4
    while reply is None and time.monotonic() < end:
        s.sendto(b"still here", ("127.0.0.1", srv.port))
        if select.select([s], [], [], 0.002)[0]:
            reply = s.recv(64)
    s.close()
    eq(reply, b"still here", "%s: the flood's source is answered again" % backend)
    ok(srv.alive(), "%s: alive after the flood" % backend)
    srv.stop()
    # The shedding is the kernel's (a socket filter): echod itself receives
    # a small part of the flood. Without the filter it receives most of
    # what the socket buffer holds, whatever the machine's load.
    got = re.search(r"udp: (\d+) datagrams received", srv.log())
    flooded = sum(int(re.search(r"sent (\d+) datagrams", r[2]).group(1)) for r in rounds)
    share = 100.0 * int(got.group(1)) / flooded if got and flooded else 100.0
    ok(share < SHED_MOST, "%s: echod received %.1f %% of the flood's datagrams (< %d %%)"
       % (backend, share, SHED_MOST), srv.log())


if not os.access(FLOOD, os.X_OK):
    bail_out("helper-udpflood is not built (%s)" % FLOOD)
for_each_backend(test_fair)
done_testing()
