// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-close_reason.c - every close reason has its words and a label of
 * its own, so that the log, the totals and /metrics, which all walk the
 * list, can name each one (tests/tap.h).
 */
#include <ctype.h>
#include <string.h>

#include "../src/close_reason.h"
#include "tap.h"

/* A Prometheus label value echod can print unquoted in the totals too. */
static int is_label(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

int main(void)
{
	ok(CLOSE_NREASONS >= 8, "the list has every reason (%d)",
	   CLOSE_NREASONS);
	for (int r = 0; r < CLOSE_NREASONS; r++) {
		const char *label = close_reason_label(r);
		const char *words = close_reason_words(r);
		int same = 0;

		ok(is_label(label), "reason %d: label '%s'", r, label);
		ok(words && words[0], "reason %d: words '%s'", r, words);
		for (int q = 0; q < CLOSE_NREASONS; q++)
			same += strcmp(label, close_reason_label(q)) == 0;
		is_int(same, 1, "reason %d: no other has the label %s", r,
		       label);
	}
	is_str(close_reason_words(CLOSE_EOF), "end of input",
	       "the log's words for end of input, as -v has always said");
	is_str(close_reason_label(CLOSE_SEND_TIMEOUT), "send_timeout",
	       "the /metrics label for the send timeout, as dashboards read it");
	ok(close_reason_of(-12) == CLOSE_MEMORY, "-ENOMEM closes for memory");
	ok(close_reason_of(-104) == CLOSE_ERROR, "-ECONNRESET is an error");
	is_str(close_reason_label(CLOSE_NONE), "unknown",
	       "CLOSE_NONE is no reason");
	return done_testing();
}
