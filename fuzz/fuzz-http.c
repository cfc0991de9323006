// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-http.c - the request head of the --metrics and --control
 * listeners: byte 0 says whether the head is complete, byte 1 which
 * methods the listener takes, the rest is what the client sent. Whatever
 * it is, the answer is a request or one of the statuses the listeners
 * know; a request is of a method taken, of a path that starts with '/',
 * fits, holds no query and came from the input; a head that did not
 * complete is 431, whatever it says; the head's length ends in its blank
 * line; and Content-Length is a number the input holds, or absent.
 */
#include <stdio.h>
#include <string.h>

#include "../src/http.h"
#include "fuzz.h"

static const char *const names[] = {"GET ", "HEAD ", "PUT ", "POST ",
				    "DELETE "};

/* The request's method is the one the input starts with. */
static void check_method(const char *in, const struct http_request *r)
{
	for (int i = 0; i < 5; i++)
		if (r->method == 1 << i)
			fuzz_check(strncmp(in, names[i], strlen(names[i])) ==
				   0);
	fuzz_check(r->head == (r->method == HTTP_HEAD));
}

static void check_lengths(const char *in, size_t len)
{
	size_t head = http_head_length(in, len);
	long long n;
	char digits[32];
	int code;

	fuzz_check(head <= len);
	fuzz_check(head == 0 || in[head - 1] == '\n');
	code = http_content_length(in, head ? head : len, &n);
	fuzz_check(code == 0 || code == 400 || code == 501);
	if (code != 0 || n < 0)
		return;
	/* Below saturation the number is written in the input. */
	snprintf(digits, sizeof(digits), "%lld", n);
	fuzz_check(n > 999999999999999LL ||
		   memmem(in, len, digits, strlen(digits)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r;
	unsigned int methods;
	char in[4097];
	size_t len;
	bool complete;
	int code;

	if (size < 2)
		return 0;
	complete = data[0] & 1;
	methods = data[1] & 0x1f;
	len = size - 2 < sizeof(in) - 1 ? size - 2 : sizeof(in) - 1;
	memcpy(in, data + 2, len);
	in[len] = '\0';
	check_lengths(in, len);
	code = http_parse_request(in, len, complete, methods, &r);
	fuzz_check(code == 0 || code == 400 || code == 405 || code == 414 ||
		   code == 431 || code == 505);
	fuzz_check(complete || code == 431);
	if (code != 0)
		return 0;
	fuzz_check(r.method & methods);
	check_method(in, &r);
	fuzz_check(r.path[0] == '/');
	fuzz_check(memchr(r.path, '\0', sizeof(r.path)) != NULL);
	fuzz_check(strchr(r.path, '?') == NULL);
	fuzz_check(strstr(in, r.path) != NULL);
	return 0;
}
