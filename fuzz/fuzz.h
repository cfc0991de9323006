// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz.h - what the libFuzzer harnesses in fuzz/ share: the entry point
 * libFuzzer calls, and a check that aborts (so libFuzzer saves the
 * input) with the broken property named.
 */
#ifndef ECHOD_FUZZ_H
#define ECHOD_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(cond)                                                \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: property broken: %s\n", \
				__FILE__, __LINE__, #cond);             \
			abort();                                        \
		}                                                       \
	} while (0)
#endif
