#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# spdx.t: tools/spdx-add on a copy of the tree (no .git: the file walk) gives
# every file its line in a form its tools accept, shebangs first, and a
# second run changes nothing; tools/spdx-check then passes, and fails on a
# file without the line or of an unknown type.
. "$(dirname "$0")/lib.sh"
need git python3 cc clang-format groff
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -z | tar --null -T - -cf - | (cd "$tmp" && tar -xf -)
before=$(tools/spdx-check | grep -c ': no ')
echo "# this tree: $before file(s) without the line (tools/spdx-add adds them)"
cd "$tmp" || exit 1
grep -l '^#!' -r . >"$tmp.shebang" 2>/dev/null
tools/spdx-add >/dev/null; ok $? "spdx-add"
sums=$(find . -type f ! -name '*.pyc' -exec sha256sum {} + | LC_ALL=C sort)
out=$(tools/spdx-add); [ -z "$out" ]; ok $? "a second spdx-add changes nothing" "$out"
[ "$sums" = "$(find . -type f ! -name '*.pyc' -exec sha256sum {} + | LC_ALL=C sort)" ]
ok $? "... not a byte"
out=$(tools/spdx-check); ok $? "spdx-check passes after it" "$out"
bad=$(python3 - "$tmp.shebang" <<'PY'
import sys
for f in open(sys.argv[1]).read().split():
    lines = open(f, errors="replace").read().split("\n")
    if not lines[0].startswith("#!") or "SPDX-License-Identifier: BSD-2-Clause" not in lines[1]:
        print(f)
PY
)
rm -f "$tmp.shebang"
[ -z "$bad" ]; ok $? "scripts keep their shebang first, the line second" "$bad"
out=$(grep -l '^#!.*python' -r . | python3 -c '
import ast, sys
for f in sys.stdin.read().split():
    try:
        ast.parse(open(f).read(), f)
    except SyntaxError as e:
        print(e)' 2>&1)
[ -z "$out" ]; ok $? "Python scripts still parse" "$out"
out=$(for f in $(grep -l '^#!/bin/\(ba\)\?sh' -r . ); do bash -n "$f" || echo "$f"; done 2>&1)
[ -z "$out" ]; ok $? "shell scripts still parse" "$out"
out=$(ls src/*.c echobench/*.c tests/*.c examples/*.c fuzz/*.c bench/*.c mk/*.c | xargs -P 2 -n 8 \
	cc -std=gnu11 -D_GNU_SOURCE -DHAVE_LIBURING=1 -DECHOD_VERSION='"0"' -I. -fsyntax-only 2>&1)
[ -z "$out" ]; ok $? "C files still compile" "$out"
out=$(make -s format-check manlint 2>&1); ok $? "clang-format and groff accept them" "$out"
head -n 1 src/echod.c | grep -qx '// SPDX-License-Identifier: BSD-2-Clause'; ok $? "C: // line first"
head -n 1 man/echod.1 | grep -qx '.\\" SPDX-License-Identifier: BSD-2-Clause'; ok $? "man: .\\\" line first"
printf '#!/bin/sh\necho hi\n' >new.sh
printf 'data\n' >new.xyz
out=$(tools/spdx-check); st=$?
[ $st = 1 ] && echo "$out" | grep -q '^new.sh: no ' && echo "$out" | grep -q '^new.xyz: .*does not know'
ok $? "spdx-check fails on a script without the line and on an unknown type" "$st: $out"
finish
