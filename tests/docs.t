#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""docs.t - the documents show what echod does.

The transcripts and example commands of README.md, man/echod.1 and
docs/walkthrough.md are read from the documents themselves, run against the
build on loopback with ports chosen at run time, and compared line by line
with what echod prints. Normalised: time stamps (the documents show one
fixed stamp, or none), the port (a document's port is replaced by the one
the kernel chose) and the peer's port; a `[wN] ... on fd F` accept line may
name any worker, as the README says, provided F is that worker's listener.
Descriptor numbers are compared as written: they are deterministic.

Where a transcript depends on the machine:
  - workers default to one per CPU: a block showing K listening lines is run
    with -t K added;
  - the README's blocks show the io_uring backend: without it they skip;
  - run as root, echod adds one warning line ("running as root: ..."),
    which the documents' runs as a user do not show: it is left out;
  - the exit summaries are sums over a session the document does not give:
    their words are compared, each number standing for any number.

Skipped, with the reason: the inetd.conf line (no inetd here), examples
that need root, and commands that show no output to compare.

Also: every `# TYPE` of a live /metrics scrape is listed in the man page's
Metrics section with that type and those labels, and the man page lists no
series the scrape lacks; /healthz and /readyz answer as documented. Every
fault type echod knows (the list its error for an unknown type gives) has
an entry in the man page's FAULTS section, which lists no other, and a
`--fault TYPE` example in README's "Testing your client".
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401
import echotest  # noqa: E402

ROOT_WARNING = re.compile(r"^echod: running as root: ")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


README = read("README.md")
MAN = read("man/echod.1")
WALK = read("docs/walkthrough.md")


