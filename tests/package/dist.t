#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# dist.t: make dist gives the same bytes from a copy of the tree with other
# mtimes, umask and time zone, holds the tracked files and nothing built,
# every entry owned by 0 and stamped SOURCE_DATE_EPOCH.
. "$(dirname "$0")/lib.sh"
need git tar gzip
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
v=$(cat VERSION)
tar=build/echod-$v.tar.gz
sde=$(git log -1 --format=%ct)
SOURCE_DATE_EPOCH=$sde make -s dist >/dev/null; ok $? "make dist"
cp "$tar" "$tmp/first.tar.gz"

# The copy: the same files (as they are now, committed or not), fresh mtimes.
mkdir "$tmp/copy"
git ls-files -z | tar --null -T - -cf - | (cd "$tmp/copy" && umask 002 && tar -xf - -m)
(cd "$tmp/copy" && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm t) >/dev/null
sleep 1
(cd "$tmp/copy" && umask 002 && TZ=Asia/Tokyo SOURCE_DATE_EPOCH=$sde make -s dist >/dev/null)
cmp -s "$tmp/first.tar.gz" "$tmp/copy/$tar"
ok $? "a second make dist, from a copy, gives the same bytes" \
	"$(sha256sum "$tmp/first.tar.gz" "$tmp/copy/$tar")"

tar -tzf "$tar" | sed "s,^echod-$v/,," >"$tmp/list"
git ls-files | LC_ALL=C sort >"$tmp/tracked"
LC_ALL=C sort "$tmp/list" | cmp -s - "$tmp/tracked"
ok $? "it holds exactly the tracked files, under echod-$v/" "$(LC_ALL=C sort "$tmp/list" | diff - "$tmp/tracked" | head)"
built=$(grep -E '^build|\.o$|\.d$|__pycache__|\.git/' "$tmp/list")
[ -z "$built" ]; ok $? "no build output" "$built"
LC_ALL=C sort -c "$tmp/list" 2>/dev/null; ok $? "entries sorted by name"
odd=$(tar --full-time -tvzf "$tar" | awk -v d="$(TZ=UTC date -d @"$sde" '+%Y-%m-%d %H:%M:%S')" \
	'$2 != "0/0" || $4 " " $5 != d' | head -n 3)
[ -z "$odd" ]; ok $? "owner 0/0, every mtime SOURCE_DATE_EPOCH" "$odd"
finish
