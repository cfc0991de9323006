#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# soak.t - runs tests/soak (the fault soak, a Python program) under prove.
exec python3 "$(dirname "$0")/soak"
