#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""spdx.py: the licence header of every source, script, unit, manifest and
makefile (tools/spdx-check, tools/spdx-add).

  spdx.py check [FILE]...   list the files lacking the line; exit 1 if any
  spdx.py add [FILE]...     give each file lacking it the line, in the
                            comment form of its type (idempotent)

Without FILE: every file git tracks (every file under the tree outside a
git checkout, as in an unpacked `make dist` tarball). The line must be in
a file's first HEAD_LINES lines. Exempt, with the reason:
  LICENSE, *.md, docs/  the licence text itself, and prose (not code)
  VERSION               one line read by the build; a comment would be read
  fuzz/corpus/, *.json  data: seeds and documents without a comment syntax
  debian/changelog, debian/copyright, debian/source/format
                        formats without comments (copyright states the licence)
  .gitignore            a list of patterns, nothing to license
A file of no known type fails the check until it is given a type here or
exempted, so that a new kind of file gets a decision.
"""

import os
import re
import subprocess
import sys

ID = "BSD-2-Clause"
TAG = "SPDX-License-Identifier:"
LINE = TAG + " " + ID
HEAD_LINES = 5

EXEMPT_NAMES = {"LICENSE", "VERSION", ".gitignore"}
EXEMPT_PATHS = {"debian/changelog", "debian/copyright", "debian/source/format"}
EXEMPT_DIRS = ("fuzz/corpus/", "docs/")
EXEMPT_SUFFIXES = (".md", ".json")

# Comment prefix by file name suffix; files with a shebang are "#" unless
# listed here otherwise.
BY_SUFFIX = {
    ".c": "//", ".h": "//", ".js": "//",
    ".py": "#", ".sh": "#", ".t": "#", ".pl": "#", ".mk": "#",
    ".service": "#", ".socket": "#", ".yaml": "#", ".yml": "#",
    ".1": '.\\"', ".8": '.\\"',
    ".lintian-overrides": "#", ".install": "#", ".manpages": "#",
    ".docs": "#", ".dirs": "#", ".links": "#", ".conf": "#",
}
BY_NAME = {
    "Makefile": "#", "Containerfile": "#", "Dockerfile": "#",
    ".clang-format": "#", "control": "#", "rules": "#",
}
CODING = re.compile(r"^[ \t\f]*#.*?coding[:=]")


def tracked(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                             capture_output=True).stdout
        return sorted(p for p in out.decode().split("\0") if p)
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if x != ".git" and not x.startswith("build")]
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return sorted(files)


def exempt(path):
    name = os.path.basename(path)
    return (name in EXEMPT_NAMES or path in EXEMPT_PATHS
            or path.startswith(EXEMPT_DIRS) or name.endswith(EXEMPT_SUFFIXES))


def prefix(path, first):
    """The comment prefix for path (first: its first line), or None."""
    name = os.path.basename(path)
    if name in BY_NAME:
        return BY_NAME[name]
    for suffix, p in BY_SUFFIX.items():
        if name.endswith(suffix):
            return p
    if first.startswith("#!"):
        return "#"
    return None


def head(text):
    return text.split("\n", HEAD_LINES)[:HEAD_LINES]


def has_line(text):
    return any(LINE in line for line in head(text))


def other_id(text):
    for line in head(text):
        if TAG in line and LINE not in line:
            return line.strip()
    return None


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8", newline="") as f:
        return f.read()


def with_line(path, text):
    """text with the SPDX line added in the comment form of path's type:
    first, or after a shebang (and an encoding line after it)."""
    lines = text.split("\n")
    p = prefix(path, lines[0])
    at = 0
    if lines[0].startswith("#!"):
        at = 1
        if len(lines) > 1 and CODING.match(lines[1]):
            at = 2
    elif p == "#" and CODING.match(lines[0]):
        at = 1
    lines.insert(at, p + " " + LINE)
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("check", "add"):
        print("usage: spdx.py check|add [FILE]...", file=sys.stderr)
        return 2
    mode = argv[1]
    root = os.getcwd()
    paths = argv[2:] or tracked(root)
    bad = 0
    for path in paths:
        path = os.path.normpath(path)
        full = os.path.join(root, path)
        if exempt(path) or os.path.islink(full) or not os.path.isfile(full):
            continue
        try:
            text = read(root, path)
        except UnicodeDecodeError:
            print("%s: not UTF-8 text; exempt it or give it a line" % path)
            bad += 1
            continue
        if has_line(text):
            continue
        other = other_id(text)
        if other:
            print("%s: another licence: %s" % (path, other))
            bad += 1
            continue
        if prefix(path, text.split("\n")[0]) is None:
            print("%s: no SPDX line, and a type spdx.py does not know" % path)
            bad += 1
            continue
        if mode == "check":
            print("%s: no '%s' in its first %d lines" % (path, LINE, HEAD_LINES))
            bad += 1
            continue
        with open(full, "w", encoding="utf-8", newline="") as f:
            f.write(with_line(path, text))
        print("  SPDX     %s" % path)
    if mode == "check":
        if bad:
            print("spdx-check: %d file(s) without the licence line; "
                  "tools/spdx-add adds it" % bad)
            return 1
        print("  SPDX ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
