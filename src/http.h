// SPDX-License-Identifier: BSD-2-Clause
/*
 * http.h - the request line of the --metrics listener's HTTP/1.x, parsed
 * without the socket, so that a fuzzer can drive it: what is asked, or
 * the status that refuses it.
 */
#ifndef ECHOD_HTTP_H
#define ECHOD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

enum {
	HTTP_PATH_MAX = 64, /* longer paths are none of ours: 404 */
};

struct http_request {
	bool head; /* HEAD: GET's headers without the body */
	char path[HTTP_PATH_MAX]; /* the target without its query */
};

/*
 * Parses the request head in[0, len), complete when its blank line has
 * come (else it filled the buffer: 431). Returns 0 with r filled for a
 * GET or HEAD, or the status that answers it: 400 (not a request line),
 * 405 (another method), 414 (a target too long), 431, or 505 (not
 * HTTP/1.0 or 1.1).
 */
int http_parse_request(const char *in, size_t len, bool complete,
		       struct http_request *r);

#endif
