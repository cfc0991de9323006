// SPDX-License-Identifier: BSD-2-Clause
/*
 * httpd.h - the small HTTP/1.x server under the --metrics and --control
 * listeners: a listener (TCP, or a unix stream socket), a thread of its
 * own with its own poll loop, off the workers' path, and a handler that
 * turns one request and its body into one answer. Requests are bounded
 * in size and time, and clients in number, so a slow or hostile client
 * costs this thread only; every answer ends the connection.
 */
#ifndef ECHOD_HTTPD_H
#define ECHOD_HTTPD_H

#include <stddef.h>

#include "net.h"

struct http_request;
struct httpd;

enum {
	HTTPD_MAX_CLIENTS = 16, /* more: the oldest is dropped */
	HTTPD_CLIENT_MS = 5000, /* to send a request and take the answer */
};

/* A handler's answer; httpd sends it, then frees body. */
struct httpd_reply {
	int status; /* 200 unless the handler says otherwise */
	const char *type; /* Content-Type; "text/plain" unless set */
	const char *allow; /* with 405: the Allow header's methods */
	char *body; /* malloc'd; NULL: the status line's words */
	size_t len;
};

/* What a listener takes, and who answers it. */
struct httpd_config {
	unsigned int methods; /* enum http_method bits; others get 405 */
	const char *allow; /* that 405's Allow header */
	size_t max_head; /* bytes of request line and headers */
	size_t max_body; /* bytes of a PUT or POST body (else 413) */
	/*
	 * Called on the server's thread with a parsed request, and for PUT
	 * and POST its whole body (Content-Length bytes; body[len] is NUL).
	 */
	void (*handle_cb)(void *arg, const struct http_request *r,
			  const char *body, size_t len,
			  struct httpd_reply *out);
	void *arg;
};

/*
 * Parses "127.0.0.1:9100", "[::1]:9100" (port 0: any). Returns 0 or
 * -EINVAL.
 */
int httpd_parse_addr(const char *text, union net_addr *a);

/*
 * Listens on a, before anything else is announced, so that a port in
 * use fails echod's start: stores the bound address in *bound and the
 * listener in *fd. Returns the server for httpd_start, or NULL with *err
 * set to a -errno.
 */
struct httpd *httpd_open(const union net_addr *a, union net_addr *bound,
			 int *fd, int *err);

/*
 * The same on a unix stream socket created at path with mode 0600 (the
 * file's mode is who may connect). A socket file nobody listens on is
 * replaced; any other file there is -EEXIST, a live one -EADDRINUSE.
 * httpd_stop removes the file.
 */
struct httpd *httpd_open_unix(const char *path, int *fd, int *err);

/*
 * Starts the thread serving h's listener as c says (c is copied).
 * Returns 0, or -errno after freeing h.
 */
int httpd_start(struct httpd *h, const struct httpd_config *c);

/* Stops the thread (if started), closes every socket and frees h. */
void httpd_stop(struct httpd *h);

#endif
