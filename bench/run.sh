#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/run.sh - `make bench`: a fixed matrix of echobench workloads against
# echod and reference servers on this machine, printed as markdown tables
# (bench/report.py): medians of absolutes, then echod / each peer as the
# median of per-repetition ratios.
#
# Each cell runs a fresh server pinned to one CPU (SERVER_CPU) with the load
# pinned to the other (LOAD_CPU); repetitions are interleaved (every server
# once, then again) and the cell shows the median, because this machine is
# shared and noisy: only ratios inside one run mean anything.
#
# Environment:
#   ECHOD, ECHOBENCH   programs (make exports them; default build/)
#   REPS=3 DURATION=2 WARMUP=1   repetitions, seconds per run
#   WORKLOADS="a b c d d4 e o ch8 ch64"   columns to run ("" = none: only the
#                      cost pairs); ch8 and ch64 are churn, a new connection
#                      per echo, so their cells are connections/s and CPU-µs
#                      per connection
#   OPEN_RATE=8000     column o's offered rate (echoes/s over 50 connections),
#                      below every row's saturation: equal load for all
#   SERVERS="echod-epoll echod-io_uring asyncio uvloop socat"   rows; one that
#                      cannot run here (or a column it cannot serve) says n/a
#   UVLOOP_PYTHON      a Python with uvloop for the uvloop row (default: the
#                      first of $PYTHON, /usr/bin/python3 that imports it)
#   PEERS='name=cmd {PORT};name2=cmd2 {PORT}'   more TCP servers to compare,
#                      started by sh with {PORT} replaced by a free port
#                      (bench/peers.sh prints this for the published servers)
#   QUICK=1            a small matrix (columns b d4 o, 2 short repetitions, no
#                      cost pairs, no same-moment or instructions table) to
#                      check the script in about a minute
#   SERVER_CPU=0 LOAD_CPU=1        the CPUs for taskset
#   BARE_CLIENT        build/bare-client: echobench's cost is shown as its
#                      ratio to this client's, in REPS pairs per workload,
#                      each pair served at once (an echod for each client)
#   COST_WORKLOADS="a b c"         workloads of that comparison ("" = none)
#   CELL_TIMEOUT=60    seconds before a run that hangs is killed (a FAIL cell)
#   SAME_TIME="a o c ch8 ch64"   columns measured again with
#                      bench/same_time.py: echod and each peer (PEERS,
#                      uvloop) served at the same time under the same
#                      open-loop load, the comparison with the C peers that
#                      the machine's drift does not move ("" = none);
#                      SAME_REPS=5 SAME_DURATION=3, SAME_RATE (default: each
#                      column's own rate)
#   INSTRUCTIONS=1     end with bench/instructions.py's table (user-space
#                      instructions per echo under callgrind) when valgrind
#                      is here; 0 skips it
#   OUT=dir            keep each run's JSON there (default: a temporary dir)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ECHOD=${ECHOD:-$here/../build/echod}
ECHOBENCH=${ECHOBENCH:-$here/../build/echobench}
BARE_CLIENT=${BARE_CLIENT:-$here/../build/bare-client}
if [ -n "${QUICK:-}" ] && [ "$QUICK" != 0 ]; then
	COST_WORKLOADS=${COST_WORKLOADS-}
	REPS=${REPS:-2}
	DURATION=${DURATION:-0.5}
	WARMUP=${WARMUP:-0.25}
	WORKLOADS=${WORKLOADS-b d4 o}
	SAME_TIME=${SAME_TIME-}
	INSTRUCTIONS=${INSTRUCTIONS-0}
fi
COST_WORKLOADS=${COST_WORKLOADS-a b c}
REPS=${REPS:-3}
DURATION=${DURATION:-2}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS-a b c d d4 e o ch8 ch64}
OPEN_RATE=${OPEN_RATE:-8000}
CELL_TIMEOUT=${CELL_TIMEOUT:-60}
SAME_TIME=${SAME_TIME-a o c ch8 ch64}
SAME_REPS=${SAME_REPS:-5}
SAME_DURATION=${SAME_DURATION:-3}
INSTRUCTIONS=${INSTRUCTIONS:-1}
SERVERS=${SERVERS:-echod-epoll echod-io_uring asyncio uvloop socat}
PEERS=${PEERS:-}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# The interpreter itself, not a wrapper (a pyenv shim costs 0.3 s a start,
# and free_port starts it for every cell).
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}

if [ -z "${OUT:-}" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/echobench-run.XXXXXX")
	trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

# The workloads: echobench arguments for each column.
workload_args() {
	case $1 in
	a) echo "-c 1 -s 64" ;;
	b) echo "-c 50 -s 512" ;;
	c) echo "-c 500 -s 128" ;;
	d) echo "-c 1 -s 65536 -d 8" ;;
	d4) echo "-c 4 -s 65536 -d 8" ;;
	e) echo "--udp -c 50 -s 512" ;;
	o) echo "-c 50 -s 512 -r $OPEN_RATE" ;;
	# A connection per echo, closed loop: 8 or 64 connects at a time.
	ch8) echo "-m churn -c 8 -s 64" ;;
	ch64) echo "-m churn -c 64 -s 64" ;;
	*)
		echo "run.sh: unknown workload '$1' (a b c d d4 e o ch8 ch64)" >&2
		return 2
		;;
	esac
}

