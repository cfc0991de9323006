#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# deb.t: make deb (tools/mkdeb): dpkg-buildpackage from make dist's tarball,
# hardening flags in the log, lintian clean, installed, echoed, purged.
. "$(dirname "$0")/lib.sh"
need dpkg-buildpackage dh lintian
need_root
exec make -s --no-print-directory deb
