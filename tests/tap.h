// SPDX-License-Identifier: BSD-2-Clause
/* tap.h - a minimal TAP producer for echod's C unit tests (run by prove). */
#ifndef ECHOD_TAP_H
#define ECHOD_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void plan(int n)
{
	printf("1..%d\n", n);
}

/* ok(cond, fmt, ...): one test line; returns cond. */
#define ok(cond, ...)                                                 \
	({                                                            \
		int ok_c_ = !!(cond);                                 \
		printf("%sok %d - ", ok_c_ ? "" : "not ", ++tap_n);   \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
		if (!ok_c_) {                                         \
			tap_failed++;                                 \
			printf("#   failed at %s:%d: %s\n", __FILE__, \
			       __LINE__, #cond);                      \
		}                                                     \
		ok_c_;                                                \
	})

/* Integer equality that prints both values when it fails. */
#define is_int(got, want, ...)                                                 \
	({                                                                     \
		long long is_g_ = (long long)(got), is_w_ = (long long)(want); \
		if (!ok(is_g_ == is_w_, __VA_ARGS__))                          \
			printf("#   got %lld, want %lld\n", is_g_, is_w_);     \
		is_g_ == is_w_;                                                \
	})

#define is_str(got, want, ...)                                         \
	({                                                             \
		const char *is_g_ = (got), *is_w_ = (want);            \
		int is_e_ = is_g_ && is_w_ ? strcmp(is_g_, is_w_) == 0 \
					   : is_g_ == is_w_;           \
		if (!ok(is_e_, __VA_ARGS__))                           \
			printf("#   got \"%s\", want \"%s\"\n",        \
			       is_g_ ? is_g_ : "(null)",               \
			       is_w_ ? is_w_ : "(null)");              \
		is_e_;                                                 \
	})

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
