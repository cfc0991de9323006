// SPDX-License-Identifier: BSD-2-Clause
/*
 * http.c - the request head of the --metrics and --control listeners: the
 * request line, Content-Length and Transfer-Encoding, and nothing else of
 * HTTP.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static const struct {
	const char *name;
	enum http_method method;
} methods_table[] = {
	{"GET", HTTP_GET},   {"HEAD", HTTP_HEAD},     {"PUT", HTTP_PUT},
	{"POST", HTTP_POST}, {"DELETE", HTTP_DELETE},
};

/* The next space-separated word of line[*at, end): its start and length. */
static const char *word(const char *line, size_t end, size_t *at, size_t *n)
{
	const char *w = line + *at;
	const char *sp = memchr(w, ' ', end - *at);

	*n = sp ? (size_t)(sp - w) : end - *at;
	*at += *n + (sp != NULL);
	return w;
}

/* The method named m[0, n), if it is among the bits of allowed; else 0. */
static enum http_method method_of(const char *m, size_t n, unsigned int allowed)
{
	size_t count = sizeof(methods_table) / sizeof(methods_table[0]);

	for (size_t i = 0; i < count; i++)
		if (strlen(methods_table[i].name) == n &&
		    memcmp(methods_table[i].name, m, n) == 0)
			return methods_table[i].method & allowed;
	return 0;
}

int http_parse_request(const char *in, size_t len, bool complete,
		       unsigned int methods, struct http_request *r)
{
	const char *nl = memchr(in, '\n', len), *method, *target, *version;
	const char *query;
	size_t end, at = 0, nm, nt, nv;

	memset(r, 0, sizeof(*r));
	if (!complete)
		return 431;
	if (nl == NULL)
		return 400;
	end = (size_t)(nl - in);
	if (end > 0 && in[end - 1] == '\r')
		end--;
	method = word(in, end, &at, &nm);
	target = word(in, end, &at, &nt);
	version = word(in, end, &at, &nv);
	if (nm == 0 || nt == 0 || nv == 0 || at < end || target[0] != '/' ||
	    memchr(in, '\0', end) != NULL)
		return 400;
	if (nv != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1'))
		return nv > 5 && memcmp(version, "HTTP/", 5) == 0 ? 505 : 400;
	r->method = method_of(method, nm, methods);
	if (r->method == 0)
		return 405;
	r->head = r->method == HTTP_HEAD;
	query = memchr(target, '?', nt);
	if (query)
		nt = (size_t)(query - target);
	if (nt >= sizeof(r->path))
		return 414;
	memcpy(r->path, target, nt);
	return 0;
}

size_t http_head_length(const char *in, size_t len)
{
	const char *crlf = memmem(in, len, "\r\n\r\n", 4);
	const char *lf = memmem(in, len, "\n\n", 2);

	/* memmem: a NUL in the request must not hide its end. */
	if (crlf && (lf == NULL || crlf < lf))
		return (size_t)(crlf - in) + 4;
	return lf ? (size_t)(lf - in) + 2 : 0;
}

/*
 * The decimal value v[0, n) with blanks around it, saturated at
 * LLONG_MAX (a length no listener takes anyway); -1 if not a number.
 */
static long long decimal(const char *v, size_t n)
{
	long long x = 0;
	size_t i = 0, digits = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++)
		x = x > (LLONG_MAX - 9) / 10 ? LLONG_MAX
					     : x * 10 + (v[i] - '0');
	while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r'))
		i++;
	return digits && i == n ? x : -1;
}

int http_content_length(const char *in, size_t len, long long *length)
{
	const char *line = memchr(in, '\n', len), *next, *colon;
	size_t n;
	long long v;

	*length = -1;
	while (line && (size_t)(++line - in) < len) {
		next = memchr(line, '\n', len - (size_t)(line - in));
		n = next ? (size_t)(next - line) : len - (size_t)(line - in);
		if (n == 0 || (n == 1 && line[0] == '\r'))
			break; /* the blank line: the body is not looked at */
		colon = memchr(line, ':', n);
		if (colon && colon - line == 17 &&
		    strncasecmp(line, "transfer-encoding", 17) == 0)
			return 501;
		if (colon && colon - line == 14 &&
		    strncasecmp(line, "content-length", 14) == 0) {
			v = decimal(colon + 1, n - 15);
			/* Two that differ would let a proxy read another body.
			 */
			if (v < 0 || (*length >= 0 && v != *length))
				return 400;
			*length = v;
		}
		line = next;
	}
	return 0;
}

const char *http_status_text(int code)
{
	switch (code) {
	case 200:
		return "200 OK";
	case 201:
		return "201 Created";
	case 204:
		return "204 No Content";
	case 404:
		return "404 Not Found";
	case 405:
		return "405 Method Not Allowed";
	case 409:
		return "409 Conflict";
	case 411:
		return "411 Length Required";
	case 413:
		return "413 Content Too Large";
	case 414:
		return "414 URI Too Long";
	case 431:
		return "431 Request Header Fields Too Large";
	case 500:
		return "500 Internal Server Error";
	case 501:
		return "501 Not Implemented";
	case 503:
		return "503 Service Unavailable";
	case 505:
		return "505 HTTP Version Not Supported";
	case 507:
		return "507 Insufficient Storage";
	default:
		return "400 Bad Request";
	}
}
