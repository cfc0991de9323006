// SPDX-License-Identifier: BSD-2-Clause
/* http.c - the --metrics listener's request line, and nothing else of HTTP. */
#include <string.h>

#include "http.h"

/* The next space-separated word of line[*at, end): its start and length. */
static const char *word(const char *line, size_t end, size_t *at, size_t *n)
{
	const char *w = line + *at;
	const char *sp = memchr(w, ' ', end - *at);

	*n = sp ? (size_t)(sp - w) : end - *at;
	*at += *n + (sp != NULL);
	return w;
}

int http_parse_request(const char *in, size_t len, bool complete,
		       struct http_request *r)
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
	r->head = nm == 4 && memcmp(method, "HEAD", 4) == 0;
	if (!r->head && !(nm == 3 && memcmp(method, "GET", 3) == 0))
		return 405;
	query = memchr(target, '?', nt);
	if (query)
		nt = (size_t)(query - target);
	if (nt >= sizeof(r->path))
		return 414;
	memcpy(r->path, target, nt);
	return 0;
}
