# SPDX-License-Identifier: BSD-2-Clause
"""echotest: the TAP harness and helpers every Python test file uses.

A test file is one process (run by prove through tests/run-one, which kills it
after its time limit). It starts the real echod on --port 0, waits for its
last start-up line (`echod: ready`), reads the bound addresses from the
`listening on` lines before it, talks to it over loopback sockets, and
kills every process it started when it exits, however it exits.

Environment (set by `make check`):
  ECHOD, ECHOBENCH, EXAMPLES_DIR, TEST_HELPERS_DIR   what to run
  ECHOD_TEST_ADDR=host:port   run against a server you started yourself
  CI=true                     a missing client program fails instead of skipping
  ECHOD_REQUIRE_BACKENDS=a,b  these backends must run, not skip
"""

import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ECHOD = os.environ.get("ECHOD", os.path.join(ROOT, "build", "echod"))
ECHOBENCH = os.environ.get("ECHOBENCH", os.path.join(ROOT, "build", "echobench"))
EXAMPLES_DIR = os.environ.get("EXAMPLES_DIR", os.path.join(ROOT, "build", "examples"))
HELPERS_DIR = os.environ.get("TEST_HELPERS_DIR", os.path.join(ROOT, "build", "tests"))
IN_CI = os.environ.get("CI") == "true"
SANITIZED = bool(os.environ.get("ECHOD_SANITIZE"))

# ---------------------------------------------------------------- TAP


class _Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0
        self.planned = None
        self.lock = threading.Lock()


_tap = _Tap()


def plan(n):
    _tap.planned = n
    print("1..%d" % n, flush=True)


def diag(msg, out=None):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, file=out or sys.stdout, flush=True)


def ok(cond, name, *details):
    with _tap.lock:
        _tap.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", _tap.n, name), flush=True)
        if not cond:
            _tap.failed += 1
            # On stderr, which prove shows: a failure in CI explains itself.
            diag("%s: failed: %s" % (os.path.basename(sys.argv[0]), name), sys.stderr)
            for d in details:
                diag(d, sys.stderr)
    return bool(cond)


def eq(got, want, name):
    """ok() comparing two values; on failure prints both (shortened)."""
    def show(v):
        s = repr(v)
        return s if len(s) < 300 else s[:300] + "... (%d chars)" % len(s)
    return ok(got == want, name, "got:  " + show(got), "want: " + show(want))


def skip(name, reason):
    with _tap.lock:
        _tap.n += 1
        print("ok %d - %s # SKIP %s" % (_tap.n, name, reason), flush=True)


def bail_out(reason):
    print("Bail out! " + reason, flush=True)
    _cleanup()
    os._exit(255)


SANITIZER_RE = re.compile(r"Sanitizer|runtime error:|LeakSanitizer")


def _check_servers():
    """Stops every server still running and, in a sanitizer build, fails
    the file if any server reported an error or exited non-zero."""
    reports = []
    for srv in _servers:
        status = srv.stop()
        if SANITIZED and (SANITIZER_RE.search(srv.log()) or status not in (0, 1, 2)):
            reports.append("%s: exit %s\n%s" % (" ".join(srv.argv), status, srv.log()[-3000:]))
    if SANITIZED:
        ok(not reports, "no sanitizer report from %d echod runs (%s)" % (len(_servers), os.environ.get("ECHOD_SANITIZE")),
           *reports[:3])


def done_testing():
    _check_servers()
    if _tap.planned is None:
        print("1..%d" % _tap.n, flush=True)
    _cleanup()
    sys.stdout.flush()
    os._exit(1 if _tap.failed else 0)


def need_program(name):
    """Returns the path of a client program, or None after a skip reason.

    Under CI=true a missing program is a failure: CI must run every client.
    """
    path = shutil.which(name)
    if path:
        return path
    if IN_CI:
        ok(False, "client program %s is installed" % name)
    return None


# ------------------------------------------------------------ processes

_procs = []
_servers = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


