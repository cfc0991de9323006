#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# image.t: make image-check (tools/image-check): the static image built with
# podman, inspected, exported, run from its root as uid 65532, with and
# without io_uring refused by seccomp.
. "$(dirname "$0")/lib.sh"
need podman musl-gcc unshare chroot readelf
need_root
exec make -s --no-print-directory image-check
