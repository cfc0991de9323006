// SPDX-License-Identifier: BSD-2-Clause
/*
 * number.h - the one parser of numbers a user types (options, CIDR
 * prefix lengths, ports, user ids): decimal only, bounds checked, with
 * OpenBSD strtonum(3)'s error contract. A leaf: it calls nothing of ours.
 */
#ifndef ECHOD_NUMBER_H
#define ECHOD_NUMBER_H

/*
 * Parses a decimal integer in [min, max]: on failure returns 0 and sets
 * *errstr to "invalid", "too small" or "too large"; on success *errstr
 * is NULL. No sign but '-', no leading blank, nothing after the digits.
 */
long long number_parse(const char *s, long long min, long long max,
		       const char **errstr);

/*
 * A size with an optional K, M or G suffix (powers of 1024), in
 * [min, max] bytes; the same error contract as number_parse.
 */
long long number_parse_size(const char *s, long long min, long long max,
			    const char **errstr);

#endif