def _on_signal(signum, frame):
    _cleanup()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def spawn(argv, **kw):
    """Starts a process in its own process group, killed whole at exit."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


def in_threads(calls, timeout):
    """Runs each (function, args) of calls in a thread of its own, all at
    once, and waits up to timeout seconds for each."""
    threads = [threading.Thread(target=f, args=a) for f, a in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def wait_until(pred, timeout=5.0, step=0.01, what=None):
    """Polls pred() until it is true or the deadline passes; returns its last value.

    Use it for every wait on a state (a descriptor count, a counter, an
    answer...) instead of a sleep that guesses how long the state takes.
    With what (the state, in words), a wait that gives up says so on stderr,
    beside the failure it leads to."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            if not v and what:
                diag("%s: gave up after %.1f s waiting for %s" % (os.path.basename(sys.argv[0]), timeout, what),
                     sys.stderr)
            return v
        time.sleep(step)


READY_RE = r"^echod: ready$"
# The time stamp echod puts first on every log line (not under the journal).
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def unstamp(text):
    """text (one line or many) without echod's leading time stamps."""
    return "\n".join(STAMP_RE.sub("", line) for line in text.split("\n"))

LISTEN_RE = re.compile(r"listening on (tcp|udp) (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+) \(fd (\d+), ([^)]*)\)")


def unjson(line):
    """A --log-format json line as the text line it stands for, so that
    tests wait for the same words whichever format echod writes."""
    if not line.startswith("{"):
        return line
    try:
        o = json.loads(line)
    except ValueError:
        return line
    return "echod%s: %s" % ("[w%d]" % o["worker"] if isinstance(o.get("worker"), int) and "table" not in o else "",
                            o.get("msg", ""))