def md_blocks(text):
    """The indented (4 spaces) and fenced code blocks of a markdown text,
    each as (its lines, the text before it back to the previous block)."""
    blocks, cur, prose, fenced = [], None, [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            if fenced:
                blocks.append((cur, "\n".join(prose)))
                cur, prose, fenced = None, [], False
            else:
                cur, fenced = [], True
            continue
        if fenced:
            cur.append(line)
        elif line.startswith("    ") and (cur is not None or not line.strip() == ""):
            if cur is None:
                cur = []
            cur.append(line[4:])
        else:
            if cur is not None and line.strip() == "" and cur and not cur[-1] == "":
                cur.append("")
                continue
            if cur is not None:
                while cur and cur[-1] == "":
                    cur.pop()
                blocks.append((cur, "\n".join(prose)))
                cur, prose = None, []
            prose.append(line)
    if cur:
        blocks.append((cur, "\n".join(prose)))
    return blocks


def man_blocks(text):
    """The literal blocks (.Bd -literal ... .Ed) of the man page."""
    return [b.split("\n") for b in re.findall(r"^\.Bd -literal[^\n]*\n(.*?)\n\.Ed$", text, re.M | re.S)]


def block(blocks, first, what):
    """The first block whose first line starts with first; a missing block fails."""
    for b in blocks:
        lines = b[0] if isinstance(b, tuple) else b
        if lines and lines[0].startswith(first):
            return b
    ok(False, "%s: the document has a block starting %r" % (what, first))
    return None


def flat(text):
    """Prose with its line breaks as spaces, for phrases that wrap."""
    return re.sub(r"\s+", " ", text)


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def shown(lines, port):
    """A document's echod lines as the test compares them: no time stamp,
    the document's port as the one of this run."""
    return [STAMP.sub("", l).replace(":60000", ":%d" % port).replace(":7 ", ":%d " % port) for l in lines]


def startup(srv):
    """echod's lines up to `echod: ready`, without the root warning."""
    out = []
    for l in srv.lines:
        if not ROOT_WARNING.match(l):
            out.append(l)
        if l == "echod: ready":
            break
    return out


def uring_skip(name):
    """True (after a skip) when the io_uring backend the README shows cannot run."""
    for be, available, why in backends():
        if be == "io_uring" and not available:
            skip(name, "the document shows the io_uring backend; unavailable here: %s" % why)
            return True
    return False


def telnet_session(port, typed, family=socket.AF_INET6):
    """What telnet does in the README: each typed line sent with CRLF, its
    echo read; returns (echoes, closed by echod after the last)."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    s = connect((host, port), family=family)
    got = []
    for t in typed:
        s.sendall(t.encode() + b"\r\n")
        got.append(recv_exact(s, len(t) + 2).decode().rstrip("\r\n"))
    eof = sees_eof(s)
    s.close()
    return got, eof


# ------------------------------------------------------------ README

RB = md_blocks(README)


def lecture():
    """README: `$ make run ARGS=...` and its start-up lines; the telnet
    transcript against it; the -v lines of the same session."""
    name = "README: make run ARGS='-n 3 --framing line' start-up lines"
    b = block(RB, "$ make run ARGS=", name)
    if b is None or uring_skip(name):
        return
    lines = b[0]
    args = shlex.split(re.match(r"\$ make run ARGS='([^']*)'", lines[0]).group(1))
    want = lines[1:]
    k = sum(1 for l in want if "listening on" in l)
    srv = Echod(*args, "-t", k, port0=True)
    eq(startup(srv), shown(want, srv.port), name + " (-t %d: %d CPUs shown)" % (k, k))

    tb = block(RB, "$ telnet localhost 60000", "README: telnet transcript")
    if tb is None:
        return
    t = tb[0]
    typed = [t[i] for i in range(len(t) - 1) if t[i] == t[i + 1] and (i == 0 or t[i - 1] != t[i])]
    if not have_ipv6():
        skip("README: telnet transcript", "no IPv6 loopback here: the transcript shows telnet trying ::1")
        srv.stop()
        return
    got, eof = telnet_session(srv.port, typed)
    eq(got, typed, "README: telnet transcript: each of %s echoed" % typed)
    ok(eof and t[-1] == "Connection closed by foreign host.",
       "README: telnet transcript: echod closes after the third, as shown", t[-1])
    srv.stop()

    # The -v lines, and the ARGS named in the paragraph before them.
    vb = [b for b in RB if b[0] and b[0][-1].startswith("echod[w")]
    if not vb:
        ok(False, "README: the -v accept/close block is there")
        return
    vlines, prose = vb[0]
    args = shlex.split(re.findall(r"ARGS='([^']*)'", prose)[-1])
    m = re.match(r"echod: (\d+) workers?,", vlines[0])
    k = int(m.group(1)) if m else 1
    srv = Echod(*args, "-t", k, port0=True)
    got, eof = telnet_session(srv.port, typed)
    ok(got == typed and eof, "README: -v session echoed and closed", got)
    srv.wait_log(r"\] close fd ")
    listeners = srv.fds
    real = [l for l in srv.lines if re.match(r"echod(\[w\d+\])?: (\d+ workers?,|accept|close)", l)]

    def norm(lines, fds):
        out = []
        for l in lines:
            l = re.sub(r"(peer \[::1\]:)\d+", r"\1PORT", l)
            if k > 1:  # the README: with several workers the number varies
                l = re.sub(r"(accept|close) fd \d+ ", r"\1 fd N ", l)
            m = re.match(r"echod\[w(\d+)\]: (.*?)( on fd (\d+))?$", l)
            if m:
                w = int(m.group(1))
                if m.group(3) and (w >= len(fds) or fds[w] != int(m.group(4))):
                    l += "   <- worker %d's listener is not fd %s" % (w, m.group(4))
                else:
                    l = "echod[wN]: %s%s" % (m.group(2), " on its listener's fd" if m.group(3) else "")
            out.append(l)
        return out
    doc_fds = [int(x) for x in re.findall(r"\(fd (\d+), dual-stack\)", "\n".join(block(RB, "$ make run", "")[0]))]
    eq(norm(real, listeners), norm(vlines, doc_fds), "README: -v lines (%s), worker and peer port aside"
       % " ".join(args))
    srv.stop()


def families():
    """README: the three listening-line forms, -t 1 with -6, -4 and neither."""
    text = flat(README[README.index("**Families.**"):])
    m = re.search(r"`(listening on tcp \[::\]:7 \(fd (\d+), dual-stack\))`, `\(fd (\d+), IPv6 only\)`, "
                  r"`\(fd (\d+), IPv4\)`", text)
    if not ok(m, "README: Families shows the three listening lines"):
        return
    for flag, fd, serves in ((None, m.group(2), "dual-stack"), ("-6", m.group(3), "IPv6 only"),
                             ("-4", m.group(4), "IPv4")):
        srv = Echod("-t", "1", *([flag] if flag else []))
        line = [l for l in srv.lines if "listening on" in l][0]
        eq(re.search(r"\(fd \d+, [^)]*\)", line).group(0), "(fd %s, %s)" % (fd, serves),
           "README: Families: %s line" % (flag or "default"))
        srv.stop()


def json_logs():
    """README: the --log-format json start-up lines, and the table rows'
    "table" values named in README and man page."""
    name = "README: --log-format json start-up lines"
    para = flat(README[README.index("**Logs.**"):README.index("**Privileges.**")])
    cmd = re.search(r"`(echod [^`]*--log-format json)` starts with", para)
    b = [x[0] for x in RB if x[0] and x[0][0].startswith('{"time"')]
    if not ok(cmd and b, name + ": command and block found"):
        return
    if uring_skip(name):
        return
    srv = Echod(*shlex.split(cmd.group(1))[1:])
    raw = [l for l in srv.raw if "running as root" not in l]
    raw = raw[:len(b[0])]

    def norm(lines, port):
        return [re.sub(r'"time":"[^"]*"', '"time":"T"', l).replace(":60000", ":%d" % port) for l in lines]
    eq(norm(raw, 0), norm(b[0], srv.port), name + " (time aside)")
    srv.stop()

    srv = Echod("-t", "1", "-u", "--log-format", "json")
    c = connect(srv.addr())
    c.sendall(b"row")
    recv_exact(c, 3)
    start = len(srv.raw)
    srv.proc.send_signal(signal.SIGUSR1)
    srv.wait_log(r"table end", 5, start)
    tables = []
    for l in srv.raw[start:]:
        try:
            o = json.loads(l)
        except ValueError:
            ok(False, "JSON mode: a table line is JSON", l)
            continue
        if "table" in o and o["table"] not in tables:
            tables.append(o["table"])
    c.close()
    srv.stop()
    ok(len(tables) >= 6, "JSON mode: SIGUSR1 table rows seen: %s" % tables)
    eq([t for t in tables if '"%s"' % t not in para], [], "README: Logs names every JSON table row kind")
    item = MAN[MAN.index(".It Fl -log-format"):MAN.index(".It Fl -user")]
    eq([t for t in tables if ".Ql %s" % t not in item], [], "man: --log-format names every JSON table row kind")


def exits():
    """README and man: a usage error, a start that fails, bind errors."""
    for doc, blocks in (("README", [b[0] for b in RB]), ("man", man_blocks(MAN))):
        b = block(blocks, "$ echod --port 70000", doc + ": usage error")
        if b:
            p = subprocess.run(shlex.split(b[0][2:]), executable=ECHOD, capture_output=True, text=True, timeout=10)
            eq((p.returncode, unstamp(p.stderr).splitlines()), (2, shown(b[1:], 0)),
               "%s: %s: exit 2, the lines shown" % (doc, b[0]))
        b = block(blocks, "$ echod --user nosuchuser", doc + ": failed start")
        if b and not uring_skip(doc + ": failed start"):
            p = subprocess.run(shlex.split(b[0][2:]) + ["-p", "0"], executable=ECHOD, capture_output=True,
                               text=True, timeout=10)
            eq((p.returncode, unstamp(p.stderr).splitlines()), (1, shown(b[1:], 0)),
               "%s: %s (-p 0): exit 1, the lines shown, no listening line" % (doc, b[0]))
    text = flat(README)
    for m in re.finditer(r"`(echod: bind (udp )?\[::\]:60000: Address already in use)`", text):
        udp = bool(m.group(2))
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        s.bind(("::", 0))
        if not udp:
            s.listen()
        port = s.getsockname()[1]
        # UDP alone for the UDP line: the port's TCP twin may be anyone's.
        p = subprocess.run([ECHOD, "-p", str(port)] + (["-u", "--no-tcp"] if udp else []), capture_output=True,
                           text=True, timeout=10)
        s.close()
        lines = unstamp(p.stderr).splitlines()
        eq((p.returncode, lines[-1:], [l for l in lines if "listening on" in l]),
           (1, shown([m.group(1)], port), []), "README: %s (port held): exit 1, that line" % m.group(1))


def summaries():
    """README and man: the exit lines, word for word, numbers aside."""
    want = [l for b in RB for l in b[0] if re.match(r"echod: (stopped|udp): ", l)]
    want += [l for b in man_blocks(MAN) for l in b if l.startswith("echod: stopped: ")]
    srv = Echod("-u", "-t", "1")
    with connect(srv.addr()) as s:
        s.sendall(b"hello")
        recv_exact(s, 5)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"hi", srv.addr())
    u.settimeout(5)
    u.recv(10)
    u.close()
    srv.stop()
    real = {l.split(":")[1]: l for l in srv.lines if re.match(r"echod: (stopped|udp): ", l)}
    ok(len(want) == 3, "the exit lines are shown (README stopped and udp, man stopped)", want)
    for l in want:
        eq(re.sub(r"\d+", "N", real.get(l.split(":")[1], "")), re.sub(r"\d+", "N", l),
           "exit line as shown: %s" % l[:40])


def socat():
    """README and man: the socat recipe works; without nofork it fails as the README says."""
    path = need_program("socat")
    recipes = [("README", b[0][0]) for b in RB if b[0] and b[0][0].startswith("socat TCP-LISTEN:")]
    recipes += [("man", b[0][2:]) for b in man_blocks(MAN) if b[0].startswith("$ socat TCP-LISTEN:")]
    if not ok(len(recipes) == 2, "README and man show a socat recipe", recipes):
        return
    if not path:
        skip("socat recipes", "socat not installed")
        return
    nofork_err = re.search(r"exits 1 at once with `([^`]*)`", flat(README))
    for doc, recipe in recipes:
        argv = shlex.split(recipe)
        for variant in ("as shown", "without nofork"):
            port = free_port()
            a = [argv[1].replace(":60000,", ":%d,bind=127.0.0.1," % port),
                 argv[2].replace("'", "").replace("echod ", ECHOD + " ", 1)]
            if variant != "as shown":
                a[1] = a[1].replace(",nofork", "")
            p = spawn([path] + a, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_until(lambda: subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                                              text=True).stdout.strip(), timeout=5)
            try:
                with connect(("127.0.0.1", port)) as s:
                    s.sendall(b"via socat\n")
                    got = recv_exact(s, 10, timeout=3)
            except OSError:
                got = b""
            time.sleep(0.2)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            err = unstamp(p.stderr.read().decode())
            if variant == "as shown":
                eq(got, b"via socat\n", "%s: %s: echoes" % (doc, recipe))
            else:
                ok(got == b"" and nofork_err and nofork_err.group(1) in err,
                   "%s: without nofork: no echo, and the README's line" % doc, got, err[-400:])


def units():
    """README: systemd-analyze security's verdicts on the installed units."""
    want = [l for b in RB for l in b[0] if l.startswith("→ Overall exposure level")]
    analyze = need_program("systemd-analyze")
    if not ok(want, "README shows systemd-analyze security's lines"):
        return
    if not analyze:
        skip("README: systemd-analyze security lines", "systemd-analyze not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run(["make", "-s", "-C", ROOT, "install-units", "PREFIX=" + tmp], capture_output=True,
                           text=True, timeout=120)
        got = []
        for svc in ("echod.service", "echod@.service"):
            q = subprocess.run([analyze, "security", "--offline=true", os.path.join(tmp, "lib/systemd/system", svc)],
                               capture_output=True, text=True, timeout=60)
            got += [re.sub(r"\s*\S*$", "", l) if not l.endswith("OK") else l
                    for l in q.stdout.splitlines() if l.startswith("→ Overall")]
    ok(got == want, "README: systemd-analyze security --offline=true on the installed services", got, p.stderr)


def free_port():
    """A TCP port free a moment ago, for socat, which binds it itself."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -------------------------------------------------------------- man

def man_startup():
    name = "man: start-up block"
    b = block(man_blocks(MAN), "$ echod -t 1", name)
    if b is None or uring_skip(name):
        return
    srv = Echod(*shlex.split(b[0][2:])[1:])
    eq(startup(srv), shown(b[1:], srv.port), name + " ($ echod -t 1)")
    srv.stop()


def http(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


METRIC_ITEM = re.compile(r"^\.It Sy (echod_\w+) No (\w+)(?: Brq (.*))?$", re.M)


def metrics():
    """man: the metrics line, the Metrics list against a live scrape,
    /healthz and /readyz; README names every series."""
    m = re.search(r"^\.Ql (echod: metrics on http 127\.0\.0\.1:9100 \(fd \d+\)) \) ,$", MAN, re.M)
    srv = Echod("-t", "1", "-u", "--metrics", "127.0.0.1:0", "--grace", "3")
    line = [l for l in srv.lines if "metrics on http" in l]
    mport = int(re.search(r":(\d+) \(fd", line[0]).group(1)) if line else 0
    ok(m and line and line[0] == m.group(1).replace(":9100", ":%d" % mport),
       "man: --metrics line as shown (port aside)", m and m.group(1), line)
    base = "http://127.0.0.1:%d" % mport
    c = connect(srv.addr())
    c.sendall(b"grow")
    recv_exact(c, 4)
    status, body = http(base + "/metrics")
    eq(status, 200, "GET /metrics")
    live = {}
    for name, typ in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        labels = set()
        for lab in re.findall(r"^%s(?:_bucket|_sum|_count)?(?:\{([^}]*)\})? " % name, body, re.M):
            labels |= set(re.findall(r'(\w+)="', lab)) - {"le"}
        values = {}
        for k, v in re.findall(r'^%s\{[^}]*?\b(reason|verdict)="([^"]*)"' % name, body, re.M):
            values.setdefault(k, set()).add(v)
        live[name] = (typ, sorted(labels), values)
    doc = {}
    for name, typ, labels in METRIC_ITEM.findall(MAN):
        doc[name] = (typ, sorted(re.findall(r"\w+", labels.replace("Ar", ""))))
    eq(sorted(set(live) - set(doc)), [], "man: Metrics lists every series /metrics serves")
    eq(sorted(set(doc) - set(live)), [], "man: Metrics lists no series /metrics lacks")
    eq({n: doc[n] for n in live if n in doc}, {n: live[n][:2] for n in live if n in doc},
       "man: Metrics gives each series its type and labels")
    missing = []
    for name, (typ, labels, values) in live.items():
        start = MAN.find(".It Sy %s " % name)
        item = MAN[start:MAN.find("\n.It ", start + 1)]
        missing += ["%s %s" % (name, v) for vs in values.values() for v in vs if ".Cm %s" % v not in item]
    eq(missing, [], "man: Metrics names each reason and verdict /metrics shows")
    eq([n for n in live if "`%s" % n not in README], [], "README: Watching echod names every series")
    def grew():
        # The echo reached the client before its send's completion
        # reached echod: poll.
        b = http(base + "/metrics")[1]
        return {n: int(v) for n, v in re.findall(r"^(echod_(?:messages|received_bytes|sent_bytes)_total)\S* (\d+)$",
                                                 b, re.M)}
    ok(wait_until(lambda: len(grew()) == 3 and all(grew().values()), timeout=3),
       "messages and bytes counted while the connection is open", grew())
    for path, want in (("/healthz", "ok\n"), ("/readyz", "ok\n")):
        eq(http(base + path), (200, want), "GET %s: 200" % path)
        eq(http(base + path, "HEAD"), (200, ""), "HEAD %s: 200" % path)
    ex = block(man_blocks(MAN), "$ echod --metrics 127.0.0.1:9100 &", "man: metrics example")
    if ex:
        i = [j for j, l in enumerate(ex) if l.endswith("/readyz")]
        ok(i and http(base + "/readyz")[1].rstrip("\n") == ex[i[0] + 1], "man: example's /readyz answer as shown")
    srv.proc.send_signal(signal.SIGTERM)
    ok(wait_until(lambda: http(base + "/readyz")[0] == 503, timeout=2), "GET /readyz: 503 while draining")
    c.close()
    srv.stop()


def walkthrough():
    """docs/walkthrough.md: echod's start-up and first accept line."""
    name = "walkthrough: echod start-up"
    b = [x[0] for x in md_blocks(WALK) if x[0] and x[0][0].startswith("$ build/echod")]
    if not ok(b, name + ": block found") or uring_skip(name):
        return
    lines = b[0]
    argv = shlex.split(lines[0][2:].rstrip("& "))[1:]
    i = argv.index("-p")
    del argv[i:i + 2]
    port = int(re.search(r":(\d+) \(fd", lines[2]).group(1))
    want = [l.replace(":%d" % port, ":60000") for l in lines[1:] if l.startswith("echod")]
    srv = Echod(*argv)
    want = shown(want, srv.port)
    eq(startup(srv), want[:want.index("echod: ready") + 1], name + " (%s)" % " ".join(argv))
    c = connect(srv.addr())
    srv.wait_log(r"accept fd")
    acc = [l for l in srv.lines if "accept fd" in l][:1]
    first = [l for l in want if "accept fd" in l][:1]
    eq([re.sub(r"peer ([\d.]+):\d+", r"peer \1:P", l) for l in acc],
       [re.sub(r"peer ([\d.]+):\d+", r"peer \1:P", l) for l in first], "walkthrough: first accept line")
    c.close()
    srv.stop()


def fault_types():
    """man: FAULTS has an entry for each type echod knows, and none it does
    not; README: "Testing your client" runs each type with --fault."""
    p = subprocess.run([ECHOD, "--fault", "nosuchtype"], capture_output=True, text=True, timeout=10)
    m = re.search(r"nosuchtype: not a type \(([^)]*)\)", p.stderr)
    if not ok(p.returncode == 2 and m, "echod --fault nosuchtype: exit 2, the types listed", p.stderr):
        return
    known = m.group(1).split(", ")
    ok(len(known) >= 12, "echod knows the issue's 12 fault types or more", known)
    start = MAN.find("\n.Sh FAULTS\n")
    if not ok(start >= 0, "man: a FAULTS section"):
        return
    sect = MAN[start + 1:]
    sect = sect[:sect.find("\n.Sh ", 1) + 1 or len(sect)]
    types = sect[sect.find(".Ss Types\n"):]
    types = types[:types.find("\n.El\n")]
    listed = re.findall(r"^\.It Cm ([a-z-]+)$", types, re.M)
    eq([t for t in known if t not in listed], [], "man: FAULTS describes every fault type echod knows")
    eq([t for t in listed if t not in known], [], "man: FAULTS describes no fault type echod does not know")
    start = README.find("\n## Testing your client\n")
    if not ok(start >= 0, "README: a Testing your client section"):
        return
    text = README[start + 1:]
    text = text[:text.find("\n## ", 1) + 1 or len(text)]
    shown = set(re.findall(r"--fault ([a-z-]+)(?![a-z-])", text))
    eq([t for t in known if t not in shown], [], "README: Testing your client has a --fault example of every type")


def skips():
    skip("man: inetd.conf line", "no inetd on this machine; socat's recipe stands in for it")
    skip("README: inetd line", "no inetd on this machine; socat's recipe stands in for it")
    skip("man: echod -v -t 1 & ss -tapn", "the page shows no output to compare")
    skip("README: systemctl edit echod.socket drop-in", "needs a running systemd")
    if os.geteuid() != 0:
        skip("man: # echod -p 7 -u --user nobody ...", "needs root")
        return
    ex = [b for b in man_blocks(MAN) if b[0].startswith("# echod -p 7")]
    if ok(ex, "man: the root example is there"):
        argv = shlex.split(ex[0][0][2:])[1:]
        i = argv.index("-p")
        del argv[i:i + 2]
        srv = Echod(*argv)
        ok(srv.tcp and srv.udp and not any("running as root" in l for l in srv.lines),
           "man: %s (-p 0): serves TCP and UDP, as nobody" % ex[0][0], srv.log())
        srv.stop()


lecture()
families()
json_logs()
exits()
summaries()
socat()
units()
man_startup()
metrics()
walkthrough()
fault_types()
skips()
done_testing()
