#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# bench/multihost.sh - one echobench result from several load hosts.
#
# usage: bench/multihost.sh TARGET HOST... [-- ECHOBENCH-ARGS...]
#
# Runs echobench on every HOST over ssh, all told to begin their measured
# window at the same wall-clock second (--start-at, LEAD seconds from now:
# time to log in and connect), each writing its JSON document (which holds
# its latency histogram) here; then `echobench merge` adds the histograms
# into one report. The hosts' clocks must agree to well under a second
# (NTP or chrony does that); each run's window start is in its JSON.
#
# Environment:
#   RSH=ssh              how to run a command on a host: $RSH HOST COMMAND
#   REMOTE=echobench     echobench's path on the hosts
#   ECHOBENCH            the local echobench for the merge (default: build/)
#   LEAD=10              seconds from now to the window's start
#   OUT=multihost.out    where HOST.json and merged.json go
set -eu

here=$(cd "$(dirname "$0")" && pwd)
RSH=${RSH:-ssh}
REMOTE=${REMOTE:-echobench}
ECHOBENCH=${ECHOBENCH:-$here/../build/echobench}
LEAD=${LEAD:-10}
OUT=${OUT:-multihost.out}

[ $# -ge 2 ] || { echo "usage: $0 TARGET HOST... [-- ECHOBENCH-ARGS...]" >&2; exit 2; }
target=$1
shift
hosts=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	hosts="$hosts $1"
	shift
done
[ $# -gt 0 ] && shift
args="$*"
mkdir -p "$OUT"
start=$(($(date +%s) + LEAD))

pids=
for h in $hosts; do
	# shellcheck disable=SC2086
	$RSH "$h" "$REMOTE -q --json --start-at $start $args $target" \
		>"$OUT/$h.json" 2>"$OUT/$h.log" &
	pids="$pids $!"
done
status=0
for p in $pids; do
	wait "$p" || status=1
done
for h in $hosts; do
	[ -s "$OUT/$h.json" ] || { echo "$0: $h: no result, see $OUT/$h.log" >&2; exit 1; }
done
# shellcheck disable=SC2046
"$ECHOBENCH" merge --json $(for h in $hosts; do printf '%s ' "$OUT/$h.json"; done) \
	>"$OUT/merged.json" || status=1
# shellcheck disable=SC2046
"$ECHOBENCH" merge $(for h in $hosts; do printf '%s ' "$OUT/$h.json"; done) || status=1
exit $status
