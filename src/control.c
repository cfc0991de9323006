// SPDX-License-Identifier: BSD-2-Clause
/*
 * control.c - the --control listener's answers: the fault set read and
 * changed over HTTP (control.h lists the requests; httpd.c serves them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fault.h"
#include "http.h"
#include "httpd.h"
#include "log.h"

enum {
	CONTROL_MAX_HEAD = 4096, /* bytes of request line and headers */
	/* The largest PUT: every fault of a full set at its longest. */
	CONTROL_MAX_BODY = FAULT_MAX * FAULT_SPEC_MAX,
};

#define UNIX_PREFIX "unix:"

/* Owned by main (control_open, control_stop); used by its thread. */
struct control {
	struct httpd *httpd;
	struct fault_registry *faults;
};

int control_check_addr(const char *text)
{
	union net_addr a;
	size_t n = strlen(UNIX_PREFIX);

	if (strncmp(text, UNIX_PREFIX, n) == 0)
		return text[n] ? 0 : -EINVAL;
	return httpd_parse_addr(text, &a);
}

struct control *control_open(const char *text, int *fd, int *err)
{
	struct control *c = calloc(1, sizeof(*c));
	size_t n = strlen(UNIX_PREFIX);
	union net_addr a, bound;

	*err = -ENOMEM;
	if (c == NULL)
		return NULL;
	if (strncmp(text, UNIX_PREFIX, n) == 0)
		c->httpd = httpd_open_unix(text + n, fd, err);
	else if ((*err = httpd_parse_addr(text, &a)) == 0)
		c->httpd = httpd_open(&a, &bound, fd, err);
	if (c->httpd == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

/* The status that answers a fault_* error. */
static int status_of(int err)
{
	switch (err) {
	case -EINVAL:
		return 400;
	case -ENOENT:
		return 404;
	case -EEXIST:
		return 409;
	case -ENOSPC:
		return 507;
	default:
		return 500;
	}
}

/* out: status, and a text body of one line (msg, else err's words). */
static void answer_error(struct httpd_reply *out, int err, const char *msg)
{
	out->status = status_of(err);
	if (msg == NULL || msg[0] == '\0')
		msg = err == -ENOSPC ? "more faults than a set holds"
				     : strerror(-err);
	if (asprintf(&out->body, "%s\n", msg) < 0)
		out->body = NULL;
	else
		out->len = strlen(out->body);
}

/* out: status and the current set as JSON. */
static void answer_set(struct control *c, struct httpd_reply *out, int status)
{
	struct fault_set *s = fault_acquire(c->faults);
	FILE *f = open_memstream(&out->body, &out->len);

	out->status = status;
	out->type = "application/json";
	if (f) {
		fault_set_json(s, f);
		fclose(f);
	} else {
		out->status = 500;
		out->type = NULL;
	}
	fault_release(s);
}

/*
 * The line of body at *at as a spec in spec (blanks around it taken
 * off); *at moves past it. Returns its length, or -1 when it does not
 * fit FAULT_SPEC_MAX.
 */
static int next_line(const char *body, size_t len, size_t *at, char *spec)
{
	const char *p = body + *at, *nl = memchr(p, '\n', len - *at);
	size_t n = nl ? (size_t)(nl - p) : len - *at;

	*at += n + (nl != NULL);
	while (n && strchr(" \t\r", p[n - 1]))
		n--;
	while (n && strchr(" \t", *p)) {
		p++;
		n--;
	}
	if (n >= FAULT_SPEC_MAX)
		return -1;
	memcpy(spec, p, n);
	spec[n] = '\0';
	return (int)n;
}

/*
 * Parses body's specs, one a line, into f[0, *n). Returns 0 or -errno
 * with one line in err.
 */
static int parse_specs(const char *body, size_t len, struct fault *f,
		       unsigned int *n, char *err, size_t errlen)
{
	char spec[FAULT_SPEC_MAX];
	size_t at = 0;
	int line = 0, r;

	*n = 0;
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "body: a NUL byte");
		return -EINVAL;
	}
	while (at < len) {
		line++;
		r = next_line(body, len, &at, spec);
		if (r < 0) {
			snprintf(err, errlen, "line %d: longer than %d bytes",
				 line, FAULT_SPEC_MAX - 1);
			return -EINVAL;
		}
		if (r == 0 || spec[0] == '#')
			continue;
		if (*n == FAULT_MAX) {
			snprintf(err, errlen, "more than %d faults", FAULT_MAX);
			return -ENOSPC;
		}
		r = fault_parse(spec, &f[*n], err, errlen);
		if (r < 0)
			return r;
		(*n)++;
	}
	return 0;
}

