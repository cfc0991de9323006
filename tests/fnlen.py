#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""fnlen.py - report C functions longer than a limit (60 lines by default).

usage: fnlen.py [--max N] FILE...

A function is counted from the line holding its opening `{` at column 0
to the line holding its closing `}` at column 0, both included; this is
how kernel-style code (and clang-format's Linux braces) lays functions
out. Its name is the last identifier before the `(` of the declarator
above that brace. Each function over the limit prints

    file:line: name: N lines

(line being that of the opening brace), and the exit status is 1 if any
did, 0 if none, 2 on a usage error.

A function may stay longer when it is a flat dispatch: its body one
`switch` whose arms are each `case X:` (or `default:`) followed by
statements and a `break;` or `return`, with no nested block. It must say
so with the comment

    /* fnlen: flat dispatch */

on the line just before the function's first line. The comment is checked:
a function carrying it whose body is not such a switch is reported too,
with "(not a flat dispatch)".
"""

import re
import sys

ALLOW = "/* fnlen: flat dispatch */"
IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def strip_code(text):
    """Blank out comments and string/char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_name(code_lines, brace):
    """The name declared above the `{` on line index brace, or None."""
    head = " ".join(code_lines[first_line(code_lines, brace):brace])
    names = [x for x in IDENT_BEFORE_PAREN.findall(head)
             if x not in ("__attribute__", "__attribute", "sizeof")]
    return names[0] if names else None


def first_line(code_lines, brace):
    """Index of the first line of the declarator ending above brace."""
    k = brace
    while k > 0:
        prev = code_lines[k - 1].strip()
        if not prev or prev.endswith((";", "}")) or prev.startswith("#"):
            break
        k -= 1
    return k


def is_flat_dispatch(body):
    """True when body (the lines between the braces) is one flat switch."""
    text = "\n".join(body).strip()
    m = re.match(r"switch\s*\((.*?)\)\s*\{(.*)\}\s*$", text, re.S)
    if not m:
        return False
    inner = m.group(2)
    if "{" in inner or "}" in inner:
        return False
    arms = re.split(r"(?:^|\n)\s*(?:case\s[^:]*|default)\s*:", inner)
    if arms[0].strip():
        return False
    for arm in arms[1:]:
        stmts = arm.strip()
        if not stmts:
            continue  # a label falling into the next one
        if not re.search(r"(\bbreak|\breturn\b[^;]*|\bexit\s*\(.*?\)|"
                         r"\bgoto\s+\w+);\s*$", stmts, re.S):
            return False
    return True


def check_file(path, limit):
    """Yield (line, name, length, note) for each function over limit."""
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read().split("\n")
    code = strip_code("\n".join(raw)).split("\n")
    i = 0
    while i < len(code):
        if not code[i].startswith("{"):
            i += 1
            continue
        name = function_name(code, i)
        end = i + 1
        while end < len(code) and not code[end].startswith("}"):
            end += 1
        if name is None or end >= len(code):
            i = end + 1
            continue
        length = end - i + 1
        start = first_line(code, i)
        allowed = start > 0 and raw[start - 1].strip() == ALLOW
        if length > limit:
            if not allowed:
                yield i + 1, name, length, ""
            elif not is_flat_dispatch(code[i + 1:end]):
                yield i + 1, name, length, " (not a flat dispatch)"
        i = end + 1


def main(argv):
    limit = 60
    args = argv[1:]
    if args[:1] == ["--max"] and len(args) >= 2 and args[1].isdigit():
        limit = int(args[1])
        args = args[2:]
    if not args or any(a.startswith("-") for a in args):
        print("usage: fnlen.py [--max N] FILE...", file=sys.stderr)
        return 2
    bad = 0
    for path in args:
        try:
            for line, name, n, note in check_file(path, limit):
                print("%s:%d: %s: %d lines%s" % (path, line, name, n, note))
                bad += 1
        except OSError as e:
            print("fnlen.py: %s: %s" % (path, e.strerror), file=sys.stderr)
            return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
