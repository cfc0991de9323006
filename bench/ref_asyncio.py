#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ref_asyncio.py - reference echo server on Python asyncio, TCP and UDP.

A yardstick for `make bench` (bench/run.sh) and a UDP peer for the tests
while echod has no UDP: the plainest asyncio echo, one event loop, one
thread. It prints one line per socket on stderr in echod's format,
"ref_asyncio: listening on tcp 127.0.0.1:PORT (fd N)", so that --port 0
works and tests can read the port back.

usage: ref_asyncio.py [--host ADDR] [--port PORT] [--udp] [--loop asyncio|uvloop]
  --udp also serves UDP datagrams on the same port number (TCP's port when
  --port 0: it binds TCP first, then UDP on that port).
  --loop uvloop runs the same protocols on uvloop's event loop (libuv), the
  fastest Python loop; that Python must have uvloop (Debian: python3-uvloop).
"""

import argparse
import asyncio
import signal
import socket
import sys


class TcpEcho(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        # Closes once everything written has gone (RFC 862: echo until EOF).
        return False


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def announce(proto, sock):
    host, port = sock.getsockname()[:2]
    shown = "[%s]" % host if ":" in host else host
    print("ref_asyncio: listening on %s %s:%d (fd %d)" % (proto, shown, port, sock.fileno()),
          file=sys.stderr, flush=True)


async def serve(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    server = await loop.create_server(TcpEcho, args.host, args.port, reuse_address=True,
                                      backlog=4096)
    tcp = server.sockets[0]
    announce("tcp", tcp)
    if args.udp:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((args.host, tcp.getsockname()[1]))
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        await loop.create_datagram_endpoint(UdpEcho, sock=udp)
        announce("udp", udp)
    async with server:
        await stop


def main():
    ap = argparse.ArgumentParser(description="asyncio echo server (TCP, and UDP with --udp)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7007)
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = ap.parse_args()
    if args.loop == "asyncio":
        asyncio.run(serve(args))
        return
    try:
        import uvloop
    except ImportError:
        print("ref_asyncio: --loop uvloop: this Python (%s) has no uvloop" % sys.executable,
              file=sys.stderr)
        sys.exit(2)
    if hasattr(uvloop, "run"):  # uvloop 0.18 and later
        uvloop.run(serve(args))
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
