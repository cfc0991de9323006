#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# manifests.t: make manifests-check (tests/package/manifests.js): the
# Kubernetes manifests validated with kubernetes-models, the Job's command
# line run here.
. "$(dirname "$0")/lib.sh"
need node
cache=${NPM_CACHE:-$HOME/.cache/echod-npm}
if [ ! -d "$cache/node_modules/kubernetes-models" ]; then
	[ "${CI:-}" = true ] && { echo "1..1"; echo "not ok 1 - npm packages missing: make npm-deps"; exit 1; }
	echo "1..0 # SKIP npm packages missing: make npm-deps"; exit 0
fi
exec make -s --no-print-directory manifests-check
