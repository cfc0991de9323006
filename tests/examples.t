#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""examples.t: runs each lecture program of examples/ against real clients.

Every program is started on port 0 and the port is read from its
"listening on 0.0.0.0:PORT (fd N)" line. The checks are what the lecture
shows: the echo, the two descriptor numbers, the LISTEN and ESTAB sockets in
ss with the program's pid and fd and their queues, a process that sleeps
rather than spins, and the exercise's telnet transcript (under tmux).
"""

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echotest as t  # noqa: E402

PROGRAMS = ["echo_once", "fds", "listen_only", "accept_hold", "echo3"]
LISTEN_RE = re.compile(r"^listening on 0\.0\.0\.0:(\d+) \(fd (\d+)\)$")
ACCEPT_RE = re.compile(r"^accepted 127\.0\.0\.1:(\d+) \(fd (\d+)\)$")


class Example:
    """One example program, run in its own process group on port 0.

    Its stdout and stderr lines are collected on threads so that a test can
    wait for a line with a deadline.
    """

    def __init__(self, name, *args):
        self.name = name
        argv = [os.path.join(t.EXAMPLES_DIR, name)] + list(args or ["0"])
        self.proc = t.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        self.out = []
        self.err = []
        self._cv = threading.Condition()
        self._open = 2
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._reader, args=(stream, lines), daemon=True).start()
        self.port = self.lfd = None

    def _reader(self, stream, lines):
        for raw in stream:
            with self._cv:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._open -= 1
            self._cv.notify_all()

    def wait_out(self, rx, timeout=5.0):
        """Waits for a stdout line matching rx (fully); returns the match or None."""
        rx = re.compile(rx) if isinstance(rx, str) else rx
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.out:
                    m = rx.match(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self._open == 0:
                    return None
                self._cv.wait(left)

    def listening(self):
        """Waits for the listening line; sets self.port and self.lfd."""
        m = self.wait_out(LISTEN_RE, 10.0)
        if not m:
            t.bail_out("%s did not start: stdout %r, stderr %r"
                       % (self.name, self.out, self.err))
        self.port, self.lfd = int(m.group(1)), int(m.group(2))
        return self

    def wait_exit(self, timeout=5.0):
        """Returns the exit status (negative: killed by that signal), or None."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        with self._cv:
            self._cv.wait_for(lambda: self._open == 0, timeout=2)
        return rc

    def state(self):
        """The process state letter from /proc (R running, S sleeping...)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def diag(self):
        return "%s stdout: %r\nstderr: %r" % (self.name, self.out, self.err)


def ss_tcp():
    """All TCP sockets as ss -tanpH sees them: a list of dicts with state,
    recvq, sendq, lport, pport and users (the process column, maybe "")."""
    out = subprocess.run([SS, "-tanpH"], capture_output=True, text=True, timeout=10).stdout
    rows = []
    for line in out.splitlines():
        f = line.split(None, 5)
        if len(f) < 5 or not f[3].rsplit(":", 1)[-1].isdigit():
            continue
        rows.append({"state": f[0], "recvq": int(f[1]), "sendq": int(f[2]),
                     "lport": int(f[3].rsplit(":", 1)[1]),
                     "pport": f[4].rsplit(":", 1)[1],
                     "users": f[5].strip() if len(f) > 5 else "", "line": line})
    return rows


def ss_find(pred, timeout=5.0):
    """Waits until some ss row satisfies pred; returns it or None."""
    found = []

    def look():
        found[:] = [r for r in ss_tcp() if pred(r)]
        return bool(found)
    t.wait_until(look, timeout, 0.05)
    return found[0] if found else None


def owner(name, pid, fd):
    return '("%s",pid=%d,fd=%d)' % (name, pid, fd)


def check_sleeps(ex):
    """The slide's `while True: pass` spins; ours must sleep and stay asleep."""
    slept = t.wait_until(lambda: ex.state() == "S", 5.0)
    before = ex.cpu_ticks()
    time.sleep(0.5)
    used = ex.cpu_ticks() - before
    ok_ = t.ok(slept and ex.state() == "S", "%s: waits asleep (state S), not spinning" % ex.name,
               "state %s" % ex.state())
    # A spinning loop uses about 50 ticks (of 10 ms) in 0.5 s.
    t.ok(used <= 2, "%s: used %d CPU ticks in 0.5 s while waiting" % (ex.name, used))
    return ok_


