// SPDX-License-Identifier: BSD-2-Clause
/* number.c - numbers as users type them, parsed with their bounds. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "number.h"

long long number_parse(const char *s, long long min, long long max,
		       const char **errstr)
{
	long long v;
	char *end;

	*errstr = "invalid";
	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+' || *s == '\t')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return 0;
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "too small";
		return 0;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return 0;
	}
	*errstr = NULL;
	return v;
}

long long number_parse_size(const char *s, long long min, long long max,
			    const char **errstr)
{
	char digits[32];
	size_t n = strlen(s);
	long long mult = 1, v;

	if (n == 0 || n >= sizeof(digits)) {
		*errstr = n ? "too large" : "invalid";
		return 0;
	}
	memcpy(digits, s, n + 1);
	if (digits[n - 1] == 'K' || digits[n - 1] == 'k')
		mult = 1024;
	else if (digits[n - 1] == 'M' || digits[n - 1] == 'm')
		mult = 1024 * 1024;
	else if (digits[n - 1] == 'G' || digits[n - 1] == 'g')
		mult = 1024 * 1024 * 1024;
	if (mult != 1)
		digits[n - 1] = '\0';
	v = number_parse(digits, 0, max / mult, errstr);
	if (*errstr)
		return 0;
	if (v * mult < min) {
		*errstr = "too small";
		return 0;
	}
	return v * mult;
}
