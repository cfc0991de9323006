#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""threads.t - 1,000 concurrent clients, each checking it gets back only its
own bytes, against one worker and against several SO_REUSEPORT workers;
once per backend. Also run under ThreadSanitizer (make check-threads)."""
import os
import re
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401

CLIENTS = 1000
SIZE = 3000


def many_clients(addr, n, size, rounds=2, timeout=60.0):
    """Opens n connections at once; each sends `rounds` distinct messages,
    one at a time, and checks each echo. Returns (good, bad, errors)."""
    sel = selectors.DefaultSelector()
    state = {}
    errors = []
    for i in range(n):
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
        s.setblocking(False)
        s.connect_ex(addr)
        st = {"i": i, "round": 0, "out": b"", "sent": 0, "want": b"", "got": bytearray()}
        state[s] = st
        sel.register(s, selectors.EVENT_WRITE, st)

    def start_round(s, st):
        st["want"] = pattern(size, seed=st["i"] * 7 + st["round"])
        st["out"] = st["want"]
        st["sent"] = 0
        st["got"] = bytearray()

    for s, st in state.items():
        start_round(s, st)
    good = bad = 0
    deadline = time.monotonic() + timeout
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(0.5):
            s, st = key.fileobj, key.data
            try:
                if ev & selectors.EVENT_WRITE and st["sent"] < len(st["out"]):
                    st["sent"] += s.send(st["out"][st["sent"]:])
                    if st["sent"] == len(st["out"]):
                        sel.modify(s, selectors.EVENT_READ, st)
                if ev & selectors.EVENT_READ:
                    d = s.recv(65536)
                    if not d:
                        raise ConnectionError("unexpected EOF")
                    st["got"] += d
                    if len(st["got"]) >= len(st["want"]):
                        if bytes(st["got"]) != st["want"]:
                            bad += 1
                            raise ConnectionError("wrong bytes for client %d" % st["i"])
                        st["round"] += 1
                        if st["round"] == rounds:
                            good += 1
                            sel.unregister(s)
                            s.close()
                            del state[s]
                        else:
                            start_round(s, st)
                            sel.modify(s, selectors.EVENT_WRITE, st)
            except (OSError, ConnectionError) as e:
                errors.append(str(e))
                sel.unregister(s)
                s.close()
                del state[s]
    for s in list(state):
        errors.append("client %d timed out" % state[s]["i"])
        s.close()
    return good, bad, errors


def test_thousand(backend):
    for threads in ("1", "4"):
        srv = Echod("-t", threads, "-v", backend=backend)
        good, bad, errors = many_clients(srv.addr(), CLIENTS, SIZE)
        eq(good, CLIENTS, "%s -t %s: %d concurrent clients each got exactly its own bytes" % (backend, threads, CLIENTS),
           *errors[:5])
        eq(bad, 0, "%s -t %s: no client saw another's bytes" % (backend, threads))
        if threads != "1":
            workers = set(re.findall(r"echod\[w(\d)\]: accept", srv.log()))
            ok(len(workers) >= 2, "%s -t %s: connections spread over workers (%s)" % (backend, threads, sorted(workers)))
        ok(srv.alive(), "%s -t %s: alive" % (backend, threads))
        eq(srv.stop(), 0, "%s -t %s: exit 0" % (backend, threads))

    if have_ipv6():
        srv = Echod("-t", "2", backend=backend)
        good, bad, errors = many_clients(("::1", srv.port), 200, 500)
        eq(good, 200, "%s: 200 IPv6 clients each got its own bytes" % backend, *errors[:5])
        srv.stop()
    else:
        skip("%s: IPv6 clients" % backend, "no IPv6 here")


resource.setrlimit(resource.RLIMIT_NOFILE, (8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
for_each_backend(test_thousand)
done_testing()
