// SPDX-License-Identifier: BSD-2-Clause
/*
 * httpd.c - the bounded HTTP/1.x server of --metrics and --control: one
 * poll loop over a listener and at most HTTPD_MAX_CLIENTS clients, each
 * with a deadline from its connect, a bounded request (head and body)
 * and one answer followed by a lingering close.
 */
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "http.h"
#include "httpd.h"
#include "number.h"

/* One HTTP client: its request so far, then its answer being sent. */
struct client {
	int fd; /* -1: a free place */
	uint64_t until_ms; /* dropped then, done or not */
	char *in; /* max_head + max_body bytes, httpd's for good */
	size_t inlen;
	char *out; /* the whole answer, once the request is complete */
	size_t outlen, outoff;
	bool answered; /* all sent: what more comes is read and dropped */
};

/* Owned by its opener (httpd_open, then httpd_stop); used by its thread. */
struct httpd {
	int lfd, stop_fd;
	bool started;
	char *unix_path; /* the socket file to remove at the end, or NULL */
	struct httpd_config c;
	char *buffers; /* the clients' in, one block */
	pthread_t thread;
	struct client clients[HTTPD_MAX_CLIENTS];
};

int httpd_parse_addr(const char *text, union net_addr *a)
{
	const char *colon = strrchr(text, ':'), *errstr;
	char host[NET_ADDR_TEXT];
	size_t n;
	long long port;

	if (colon == NULL || colon == text)
		return -EINVAL;
	n = (size_t)(colon - text);
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	port = number_parse(colon + 1, 0, 65535, &errstr);
	if (errstr)
		return -EINVAL;
	return net_parse_addr(host, (unsigned int)port, a);
}

static void drop(struct client *c)
{
	char *in = c->in;

	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->in = in;
}

/* Takes a new client; with every place taken the oldest makes room. */
static void take_client(struct httpd *h)
{
	struct client *c = NULL, *oldest = &h->clients[0];
	int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < HTTPD_MAX_CLIENTS && c == NULL; i++) {
		if (h->clients[i].fd < 0)
			c = &h->clients[i];
		else if (h->clients[i].until_ms < oldest->until_ms)
			oldest = &h->clients[i];
	}
	if (c == NULL) {
		drop(oldest);
		c = oldest;
	}
	c->fd = fd;
	c->until_ms = core_now_ms() + HTTPD_CLIENT_MS;
}

/* Writes r (its body freed here) as c's whole answer. */
static void reply(struct client *c, const struct httpd_reply *r, bool head)
{
	const char *status = http_status_text(r->status);
	size_t len = r->body ? r->len : strlen(status) + 1;
	FILE *f = open_memstream(&c->out, &c->outlen);

	if (f == NULL) {
		free(r->body);
		return;
	}
	fprintf(f, "HTTP/1.1 %s\r\n", status);
	/* 204 has neither body nor length (RFC 9110 8.6). */
	if (r->status != 204)
		fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			r->type ? r->type : "text/plain", len);
	if (r->allow)
		fprintf(f, "Allow: %s\r\n", r->allow);
	fputs("Connection: close\r\n\r\n", f);
	/* HEAD: the headers GET would have, Content-Length included. */
	if (r->body && !head)
		fwrite(r->body, 1, r->len, f);
	else if (!head && r->status != 204)
		fprintf(f, "%s\n", status);
	fclose(f);
	free(r->body);
}

/* Answers c with code alone (a refusal); 405 names what is allowed. */
static void refuse(struct httpd *h, struct client *c, int code)
{
	struct httpd_reply r = {.status = code};

	if (code == 405)
		r.allow = h->c.allow;
	reply(c, &r, false);
}

/*
 * The body c's PUT or POST announces, once its head (head bytes) is in:
 * 0 with *len when it fits, else the status that refuses it.
 */
