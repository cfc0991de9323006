// SPDX-License-Identifier: BSD-2-Clause
/*
 * http.h - the request head of echod's small HTTP/1.x listeners (--metrics,
 * --control), parsed without the socket, so that a fuzzer can drive it:
 * what is asked, or the status that refuses it.
 */
#ifndef ECHOD_HTTP_H
#define ECHOD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

enum {
	HTTP_PATH_MAX = 64, /* longer paths are none of ours: 404 */
};

/* The methods a listener takes, as bits (http_parse_request's mask). */
enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_PUT = 1 << 2,
	HTTP_POST = 1 << 3,
	HTTP_DELETE = 1 << 4,
};

struct http_request {
	enum http_method method; /* one bit */
	bool head; /* HEAD: GET's headers without the body */
	char path[HTTP_PATH_MAX]; /* the target without its query */
};

/*
 * Parses the request head in[0, len), complete when its blank line has
 * come (else it filled the buffer: 431). Returns 0 with r filled for a
 * method among the bits of methods, or the status that answers it: 400
 * (not a request line), 405 (another method), 414 (a target too long),
 * 431, or 505 (not HTTP/1.0 or 1.1).
 */
int http_parse_request(const char *in, size_t len, bool complete,
		       unsigned int methods, struct http_request *r);

/*
 * The length of the head at the start of in[0, len): up to and including
 * its blank line ("\r\n\r\n" or "\n\n", whichever ends first), or 0 while
 * the blank line has not come.
 */
size_t http_head_length(const char *in, size_t len);

/*
 * The body the head in[0, len) announces: 0 with *length set (-1: no
 * Content-Length), 400 (a Content-Length that is not one decimal number,
 * or two that differ), or 501 (a Transfer-Encoding: no chunked bodies).
 */
int http_content_length(const char *in, size_t len, long long *length);

/* "404 Not Found": the status line's words for code. */
const char *http_status_text(int code);

#endif
