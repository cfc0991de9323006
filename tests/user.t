#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""user.t - --user NAME[:GROUP]: echod binds the echo port (7) as root, then
runs as NAME with no supplementary groups, read back from /proc/PID/status;
a drop that cannot happen is fatal; root without --user is warned about
except under systemd. Once per backend.

echod starts with supplementary groups (setpriv --groups) so that their drop
shows. Port 7 is the one fixed port in the suite: the issue asks for it, since the
point is a privileged port. The test skips when it is busy."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echotest import *  # noqa: E402,F401


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


# echod binds port 7 on a loopback address of its own, not the wildcard, so
# that tests beside this one may send from port 7 on 127.0.0.1 (udp.t does).
ADDR7 = "127.0.0.7"


def port7_free():
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ADDR7, 7))
        except OSError:
            return False
        finally:
            s.close()
    return True


def test_drop(backend):
    if not port7_free():
        skip("%s: --user on port 7" % backend, "port 7 is in use")
        return
    for spec, gid in (("nobody", nogroup), ("nobody:%s" % group_name, other_gid)):
        # Started with supplementary groups, so that dropping them shows.
        srv = Echod("-p", "7", "-b", ADDR7, "-t", "2", "-u", "--user", spec, port0=False,
                    backend=backend,
                    prefix=setpriv)
        f = status_fields(srv.proc.pid)
        eq(f["Uid"], [str(nobody)] * 4, "%s: --user %s: Uid (real, effective, saved, fs)" % (backend, spec))
        eq(f["Gid"], [str(gid)] * 4, "%s: --user %s: Gid" % (backend, spec))
        eq(f["Groups"], [], "%s: --user %s: no supplementary groups" % (backend, spec))
        eq(f["CapEff"], ["0000000000000000"], "%s: --user %s: no capabilities left" % (backend, spec))
        eq(srv.port, 7, "%s: listening on port 7" % backend)
        with connect((ADDR7, 7)) as s:
            s.sendall(b"seven")
            eq(recv_exact(s, 5), b"seven", "%s: --user %s: echoes on port 7" % (backend, spec))
        ok(srv.wait_log(r"^echod: running as %s \(uid %d, gid %d\)" % (spec, nobody, gid)),
           "%s: the drop is logged" % backend, srv.log())
        ok(not srv.wait_log(r"running as root", timeout=0.1), "%s: no root warning with --user" % backend)
        eq(srv.stop(), 0, "%s: exit 0" % backend)


if os.geteuid() != 0:
    skip("--user", "not running as root")
    done_testing()

import grp  # noqa: E402
import pwd  # noqa: E402
nobody = pwd.getpwnam("nobody").pw_uid
nogroup = pwd.getpwnam("nobody").pw_gid
group_name = "daemon" if "daemon" in [g.gr_name for g in grp.getgrall()] else "root"
other_gid = grp.getgrnam(group_name).gr_gid

setpriv = ["setpriv", "--groups", "1,2", "--"] if need_program("setpriv") else []
for_each_backend(test_drop)

p = subprocess.run([ECHOD, "-p", "0", "--user", "no-such-user-here"], capture_output=True, text=True, timeout=10)
eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]), (1, "echod: user no-such-user-here: no such user"),
   "--user with an unknown user: exit 1, one line")
p = subprocess.run([ECHOD, "-p", "0", "--user", "nobody:no-such-group"], capture_output=True, text=True, timeout=10)
eq((p.returncode, unstamp(p.stderr.strip()).splitlines()[-1]), (1, "echod: user no-such-group: no such group"),
   "--user with an unknown group: exit 1, one line")

os.environ.pop("INVOCATION_ID", None)
srv = Echod("-t", "1")
ok(srv.wait_log(r"^echod: running as root: --user NAME drops root", timeout=2),
   "root without --user: one warning line", srv.log())
srv.stop()
srv = Echod("-t", "1", env={"INVOCATION_ID": "0123456789abcdef0123456789abcdef"})
ok(not srv.wait_log(r"running as root", timeout=0.2), "... but not under systemd (INVOCATION_ID)", srv.log())
srv.stop()
done_testing()