static int body_length(struct httpd *h, struct client *c, size_t head,
		       size_t *len)
{
	long long n;
	int code = http_content_length(c->in, head, &n);

	if (code)
		return code;
	if (n < 0)
		return 411;
	if ((unsigned long long)n > h->c.max_body)
		return 413;
	*len = (size_t)n;
	return 0;
}

/*
 * Looks at what c has sent: refuses it, waits for more, or hands the
 * whole request to the handler.
 */
static void consider(struct httpd *h, struct client *c)
{
	size_t head = http_head_length(c->in, c->inlen), len = 0;
	struct httpd_reply r = {.status = 200};
	struct http_request req;
	int code;

	if (head == 0 || head > h->c.max_head - 1) {
		if (c->inlen >= h->c.max_head - 1)
			refuse(h, c, 431);
		return;
	}
	code = http_parse_request(c->in, head, true, h->c.methods, &req);
	if (code == 0 && (req.method & (HTTP_PUT | HTTP_POST)))
		code = body_length(h, c, head, &len);
	if (code) {
		refuse(h, c, code);
		return;
	}
	if (c->inlen < head + len)
		return;
	c->in[head + len] = '\0';
	h->c.handle_cb(h->c.arg, &req, c->in + head, len, &r);
	reply(c, &r, req.head);
}

/* c is readable: reads what came; answers once the request is in. */
static void handle_read(struct httpd *h, struct client *c)
{
	size_t room = h->c.max_head + h->c.max_body - 1 - c->inlen;
	ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	if (c->answered)
		return;
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	consider(h, c);
}

/* c's answer is being sent: sends what the socket takes. */
static void handle_write(struct client *c)
{
	ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		drop(c);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen)
		return;
	/*
	 * A close with unread request bytes (an oversized header cut at
	 * 431, a body refused at 413) would reset the connection, and the
	 * client might lose the answer: our FIN first, then read until the
	 * client's, within the client's time (HTTPD_CLIENT_MS from its
	 * connect).
	 */
	shutdown(c->fd, SHUT_WR);
	free(c->out);
	c->out = NULL;
	c->answered = true;
	c->inlen = 0;
}

/* The poll set: stop_fd, the listener, then each client in place. */
static int poll_set(struct httpd *h, struct pollfd *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	struct client *c;

	p[0] = (struct pollfd){.fd = h->stop_fd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = h->lfd, .events = POLLIN};
	for (int i = 0; i < HTTPD_MAX_CLIENTS; i++) {
		c = &h->clients[i];
		p[i + 2] = (struct pollfd){.fd = c->fd,
					   .events = c->out ? POLLOUT : POLLIN};
		if (c->fd >= 0 && c->until_ms < next)
			next = c->until_ms;
	}
	if (next == UINT64_MAX)
		return -1;
	return next > now ? (int)(next - now) : 0;
}

static void *httpd_main(void *arg)
{
	struct pollfd p[HTTPD_MAX_CLIENTS + 2];
	struct httpd *h = arg;
	struct client *c;
	uint64_t now;

	for (;;) {
		if (poll(p, 2 + HTTPD_MAX_CLIENTS,
			 poll_set(h, p, core_now_ms())) < 0 &&
		    errno != EINTR)
			break;
		if (p[0].revents)
			break;
		now = core_now_ms();
		for (int i = 0; i < HTTPD_MAX_CLIENTS; i++) {
			c = &h->clients[i];
			if (c->fd >= 0 && p[i + 2].revents)
				c->out ? handle_write(c) : handle_read(h, c);
			if (c->fd >= 0 && c->until_ms <= now)
				drop(c);
		}
		if (p[1].revents & POLLIN)
			take_client(h);
	}
	return NULL;
}

static void httpd_free(struct httpd *h)
{
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	/* Ours, made at open: a later echod finds no stale file. */
	if (h->unix_path)
		unlink(h->unix_path);
	free(h->unix_path);
	free(h->buffers);
	free(h);
}

