# SPDX-License-Identifier: BSD-2-Clause
# lib.sh: TAP helpers for tests/package/*.t (sourced). A missing tool skips
# a test, or fails it under CI=true, as tests/echotest.py does.
cd "$(dirname "$0")/../.." || exit 1
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else
	echo "not ok $n - $2"; failed=$((failed + 1)); shift 2
	for d in "$@"; do printf '%s\n' "$d" | sed 's/^/# /' >&2; done; fi; }
finish() { echo "1..$n"; [ $failed = 0 ]; exit $?; }
need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && continue
		if [ "${CI:-}" = true ]; then echo "1..1"; echo "not ok 1 - $c missing"; exit 1; fi
		echo "1..0 # SKIP $c not installed"; exit 0
	done
}
need_root() {
	[ "$(id -u)" = 0 ] && return
	if [ "${CI:-}" = true ]; then echo "1..1"; echo "not ok 1 - needs root"; exit 1; fi
	echo "1..0 # SKIP needs root"; exit 0
}
