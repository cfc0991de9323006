#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""bench_broken.py - deliberately broken echo servers for tests/echobench.t.

usage: bench_broken.py MODE [--udp]

TCP modes change each connection's echo stream once, at byte AT:
  corrupt   flips one bit of byte AT
  drop      leaves byte AT out
  dup       sends byte AT twice
  reorder   swaps bytes AT and AT+1
  close     closes the connection instead of echoing byte AT
  stall     echoes correctly but stops for 100 ms once, 0.5 s after accept
  slow      echoes correctly but sleeps 1 ms before each echo: an overloaded
            server, at most about 1000 echoes/s per connection
  delay     echoes correctly but sleeps 20 ms before each echo: a known
            latency for --threshold (tests/echobench_threshold.t)
  ok        a correct echo server
UDP modes (--udp) act on every EVERY-th datagram:
  drop, dup, corrupt, reorder (held back and sent after the next one), ok

It listens on 127.0.0.1 port 0 and prints echod's start-up line on stderr,
"bench_broken: listening on tcp 127.0.0.1:PORT (fd N)".
"""

import socket
import sys
import threading
import time

AT = 1000
EVERY = 100
STALL_AFTER = 0.5
STALL = 0.1
SLOW = 0.001
DELAY = 0.02


class Stream:
    """One connection's echo stream with the mode's fault at byte AT."""

    def __init__(self, mode):
        self.mode = mode
        self.pos = 0  # stream offset of the next byte received
        self.held = b""  # reorder: byte AT when it ended a chunk
        self.start = time.monotonic()
        self.stalled = False

    def transform(self, data):
        """Returns (bytes to send, close afterwards)."""
        lo = self.pos
        self.pos += len(data)
        if self.held:
            # The byte after AT first, then AT.
            out, self.held = data[:1] + self.held + data[1:], b""
            return out, False
        if self.mode == "stall" and not self.stalled and \
                time.monotonic() - self.start >= STALL_AFTER:
            self.stalled = True
            time.sleep(STALL)
        if self.mode == "slow":
            time.sleep(SLOW)
        if self.mode == "delay":
            time.sleep(DELAY)
        if not lo <= AT < self.pos:
            return data, False
        i = AT - lo
        if self.mode == "corrupt":
            return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:], False
        if self.mode == "drop":
            return data[:i] + data[i + 1:], False
        if self.mode == "dup":
            return data[:i + 1] + data[i:], False
        if self.mode == "close":
            return data[:i], True
        if self.mode == "reorder":
            if i + 1 == len(data):
                self.held = data[i:]
                return data[:i], False
            return data[:i] + data[i + 1:i + 2] + data[i:i + 1] + data[i + 2:], False
        return data, False


def serve_tcp_conn(conn, mode):
    s = Stream(mode)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            out, close = s.transform(data)
            if out:
                conn.sendall(out)
            if close:
                break
    except OSError:
        pass
    conn.close()


def serve_tcp(mode):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    announce("tcp", ls)
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_tcp_conn, args=(conn, mode), daemon=True).start()


def serve_udp(mode):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    announce("udp", s)
    n = 0
    held = None
    while True:
        data, addr = s.recvfrom(65536)
        n += 1
        special = n % EVERY == 0
        if mode == "drop" and special:
            continue
        if mode == "corrupt" and special:
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        if mode == "reorder" and special and held is None:
            held = (data, addr)
            continue
        s.sendto(data, addr)
        if mode == "dup" and special:
            s.sendto(data, addr)
        if held is not None:
            s.sendto(*held)
            held = None


def announce(proto, sock):
    host, port = sock.getsockname()
    print("bench_broken: listening on %s %s:%d (fd %d)" % (proto, host, port, sock.fileno()),
          file=sys.stderr, flush=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if "--udp" in sys.argv[2:]:
        serve_udp(sys.argv[1])
    else:
        serve_tcp(sys.argv[1])


if __name__ == "__main__":
    main()