# A Python that has uvloop, for the uvloop row (empty: none here).
find_uvloop_python() {
	local py
	for py in ${UVLOOP_PYTHON:-$PYTHON /usr/bin/python3}; do
		"$py" -c 'import uvloop' 2>/dev/null && { echo "$py"; return 0; }
	done
	return 0
}

# The command that starts server $1 for workload $2, with {PORT}; empty
# when that server cannot run it.
server_cmd() {
	local udp=
	[ "$2" = e ] && udp=1
	case $1 in
	echod-*)
		local backend=${1#echod-}
		"$ECHOD" --list-backends 2>/dev/null | grep -q "^$backend available" ||
			return 0
		if [ -n "$udp" ]; then
			"$ECHOD" --help 2>&1 | grep -q -- '--udp' || return 0
			# The per-source rate limit is off: all the load comes from 127.0.0.1.
			echo "$ECHOD --port {PORT} --threads 1 --backend $backend --udp --no-tcp --udp-rate 0 --udp-byte-rate 0"
		else
			echo "$ECHOD --port {PORT} --threads 1 --backend $backend"
		fi
		;;
	asyncio)
		echo "$PYTHON $here/ref_asyncio.py --port {PORT}${udp:+ --udp}"
		;;
	uvloop)
		[ -n "$uvloop_python" ] &&
			echo "$uvloop_python $here/ref_asyncio.py --loop uvloop --port {PORT}${udp:+ --udp}"
		;;
	socat)
		command -v socat >/dev/null || return 0
		# socat forks a child per connection; UDP forks per peer too
		# and is left out.
		[ -z "$udp" ] &&
			echo "socat TCP-LISTEN:{PORT},reuseaddr,fork,backlog=4096 PIPE"
		;;
	*)
		[ -n "$udp" ] && return 0
		peer_cmd "$1"
		;;
	esac
	return 0
}

peer_cmd() {
	local IFS=';' p
	for p in $PEERS; do
		[ "${p%%=*}" = "$1" ] && echo "${p#*=}"
	done
	return 0
}

peer_names() {
	local IFS=';' p
	for p in $PEERS; do
		printf '%s ' "${p%%=*}"
	done
}

