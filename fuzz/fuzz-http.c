// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz-http.c - http_parse_request, the --metrics listener's request
 * line: byte 0 says whether the head is complete, the rest is what the
 * client sent. Whatever it is, the answer is a request or one of the
 * statuses the listener knows; a request is GET or HEAD of a path that
 * starts with '/', fits, holds no query and came from the input; and a
 * head that did not complete is 431, whatever it says.
 */
#include <string.h>

#include "../src/http.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r;
	char in[4097];
	size_t len;
	bool complete;
	int code;

	if (size < 1)
		return 0;
	complete = data[0] & 1;
	len = size - 1 < sizeof(in) - 1 ? size - 1 : sizeof(in) - 1;
	memcpy(in, data + 1, len);
	in[len] = '\0';
	code = http_parse_request(in, len, complete, &r);
	fuzz_check(code == 0 || code == 400 || code == 405 || code == 414 ||
		   code == 431 || code == 505);
	fuzz_check(complete || code == 431);
	if (code != 0)
		return 0;
	fuzz_check(r.path[0] == '/');
	fuzz_check(memchr(r.path, '\0', sizeof(r.path)) != NULL);
	fuzz_check(strchr(r.path, '?') == NULL);
	fuzz_check(strstr(in, r.path) != NULL);
	fuzz_check(memcmp(in, r.head ? "HEAD " : "GET ", r.head ? 5 : 4) == 0);
	return 0;
}