/* PUT /faults: the whole set, from the body. */
static void put_faults(struct control *c, const char *body, size_t len,
		       struct httpd_reply *out)
{
	struct fault *f = calloc(FAULT_MAX, sizeof(*f));
	char err[FAULT_SPEC_MAX + 128] = "";
	unsigned int n = 0;
	int r = f ? parse_specs(body, len, f, &n, err, sizeof(err)) : -ENOMEM;

	if (r == 0)
		r = fault_replace(c->faults, f, n, err, sizeof(err));
	free(f);
	if (r < 0) {
		answer_error(out, r, err);
		return;
	}
	log_info("control: PUT /faults: %u fault%s now", n, n == 1 ? "" : "s");
	answer_set(c, out, 200);
}

/* POST /faults: one spec, the body's one line, added. */
static void post_fault(struct control *c, const char *body, size_t len,
		       struct httpd_reply *out)
{
	char spec[FAULT_SPEC_MAX], err[FAULT_SPEC_MAX + 128] = "";
	struct fault f;
	size_t at = 0;
	int r = next_line(body, len, &at, spec);

	if (r <= 0 || at < len) {
		answer_error(
			out, -EINVAL,
			r < 0 ? "spec: too long"
			      : "expected one spec (PUT replaces the set)");
		return;
	}
	r = fault_parse(spec, &f, err, sizeof(err));
	if (r == 0)
		r = fault_add(c->faults, &f, err, sizeof(err));
	if (r < 0) {
		answer_error(out, r, err);
		return;
	}
	log_info("control: POST /faults: %s added", f.name);
	answer_set(c, out, 201);
}

/* /faults/NAME: DELETE only. */
static void delete_fault(struct control *c, const struct http_request *r,
			 struct httpd_reply *out)
{
	const char *name = r->path + strlen("/faults/");
	int err;

	if (r->method != HTTP_DELETE) {
		out->status = 405;
		out->allow = "DELETE";
		return;
	}
	err = fault_remove(c->faults, name);
	if (err < 0) {
		answer_error(out, err, err == -ENOENT ? "no such fault" : NULL);
		return;
	}
	log_info("control: DELETE /faults/%s", name);
	out->status = 204;
}

static void handle(void *arg, const struct http_request *r, const char *body,
		   size_t len, struct httpd_reply *out)
{
	struct control *c = arg;

	if (strncmp(r->path, "/faults/", 8) == 0 && r->path[8]) {
		delete_fault(c, r, out);
		return;
	}
	if (strcmp(r->path, "/faults") != 0) {
		out->status = 404;
		return;
	}
	switch (r->method) {
	case HTTP_GET:
	case HTTP_HEAD:
		answer_set(c, out, 200);
		break;
	case HTTP_PUT:
		put_faults(c, body, len, out);
		break;
	case HTTP_POST:
		post_fault(c, body, len, out);
		break;
	default:
		out->status = 405;
		out->allow = "GET, HEAD, PUT, POST";
	}
}

int control_start(struct control *c, struct fault_registry *r)
{
	const struct httpd_config cfg = {
		.methods = HTTP_GET | HTTP_HEAD | HTTP_PUT | HTTP_POST |
			   HTTP_DELETE,
		.allow = "GET, HEAD, PUT, POST, DELETE",
		.max_head = CONTROL_MAX_HEAD,
		.max_body = CONTROL_MAX_BODY,
		.handle_cb = handle,
		.arg = c,
	};
	int err;

	c->faults = r;
	err = httpd_start(c->httpd, &cfg);
	if (err < 0)
		free(c);
	return err;
}

void control_stop(struct control *c)
{
	httpd_stop(c->httpd);
	free(c);
}