free_port() {
	# Probe-and-release: the servers under test take {PORT} on their
	# command line, so one must be chosen for them.
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs one cell once: fresh server, wait until it echoes, measure, kill.
run_cell() {
	local server=$1 w=$2 rep=$3 cmd port pid proto='' st
	cmd=$(server_cmd "$server" "$w")
	[ -n "$cmd" ] || return 0
	port=$(free_port)
	cmd=${cmd//\{PORT\}/$port}
	[ "$w" = e ] && proto=--udp
	taskset -c "$SERVER_CPU" setsid sh -c "exec $cmd" </dev/null >/dev/null 2>"$OUT/$server.$w.$rep.log" &
	pid=$!
	# Polled every 20 ms for up to 5 s: starting and stopping servers is
	# most of a short run's time (QUICK=1, tests/bench.t).
	for _ in $(seq 250); do
		taskset -c "$LOAD_CPU" "$ECHOBENCH" $proto -c 1 -n 1 -w 0 -q -t 1 \
			"127.0.0.1:$port" >/dev/null 2>&1 && break
		sleep 0.02
	done
	st=0
	# shellcheck disable=SC2046
	timeout -s KILL "$CELL_TIMEOUT" taskset -c "$LOAD_CPU" "$ECHOBENCH" $(workload_args "$w") -T 1 \
		-D "$DURATION" -w "$WARMUP" -q --json --server-pid "$pid" \
		"127.0.0.1:$port" >"$OUT/$server.$w.$rep.json" \
		2>>"$OUT/$server.$w.$rep.log" || st=$?
	echo "$st" >"$OUT/$server.$w.$rep.status"
	# A server that died under the load (some do under churn) is part of
	# the cell's reason; bash reaps it, and kill -0 fails then. Its
	# sockets close before its process has ended (which is what ended
	# the run), so a failed run gives it up to a second to be gone.
	if [ "$st" != 0 ]; then
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.02
		done
	fi
	kill -0 "$pid" 2>/dev/null || echo exited >"$OUT/$server.$w.$rep.server"
	kill -TERM -- "-$pid" 2>/dev/null || true
	for _ in $(seq 250); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	printf '  %s %s rep %s: exit %s\n' "$server" "$w" "$rep" "$st" >&2
}

# Starts echod (epoll, one thread) on SERVER_CPU; sets port and pid.
start_echod() {
	port=$(free_port)
	taskset -c "$SERVER_CPU" setsid "$ECHOD" --port "$port" --threads 1 \
		--backend epoll </dev/null >/dev/null 2>>"$OUT/cost.log" &
	pid=$!
	for _ in $(seq 50); do
		"$ECHOBENCH" -c 1 -n 1 -w 0 -q -t 1 "127.0.0.1:$port" \
			>/dev/null 2>&1 && break
		sleep 0.1
	done
}

stop_server() {
	kill -TERM -- "-$1" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# One pair: the bare client and echobench (one thread, every byte checked)
# at the same time, each against a fresh echod of its own, both servers on
# SERVER_CPU and both clients on LOAD_CPU, so that whatever the machine does
# in those seconds it does to both sides of the ratio. (Run one after the
# other, the same ratio read 1.04, then 1.27 and 1.29 at column a; served at
# once, 1.01-1.04.)
run_pair() {
	local w=$1 rep=$2 port pid args bare_port bare_pid bare_run
	args=$(workload_args "$w")
	start_echod
	bare_port=$port bare_pid=$pid
	start_echod
	# shellcheck disable=SC2086
	taskset -c "$LOAD_CPU" "$BARE_CLIENT" $args -D "$DURATION" -w "$WARMUP" \
		"127.0.0.1:$bare_port" >"$OUT/cost.$w.$rep.bare.json" \
		2>>"$OUT/cost.log" &
	bare_run=$!
	# shellcheck disable=SC2086
	taskset -c "$LOAD_CPU" "$ECHOBENCH" $args -T 1 -D "$DURATION" \
		-w "$WARMUP" -q --json "127.0.0.1:$port" \
		>"$OUT/cost.$w.$rep.echobench.json" 2>>"$OUT/cost.log" || true
	wait "$bare_run" || true
	stop_server "$pid"
	stop_server "$bare_pid"
	printf '  client cost %s rep %s\n' "$w" "$rep" >&2
}

for w in $WORKLOADS; do
	workload_args "$w" >/dev/null || exit 2
done
for w in $SAME_TIME; do
	case $w in
	a | o | c | ch8 | ch64) ;;
	*)
		echo "run.sh: SAME_TIME: unknown workload '$w' (a o c ch8 ch64)" >&2
		exit 2
		;;
	esac
done
uvloop_python=$(find_uvloop_python)
start=$(date +%s)
rows="$SERVERS $(peer_names)"
for rep in $(seq "$REPS"); do
	for w in $WORKLOADS; do
		for server in $rows; do
			run_cell "$server" "$w" "$rep"
		done
	done
	if [ -x "$BARE_CLIENT" ]; then
		for w in $COST_WORKLOADS; do
			run_pair "$w" "$rep"
		done
	fi
done
elapsed=$(($(date +%s) - start))

{
	echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)"
	echo "Servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU; $REPS interleaved repetitions of ${DURATION}s (+${WARMUP}s warm-up), median shown; $elapsed s in all."
	echo
}
"$PYTHON" "$here/report.py" "$OUT" "$REPS" "$rows" "$WORKLOADS" "$COST_WORKLOADS" "$OPEN_RATE"

# One server after another, a ratio of a few per cent moves with the
# machine; served at once, it does not (BENCHMARKS.md, "Same load, same
# moment").
same_moment() {
	local w list=
	for w in $SAME_TIME; do
		list=${list:+$list,}$w
	done
	[ -n "$list" ] || return 0
	set -- --workloads "$list" --reps "$SAME_REPS" \
		--duration "$SAME_DURATION" --warmup "$WARMUP"
	if [ -n "${SAME_RATE:-}" ]; then
		set -- "$@" --rate "$SAME_RATE"
	fi
	echo
	echo "Same load, same moment (bench/same_time.py):"
	echo
	if [ -z "$PEERS" ] && [ -z "$uvloop_python" ]; then
		echo "No peer to serve beside echod (PEERS, uvloop): not measured."
		return 0
	fi
	ECHOD=$ECHOD ECHOBENCH=$ECHOBENCH PEERS=$PEERS \
		UVLOOP_PYTHON=${uvloop_python:-/nonexistent} \
		SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU \
		"$PYTHON" "$here/same_time.py" "$@"
}

# Instructions are what the machine's noise does not move: the figure a
# regression gate can hold (make bench-instructions, INSTR_GATE).
instructions() {
	[ "$INSTRUCTIONS" != 0 ] || return 0
	echo
	echo "User-space instructions per echo under callgrind (bench/instructions.py):"
	echo
	if ! command -v "${VALGRIND:-valgrind}" >/dev/null; then
		echo "No valgrind here: not measured."
		return 0
	fi
	ECHOD=$ECHOD ECHOBENCH=$ECHOBENCH PEERS=$PEERS \
		"$PYTHON" "$here/instructions.py"
}

same_moment
instructions
