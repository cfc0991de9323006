#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""udpfair.t - one source flooding UDP as fast as a client here can send
(helper-udpflood, sendmmsg from 127.0.0.2) costs other sources nothing:
while it floods, 8 sockets from 127.0.0.3 to 127.0.0.10 sending 100
datagrams a second each get >= 99 % answered in every round, with p99
round trip <= 20 ms (in one of up to three rounds: see test_fair); the
flooder is shed (logged) and still answered at its --udp-rate. Default options (-u, --udp-rate 1000), once per backend."""
import os
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
    """Two floods at least, a third when neither met the latency bound:
    every one must leave >= 99 % answered (a starved queue loses datagrams
    whatever else runs), and one must show p99 <= 20 ms, since a test run
    beside others (prove -j2, the soak) can delay any one round's replies
    by the machine's own scheduling, flood or not."""
    srv = Echod("-u", "--no-tcp", backend=backend)
    rounds = []
    while len(rounds) < 2 or (len(rounds) < 3 and min(r[1] for r in rounds) > WANT_P99_MS):
        rounds.append(flood_round(srv))
        diag("%s: round %d: %s" % (backend, len(rounds), rounds[-1][2]))
    eq([r[3] for r in rounds], [0] * len(rounds), "%s: the flooder ran" % backend)
    ok(all(r[0] >= WANT_ANSWERED for r in rounds),
       "%s: under a one-source flood, >= %.0f %% of other sources' datagrams answered, in each of %d rounds"
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


if not os.access(FLOOD, os.X_OK):
    bail_out("helper-udpflood is not built (%s)" % FLOOD)
for_each_backend(test_fair)
done_testing()