def check_sigint(ex):
    ex.proc.send_signal(signal.SIGINT)
    t.eq(ex.wait_exit(), -signal.SIGINT, "%s: Ctrl-C (SIGINT) ends it" % ex.name)


# ------------------------------------------------------------------ usage


def test_usage():
    def run(name, *args):
        p = t.spawn([os.path.join(t.EXAMPLES_DIR, name)] + list(args),
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            return None, "", "(timed out)"
        return p.returncode, out.decode(), err.decode()

    for name in PROGRAMS:
        rc, out, err = run(name, "junk")
        t.ok(rc == 2 and out == "" and err == "%s: port junk: not a number\n" % name,
             "%s junk: exit 2, one line on stderr" % name, "rc %r, stdout %r, stderr %r"
             % (rc, out, err))
    cases = [(("70000",), "echo_once: port 70000: too large\n"),
             (("99999999999999999999",), "echo_once: port 99999999999999999999: too large\n"),
             (("+80",), "echo_once: port +80: not a number\n"),
             ((" 80",), "echo_once: port  80: not a number\n"),
             (("80x",), "echo_once: port 80x: not a number\n"),
             (("",), "echo_once: port : not a number\n"),
             (("-1",), "usage: echo_once [port]\n"),
             (("1", "2"), "usage: echo_once [port]\n")]
    for args, want in cases:
        rc, out, err = run("echo_once", *args)
        t.ok(rc == 2 and out == "" and err == want, "echo_once %r: exit 2, %r" % (args, want),
             "rc %r, stdout %r, stderr %r" % (rc, out, err))


# -------------------------------------------------------------- echo_once


def test_echo_once():
    ex = Example("echo_once").listening()
    s = t.connect(("127.0.0.1", ex.port))
    m = ex.wait_out(ACCEPT_RE)
    t.ok(m and int(m.group(1)) == s.getsockname()[1] and int(m.group(2)) != ex.lfd,
         "echo_once: prints the accepted client's port and a new fd", ex.diag())
    msg = t.pattern(128, 1)
    s.sendall(msg)
    t.eq(t.recv_exact(s, 128, 5.0), msg, "echo_once: a 128-byte message comes back exactly")
    t.ok(t.sees_eof(s), "echo_once: then it closes (client sees end-of-file)")
    s.close()
    t.eq(ex.wait_exit(), 0, "echo_once: exits 0 after one echo")

    # recv(128) returns at most 128 bytes: the rest is never read (and, as it
    # is unread at close(), the kernel resets the connection).
    ex = Example("echo_once").listening()
    s = t.connect(("127.0.0.1", ex.port))
    msg = t.pattern(200, 2)
    s.sendall(msg)
    data, _ = t.recv_until_eof(s, 5.0)
    t.eq(data, msg[:128], "echo_once: of 200 bytes sent, exactly the first 128 come back")
    s.close()
    t.eq(ex.wait_exit(), 0, "echo_once: exits 0 after the long message")

    nc = t.need_program("nc")
    if not nc:
        t.skip("echo_once: nc -N gets its line back", "nc not installed")
        return
    ex = Example("echo_once").listening()
    p = t.spawn([nc, "-N", "127.0.0.1", str(ex.port)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(b"hello from nc\n", timeout=10)
    except subprocess.TimeoutExpired:
        out, err = b"(timed out)", b""
    t.eq((out, p.returncode), (b"hello from nc\n", 0), "echo_once: nc -N gets its line back")
    t.eq(ex.wait_exit(), 0, "echo_once: exits 0 after serving nc")


# -------------------------------------------------------------------- fds


def test_fds():
    ex = Example("fds").listening()
    s = t.connect(("127.0.0.1", ex.port))
    data, eof = t.recv_until_eof(s, 5.0)
    t.ok(data == b"hello world\n" and eof, "fds: client gets 'hello world\\n', then end-of-file",
         "got %r, eof %r" % (data, eof))
    s.close()
    m = ex.wait_out(ACCEPT_RE)
    cfd = int(m.group(2)) if m else None
    t.ok(m and cfd != ex.lfd, "fds: listening and accepted sockets have distinct descriptors",
         ex.diag())
    # With 0, 1 and 2 open, the kernel hands out the lowest free numbers.
    t.eq((ex.lfd, cfd), (3, 4), "fds: descriptors are 3 and 4, as in the lecture")
    t.eq(ex.wait_exit(), 0, "fds: exits 0")


# ------------------------------------------------------------ listen_only


def test_listen_only():
    ex = Example("listen_only").listening()
    pid = ex.proc.pid
    if not SS:
        t.skip("listen_only: ss shows the LISTEN socket", "ss not installed")
    else:
        r = ss_find(lambda r: r["lport"] == ex.port and r["state"] == "LISTEN")
        t.ok(r and owner("listen_only", pid, ex.lfd) in r["users"],
             "listen_only: ss shows LISTEN on its port with pid=%d,fd=%d" % (pid, ex.lfd),
             "row: %r" % r)
        t.ok(r and r["sendq"] == 128, "listen_only: LISTEN Send-Q is the backlog, 128",
             "row: %r" % r)
    check_sleeps(ex)

    # Nobody calls accept(), yet the kernel completes the handshake and
    # queues the connection: the LISTEN socket's Recv-Q counts it.
    s = t.connect(("127.0.0.1", ex.port))
    if SS:
        cport = s.getsockname()[1]
        r = ss_find(lambda r: r["lport"] == ex.port and r["state"] == "LISTEN"
                    and r["recvq"] == 1)
        t.ok(r, "listen_only: an unaccepted connection shows as LISTEN Recv-Q 1",
             "rows: %r" % [x for x in ss_tcp() if x["lport"] == ex.port])
        r = ss_find(lambda r: r["lport"] == ex.port and r["pport"] == str(cport))
        t.ok(r and r["state"] == "ESTAB" and r["users"] == "",
             "listen_only: the queued connection is ESTAB, owned by no process yet",
             "row: %r" % r)
    else:
        t.skip("listen_only: LISTEN Recv-Q counts the unaccepted connection", "no ss")
    t.ok(ex.proc.poll() is None, "listen_only: still running with a client queued", ex.diag())
    s.close()
    check_sigint(ex)
    if SS:
        gone = t.wait_until(lambda: not [r for r in ss_tcp()
                                         if r["lport"] == ex.port and r["state"] == "LISTEN"])
        t.ok(gone, "listen_only: the kernel closed the LISTEN socket when it died")


# ------------------------------------------------------------ accept_hold


def test_accept_hold():
    ex = Example("accept_hold").listening()
    pid = ex.proc.pid
    s = t.connect(("127.0.0.1", ex.port))
    cport = s.getsockname()[1]
    m = ex.wait_out(ACCEPT_RE)
    cfd = int(m.group(2)) if m else -1
    s.sendall(b"hello\n")
    t.ok(ex.wait_out(r"^received 6 bytes$"), "accept_hold: receives once, 6 bytes", ex.diag())
    # Not read by anyone: these stay in the server socket's Recv-Q.
    s.sendall(b"more data\n")
    if not SS:
        t.skip("accept_hold: ss shows ESTAB with Recv-Q", "ss not installed")
    else:
        r = ss_find(lambda r: r["lport"] == ex.port and r["pport"] == str(cport)
                    and r["recvq"] == 10)
        t.ok(r and r["state"] == "ESTAB" and owner("accept_hold", pid, cfd) in r["users"],
             "accept_hold: ss shows ESTAB with pid=%d,fd=%d" % (pid, cfd), "row: %r" % r,
             "rows: %r" % [x for x in ss_tcp() if x["lport"] == ex.port])
        t.ok(r and r["recvq"] == 10 and r["sendq"] == 0,
             "accept_hold: the unread 10 bytes are its Recv-Q, Send-Q is 0", "row: %r" % r)
        r = ss_find(lambda r: r["lport"] == cport and r["pport"] == str(ex.port))
        t.ok(r and r["state"] == "ESTAB" and "pid=%d," % os.getpid() in r["users"],
             "accept_hold: the client's own socket is ESTAB, owned by the client", "row: %r" % r)
        r = ss_find(lambda r: r["lport"] == ex.port and r["state"] == "LISTEN")
        t.ok(r and owner("accept_hold", pid, ex.lfd) in r["users"],
             "accept_hold: the LISTEN socket stays open on fd %d" % ex.lfd, "row: %r" % r)
    check_sleeps(ex)
    check_sigint(ex)
    s.close()


# ------------------------------------------------------------------ echo3


def test_echo3():
    ex = Example("echo3").listening()
    s = t.connect(("127.0.0.1", ex.port))
    for i in (1, 2, 3):
        msg = b"test%d\r\n" % i
        s.sendall(msg)
        t.eq(t.recv_exact(s, len(msg), 5.0), msg, "echo3: message %d comes back" % i)
    t.ok(t.sees_eof(s), "echo3: after three round trips the server closes")
    s.close()
    t.eq(ex.wait_exit(), 0, "echo3: exits 0")
    t.eq(ex.out[2:], ["message %d: 7 bytes" % i for i in (1, 2, 3)],
         "echo3: reports each round trip")

    # A client that leaves early ends it cleanly, with a warning.
    ex = Example("echo3").listening()
    s = t.connect(("127.0.0.1", ex.port))
    s.sendall(b"only one\n")
    t.eq(t.recv_exact(s, 9, 5.0), b"only one\n", "echo3: early leaver's message comes back")
    s.close()
    t.eq(ex.wait_exit(), 0, "echo3: exits 0 when the client leaves early")
    t.eq(ex.err, ["echo3: client closed before message 2"], "echo3: and says so on stderr")


def test_echo3_telnet():
    """The exercise's transcript, with telnet typing into a tmux pane."""
    name = "echo3: telnet transcript as in the lecture"
    telnet, tmux = t.need_program("telnet"), t.need_program("tmux")
    if not telnet or not tmux:
        t.skip(name, "telnet or tmux not installed")
        return
    ex = Example("echo3").listening()
    # A tmux server of our own (-L), so that no one else's sessions are touched.
    sock = "echod-examples-%d" % os.getpid()
    env = dict(os.environ, TERM=os.environ.get("TERM") or "xterm")
    env.pop("TMUX", None)

    def tm(*args):
        return subprocess.run([tmux, "-L", sock, "-f", "/dev/null"] + list(args),
                              capture_output=True, text=True, timeout=10, env=env)

    def lines():
        r = tm("capture-pane", "-p", "-t", "echo3")
        return [x.rstrip() for x in r.stdout.splitlines() if x.strip()]

    def kill():
        tm("kill-server")
    atexit.register(kill)
    # The pane outlives telnet so that its last line can still be read, but
    # only for 10 s: the tmux server (a daemon, not our child) then exits by
    # itself even if this script is killed before its kill-server.
    r = tm("new-session", "-d", "-s", "echo3", "-x", "100", "-y", "30",
           "%s 127.0.0.1 %d; echo '[telnet exited]'; sleep 10" % (telnet, ex.port))
    if r.returncode != 0:
        t.ok(False, name, "tmux new-session: %s" % r.stderr)
        kill()
        return
    t.wait_until(lambda: "Escape character is '^]'." in lines(), 5.0, 0.05)
    for i in (1, 2, 3):
        word = "test%d" % i
        tm("send-keys", "-t", "echo3", word, "Enter")
        t.wait_until(lambda: lines().count(word) >= 2, 5.0, 0.05)
    t.wait_until(lambda: "[telnet exited]" in lines(), 5.0, 0.05)
    got = lines()
    kill()
    want = ["Trying 127.0.0.1...", "Connected to 127.0.0.1.", "Escape character is '^]'.",
            "test1", "test1", "test2", "test2", "test3", "test3",
            "Connection closed by foreign host.", "[telnet exited]"]
    t.eq(got[-len(want):], want, name)
    t.eq(ex.wait_exit(), 0, "echo3: exits 0 after the telnet session")


# ------------------------------------------------------------------- main

missing = [p for p in PROGRAMS if not os.access(os.path.join(t.EXAMPLES_DIR, p), os.X_OK)]
if missing:
    t.bail_out("not built in %s: %s (run make)" % (t.EXAMPLES_DIR, " ".join(missing)))
SS = t.need_program("ss")

test_usage()
test_echo_once()
test_fds()
test_listen_only()
test_accept_hold()
test_echo3()
test_echo3_telnet()
t.done_testing()