class Echod:
    """A running echod, started on --port 0 with the given arguments.

    Unless args name --grace, it gets --grace 0, so that stopping it with
    clients still connected does not wait out SIGTERM's grace.

    stderr is read on a thread into self.lines, time stamps taken off (as
    written in self.raw), so that tests can check what echod logged; self.tcp and self.udp list (host, port) it listens on.
    """

    def __init__(self, *args, backend=None, port0=True, env=None, prefix=(), wait=True):
        argv = list(prefix) + [ECHOD]
        if port0:
            argv += ["--port", "0"]
        if backend:
            argv += ["--backend", backend]
        argv += [str(a) for a in args]
        if "--grace" not in argv:
            argv += ["--grace", "0"]
        self.argv = argv
        e = dict(os.environ)
        if env:
            e.update(env)
        _servers.append(self)
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=e)
        self.lines = []
        self.raw = []
        self.tcp = []
        self.udp = []
        self.fds = []
        self._cv = threading.Condition()
        self._eof = False
        threading.Thread(target=self._reader, daemon=True).start()
        if wait:
            self.wait_listening()

    def _reader(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.raw.append(line)
                line = unjson(unstamp(line))
                self.lines.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    host = m.group(2).strip("[]")
                    (self.tcp if m.group(1) == "tcp" else self.udp).append((host, int(m.group(3))))
                    self.fds.append(int(m.group(4)))
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Waits for a stderr line matching pattern; returns the match or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return None
                self._cv.wait(left)

    def wait_listening(self, timeout=10.0):
        """Waits for echod's last start-up line, printed once every socket
        is open and every worker has set up its loop: self.tcp and self.udp are then
        complete, and every listener accepts."""
        if not self.wait_log(READY_RE, timeout):
            raise RuntimeError("echod did not start: %r (%s)" % (self.log(), " ".join(self.argv)))

    @property
    def port(self):
        return self.tcp[0][1] if self.tcp else self.udp[0][1]

    def addr(self, family=socket.AF_INET):
        return ("::1" if family == socket.AF_INET6 else "127.0.0.1", self.port)

    def log(self):
        with self._cv:
            return "\n".join(self.lines)

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def totals(self, timeout=5.0):
        """echod's counters now, from a SIGUSR1 table, summed over the
        workers: {"accepted": n, "open": n, "refused": n, "closed": n} and,
        with -u, {"udp received": n, "udp echoed": n, "udp bytes out": n,
        "udp over rate": n, ...} (a key per drop reason); None when no
        table came (echod gone, or no answer within timeout)."""
        start = len(self.lines)
        self.proc.send_signal(signal.SIGUSR1)
        if not self.wait_log(r"^echod: end of table$", timeout, start):
            return None
        res = {}

        def add(key, n):
            res[key] = res.get(key, 0) + int(n)

        with self._cv:
            lines = self.lines[start:]
        for line in lines:
            m = re.match(r"worker \d+: (\d+) accepted, (\d+) open, (\d+) refused, (\d+) closed", line)
            if m:
                for key, n in zip(("accepted", "open", "refused", "closed"), m.groups()):
                    add(key, n)
            m = re.match(r"worker \d+ udp: (\d+) received, (\d+) echoed, (\d+) bytes out((?:; \d+ [^;]+)*)$", line)
            if m:
                for key, n in zip(("received", "echoed", "bytes out"), m.groups()):
                    add("udp " + key, n)
                for n, why in re.findall(r"; (\d+) ([^;]+)", m.group(4)):
                    add("udp " + why, n)
            if line == "echod: end of table":
                break
        return res

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig and waits; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
                return None
        with self._cv:
            self._cv.wait_for(lambda: self._eof, timeout=2)
        return self.proc.returncode


# ------------------------------------------------------------- backends


def backends():
    """[(name, available, reason)] as `echod --list-backends` reports them."""
    out = subprocess.run([ECHOD, "--list-backends"], capture_output=True, text=True, timeout=10)
    res = []
    for line in out.stdout.splitlines():
        name, _, rest = line.partition(" ")
        res.append((name, rest.startswith("available"), rest.partition(": ")[2]))
    return res


def for_each_backend(test):
    """Runs test(backend) once per backend; an unavailable one is skipped
    with its reason, or fails when ECHOD_REQUIRE_BACKENDS names it."""
    required = set(filter(None, os.environ.get("ECHOD_REQUIRE_BACKENDS", "").split(",")))
    for name, available, why in backends():
        if available:
            test(name)
        elif name in required:
            ok(False, "%s: backend is available (required): %s" % (name, why))
        else:
            skip("%s: %s" % (name, test.__name__), "%s unavailable: %s" % (name, why))


# -------------------------------------------------------------- sockets


def connect(addr, timeout=5.0, family=None):
    if family is None:
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def recv_exact(s, n, timeout=10.0):
    """Reads exactly n bytes or until EOF/deadline; returns what arrived."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(min(n - len(buf), 1 << 20))
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_until_eof(s, timeout=10.0, limit=1 << 30):
    """Reads until EOF; returns (data, saw_eof)."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), False
        s.settimeout(left)
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            return bytes(buf), False
        except ConnectionResetError:
            return bytes(buf), False
        if not chunk:
            return bytes(buf), True
        buf += chunk
    return bytes(buf), False


def sees_eof(s, timeout=5.0):
    """True when the peer closed cleanly (EOF) within timeout, not by reset."""
    data, eof = recv_until_eof(s, timeout)
    return eof and not data


def fill_until_blocked(s, data, quiet=1.0, limit=60.0):
    """Sends from data without reading until the socket has taken nothing
    for `quiet` seconds; returns how many bytes were taken."""
    s.setblocking(False)
    sent = 0
    last = time.monotonic()
    end = time.monotonic() + limit
    while sent < len(data) and time.monotonic() < end:
        try:
            n = s.send(data[sent:sent + 65536])
            sent += n
            last = time.monotonic()
        except BlockingIOError:
            if time.monotonic() - last > quiet:
                break
            time.sleep(0.01)
    s.setblocking(True)
    return sent


def closed_within(s, timeout=3.0):
    """True when s sees EOF or a reset within timeout (and no data)."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def echo_all(s, payload, timeout=30.0, chunk=65536):
    """Sends payload while reading its echo concurrently (so neither side's
    buffers fill up); returns the bytes echoed back."""
    s.setblocking(False)
    out = bytearray()
    sent = 0
    deadline = time.monotonic() + timeout
    while len(out) < len(payload) and time.monotonic() < deadline:
        w = [s] if sent < len(payload) else []
        r, w, _ = select.select([s], w, [], 0.5)
        if w:
            try:
                sent += s.send(payload[sent:sent + chunk])
            except BlockingIOError:
                pass
        if r:
            try:
                d = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not d:
                break
            out += d
    s.setblocking(True)
    return bytes(out)


def pattern(n, seed=0):
    """n bytes of a pattern that differs for each seed and covers all byte values."""
    base = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(min(n, 65536) or 1))
    reps = n // len(base) + 1
    return (base * reps)[:n]


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False
