// SPDX-License-Identifier: BSD-2-Clause
/*
 * compiler.h - how the echo path is inlined. A step of an echo that runs
 * in a frame of its own costs about twenty instructions to save and
 * restore registers, and echod's whole user-space share of an echo is
 * about three hundred (make bench-instructions); gcc's own choice of
 * what to inline, with or without LTO, changes with any edit nearby. So
 * the steps every echo takes are inlined by rule, and what is rare is
 * kept out of line, so that the common path does not pay for its frame.
 */
#ifndef ECHOD_COMPILER_H
#define ECHOD_COMPILER_H

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))

#endif
