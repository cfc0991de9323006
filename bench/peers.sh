#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/peers.sh - build the published C echo servers that `make bench`
# compares echod with, outside the tree, and print the PEERS string for
# bench/run.sh.
#
# usage: bench/peers.sh [LIBURING_DIR [EPOLL_ECHO_DIR [URING_ECHO_DIR]]]
#
# The directories are checkouts (never copied into this project):
#   LIBURING_DIR     https://github.com/axboe/liburing (its examples/echo-server.c,
#                    the io_uring maintainers' statement of best practice, built
#                    against this liburing, not the distribution's)
#   EPOLL_ECHO_DIR   https://github.com/frevib/epoll-echo-server
#   URING_ECHO_DIR   https://github.com/frevib/io_uring-echo-server (built
#                    against the same liburing)
# Instead of arguments: LIBURING_SRC, EPOLL_ECHO_SRC, URING_ECHO_SRC. A
# directory left empty skips that server (and a missing liburing skips both
# io_uring servers).
#
# PEER_CFLAGS (default -O2) are the compiler flags; CC the compiler.
# PEERS_OUT (default ${TMPDIR:-/tmp}/echod-peers) receives a copy of each
# checkout and the programs; the checkouts themselves are left as they were.
# Progress goes to stderr, the PEERS string alone to stdout, so:
#   PEERS=$(bench/peers.sh ~/src/liburing ~/src/epoll-echo-server \
#           ~/src/io_uring-echo-server) make bench
#
# Each of the three takes its port as its only argument and serves TCP only
# (so run.sh shows n/a in the UDP column), one thread, no options.
set -eu

LIBURING_SRC=${1:-${LIBURING_SRC:-}}
EPOLL_ECHO_SRC=${2:-${EPOLL_ECHO_SRC:-}}
URING_ECHO_SRC=${3:-${URING_ECHO_SRC:-}}
PEERS_OUT=${PEERS_OUT:-${TMPDIR:-/tmp}/echod-peers}
CC=${CC:-cc}
read -ra cflags <<<"${PEER_CFLAGS:--O2}"
JOBS=${JOBS:-$(nproc)}

say() { printf 'peers.sh: %s\n' "$*" >&2; }

# Copies checkout $1 to $PEERS_OUT/src/$2 (fresh), so that a build leaves
# the checkout untouched.
copy_src() {
	[ -d "$1" ] || { say "$1: not a directory"; exit 2; }
	rm -rf "${PEERS_OUT:?}/src/$2"
	mkdir -p "$PEERS_OUT/src"
	cp -a "$1" "$PEERS_OUT/src/$2"
}

mkdir -p "$PEERS_OUT/bin"
PEERS_OUT=$(cd "$PEERS_OUT" && pwd)
peers=()
uring=

if [ -n "$LIBURING_SRC" ]; then
	copy_src "$LIBURING_SRC" liburing
	uring=$PEERS_OUT/src/liburing
	say "liburing $(git -C "$LIBURING_SRC" describe --tags --always 2>/dev/null || echo '(no git)')"
	(cd "$uring" && ./configure --cc="$CC" >/dev/null &&
		make -s -j"$JOBS" -C src >/dev/null) >&2
	# examples/echo-server.c needs the examples' helpers.c.
	"$CC" "${cflags[@]}" -D_GNU_SOURCE -I"$uring/src/include" -o "$PEERS_OUT/bin/liburing-echo-server" \
		"$uring/examples/echo-server.c" "$uring/examples/helpers.c" "$uring/src/liburing.a" >&2
	peers+=("liburing-echo=$PEERS_OUT/bin/liburing-echo-server {PORT}")
fi

if [ -n "$EPOLL_ECHO_SRC" ]; then
	copy_src "$EPOLL_ECHO_SRC" epoll-echo-server
	say "epoll-echo-server $(git -C "$EPOLL_ECHO_SRC" rev-parse --short HEAD 2>/dev/null || echo '(no git)')"
	"$CC" "${cflags[@]}" -D_GNU_SOURCE -o "$PEERS_OUT/bin/epoll_echo_server" \
		"$PEERS_OUT/src/epoll-echo-server/epoll_echo_server.c" >&2
	peers+=("frevib-epoll=$PEERS_OUT/bin/epoll_echo_server {PORT}")
fi

if [ -n "$URING_ECHO_SRC" ]; then
	if [ -z "$uring" ]; then
		say "io_uring-echo-server needs LIBURING_DIR (a current liburing); skipped"
	else
		copy_src "$URING_ECHO_SRC" io_uring-echo-server
		say "io_uring-echo-server $(git -C "$URING_ECHO_SRC" rev-parse --short HEAD 2>/dev/null || echo '(no git)')"
		"$CC" "${cflags[@]}" -D_GNU_SOURCE -I"$uring/src/include" -o "$PEERS_OUT/bin/io_uring_echo_server" \
			"$PEERS_OUT/src/io_uring-echo-server/io_uring_echo_server.c" "$uring/src/liburing.a" >&2
		peers+=("frevib-io_uring=$PEERS_OUT/bin/io_uring_echo_server {PORT}")
	fi
fi

[ ${#peers[@]} -gt 0 ] || { say "no checkout given; see the usage at the top of this file"; exit 2; }
(
	IFS=';'
	echo "${peers[*]}"
)