/* A server without its listener yet; NULL when out of memory. */
static struct httpd *httpd_new(int *err)
{
	struct httpd *h = calloc(1, sizeof(*h));

	*err = -ENOMEM;
	if (h == NULL)
		return NULL;
	h->lfd = -1;
	for (int i = 0; i < HTTPD_MAX_CLIENTS; i++)
		h->clients[i].fd = -1;
	h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*err = h->stop_fd < 0 ? -errno : 0;
	if (*err == 0)
		return h;
	httpd_free(h);
	return NULL;
}

struct httpd *httpd_open(const union net_addr *a, union net_addr *bound,
			 int *fd, int *err)
{
	struct httpd *h = httpd_new(err);

	if (h == NULL)
		return NULL;
	h->lfd = net_listen_tcp(a, 64, 0, bound);
	if (h->lfd < 0) {
		*err = h->lfd;
		httpd_free(h);
		return NULL;
	}
	*fd = h->lfd;
	return h;
}

/*
 * Clears the way for a socket at path: nothing there, or a socket file
 * whose listener is gone (removed). Returns 0, -EEXIST for any other
 * file, -EADDRINUSE when something answers there, or -errno.
 */
static int clear_path(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, err = 0;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0)
		err = -EADDRINUSE;
	else if (errno != ECONNREFUSED)
		err = -errno;
	close(fd);
	if (err == 0 && unlink(sun->sun_path) < 0)
		err = -errno;
	return err;
}

/* A listening unix socket at sun, mode 0600; fd or -errno. */
static int listen_unix(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int err = clear_path(sun);
	mode_t old;

	if (fd < 0 || err < 0) {
		err = fd < 0 ? -errno : err;
		goto out_close;
	}
	/*
	 * The file is made by bind with 0777 & ~umask: a umask of 0177
	 * makes it 0600 from its first moment, where a chmod after bind
	 * would leave a window. No other thread runs yet (echod's start).
	 */
	old = umask(0177);
	err = bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0 ? -errno
								       : 0;
	umask(old);
	if (err == 0 && listen(fd, 64) < 0) {
		err = -errno;
		unlink(sun->sun_path);
	}
	if (err == 0)
		return fd;
out_close:
	if (fd >= 0)
		close(fd);
	return err;
}

struct httpd *httpd_open_unix(const char *path, int *fd, int *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct httpd *h;

	*err = -ENAMETOOLONG;
	if (strlen(path) >= sizeof(sun.sun_path))
		return NULL;
	strcpy(sun.sun_path, path);
	h = httpd_new(err);
	if (h == NULL)
		return NULL;
	h->lfd = listen_unix(&sun);
	if (h->lfd < 0) {
		*err = h->lfd;
		httpd_free(h);
		return NULL;
	}
	h->unix_path = strdup(path);
	*fd = h->lfd;
	return h;
}

int httpd_start(struct httpd *h, const struct httpd_config *c)
{
	size_t cap = c->max_head + c->max_body;
	int err;

	h->c = *c;
	h->buffers = malloc(cap * HTTPD_MAX_CLIENTS);
	if (h->buffers == NULL) {
		httpd_free(h);
		return -ENOMEM;
	}
	for (int i = 0; i < HTTPD_MAX_CLIENTS; i++)
		h->clients[i].in = h->buffers + (size_t)i * cap;
	err = -pthread_create(&h->thread, NULL, httpd_main, h);
	if (err < 0)
		httpd_free(h);
	else
		h->started = true;
	return err;
}

void httpd_stop(struct httpd *h)
{
	if (h->started && eventfd_write(h->stop_fd, 1) == 0)
		pthread_join(h->thread, NULL);
	for (int i = 0; i < HTTPD_MAX_CLIENTS; i++)
		if (h->clients[i].fd >= 0)
			drop(&h->clients[i]);
	httpd_free(h);
}
