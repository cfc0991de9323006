# SPDX-License-Identifier: BSD-2-Clause
"""soaklib: what the hostile, soak and churn tests check about a running
echod after its clients are gone: its descriptors, the sockets it leaves in
CLOSE-WAIT, its resident memory, and whether a fresh client is served.

Read from /proc/PID and `ss -tanpH`, so these need Linux and iproute2."""
import os
import re
import resource
import socket
import subprocess
import time

from echotest import connect, echo_all, need_program, pattern, wait_until


def fd_count(pid):
    """How many descriptors pid has open now."""
    return len(os.listdir("/proc/%d/fd" % pid))


def close_wait(pid):
    """The `ss` lines of pid's TCP sockets in CLOSE-WAIT: the peer has
    gone and echod has not closed its end."""
    ss = need_program("ss")
    if not ss:
        return []
    out = subprocess.run([ss, "-tanpH", "state", "close-wait"], capture_output=True,
                         text=True, timeout=10).stdout
    tag = re.compile(r"pid=%d," % pid)
    return [line for line in out.splitlines() if tag.search(line)]


def socket_states(pid):
    """{state: count} of every TCP socket pid holds (listeners included)."""
    ss = need_program("ss")
    if not ss:
        return {}
    out = subprocess.run([ss, "-tanpH"], capture_output=True, text=True, timeout=10).stdout
    tag = re.compile(r"pid=%d," % pid)
    states = {}
    for line in out.splitlines():
        if tag.search(line):
            st = line.split()[0]
            states[st] = states.get(st, 0) + 1
    return states


def settled(pid, baseline, timeout=15.0):
    """Waits until pid's descriptors are back to baseline and none of its
    sockets is in CLOSE-WAIT; returns (fds now, CLOSE-WAIT lines)."""
    wait_until(lambda: fd_count(pid) <= baseline and not close_wait(pid), timeout, 0.1)
    return fd_count(pid), close_wait(pid)


def fresh_echo(addr, size=1000, timeout=3.0):
    """True when a new client gets its bytes back within timeout."""
    data = pattern(size, seed=99)
    try:
        with connect(addr, timeout) as s:
            return echo_all(s, data, timeout=timeout) == data
    except OSError:
        return False


def reset_close(s):
    """Closes s with a reset (SO_LINGER {1, 0}) instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def raise_nofile(want):
    """Raises this process's descriptor limit towards want (up to the hard
    limit); returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        soft = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def settle_baseline(pid, timeout=2.0):
    """echod's descriptor count once start-up is over (it no longer
    changes for a tenth of a second)."""
    last = fd_count(pid)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.1)
        now = fd_count(pid)
        if now == last:
            return now
        last = now
    return last


def start_echod(*args, backend=None, env=None):
    """Echod(...), also for a build older than the `echod: ready` line
    (to show a test fails on old code): then the listening line and a
    first connection stand in for it."""
    from echotest import Echod, READY_RE
    srv = Echod(*args, backend=backend, env=env, wait=False)
    if srv.wait_log(READY_RE, 3.0) or not srv.wait_log("listening on tcp", 5.0):
        if not srv.alive() or not srv.tcp:
            raise RuntimeError("echod did not start: %r" % srv.log())
        return srv
    wait_until(lambda: fresh_echo(srv.addr(), 10, 1.0), 5.0, 0.1)
    return srv


def fd_kinds(pid):
    """{what each descriptor is ("/dev/null", "socket", "anon_inode:..."):
    how many}, to name what a changed count gained or lost."""
    kinds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            what = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        what = re.sub(r":\[\d+\]$", "", what)
        kinds[what] = kinds.get(what, 0) + 1
    return kinds
