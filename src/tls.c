// SPDX-License-Identifier: BSD-2-Clause
/*
 * tls.c - tls.h over OpenSSL 3: the server's SSL_CTX (swapped whole on
 * reload), and one SSL per accepted socket, stepped without blocking. A
 * build without libssl gets stubs that say so.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#include "tls.h"

#ifdef HAVE_OPENSSL

/*
 * Owned by main(). ctx is the one new connections take; the mutex guards
 * the pointer only (OpenSSL counts the references), so that reload can
 * swap it while workers accept. The settings' strings are copies, read
 * again at each reload.
 */
struct tls_server {
	pthread_mutex_t lock;
	SSL_CTX *ctx;
	struct tls_settings set;
	char *cert, *key, *ciphers; /* set's strings, owned */
};

/* Owned by the core's connection; freed with it. */
struct tls_conn {
	SSL *ssl;
	bool failed; /* a fatal error: no close_notify may follow */
	bool shut; /* close_notify sent (or tried) */
	char err[160];
};

/* ALPN: the one protocol we speak, in the wire's length-prefixed form. */
static const unsigned char alpn_echo[] = "\x04"
					 "echo";
/* Names the cache's sessions as this server's (32 bytes at most). */
static const unsigned char session_context[] = "echod";

bool tls_available(const char **why)
{
	*why = NULL;
	return true;
}

/*
 * The reason of OpenSSL's earliest queued error (the most specific one:
 * "no start line" before "PEM lib"), in buf; the queue is emptied.
 */
static void take_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r = ERR_reason_error_string(e);

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else if (ERR_SYSTEM_ERROR(e))
		snprintf(buf, len, "%s", strerror(ERR_GET_REASON(e)));
	else if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* "FILE: reason" from OpenSSL's queue, into err; returns -1. */
static int fail(const char *what, char *err, size_t errlen)
{
	char reason[128];

	take_reason(reason, sizeof(reason));
	snprintf(err, errlen, "%s: %s", what, reason);
	return -1;
}

static int select_alpn(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	/*
	 * out points into one of the lists, never written through: the cast
	 * only meets SSL_select_next_proto's older signature.
	 */
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_echo,
				  sizeof(alpn_echo) - 1, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* no ALPN, not a refusal */
	return SSL_TLSEXT_ERR_OK;
}

/*
 * --tls-ciphers is one colon-separated list for both versions: names
 * starting "TLS_" are TLS 1.3 suites (SSL_CTX_set_ciphersuites), the rest
 * TLS 1.2's cipher string (SSL_CTX_set_cipher_list). A version given
 * none keeps OpenSSL's defaults.
 */
static int set_ciphers(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
	size_t len = strlen(list) + 1;
	char *v12 = calloc(2, len), *v13, *save = NULL, *tok;
	char *copy = strdup(list);
	int r = 0;

	if (v12 == NULL || copy == NULL) {
		snprintf(err, errlen, "ciphers: %s", strerror(ENOMEM));
		r = -1;
		goto out;
	}
	v13 = v12 + len;
	for (tok = strtok_r(copy, ":", &save); tok;
	     tok = strtok_r(NULL, ":", &save)) {
		char *to = strncmp(tok, "TLS_", 4) == 0 ? v13 : v12;

		if (*to)
			strcat(to, ":");
		strcat(to, tok);
	}
	if ((*v12 && !SSL_CTX_set_cipher_list(ctx, v12)) ||
	    (*v13 && !SSL_CTX_set_ciphersuites(ctx, v13))) {
		char what[96];

		snprintf(what, sizeof(what), "ciphers %.80s", list);
		r = fail(what, err, errlen);
	}
out:
	free(copy);
	free(v12);
	return r;
}

/* The certificate chain and its key, which must match; 0 or -1 + err. */
static int load_pair(SSL_CTX *ctx, const struct tls_settings *s, char *err,
		     size_t errlen)
{
	if (!SSL_CTX_use_certificate_chain_file(ctx, s->cert))
		return fail(s->cert, err, errlen);
	if (!SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM))
		return fail(s->key, err, errlen);
	if (!SSL_CTX_check_private_key(ctx))
		return fail(s->key, err, errlen);
	return 0;
}

/*
 * Modes: partial writes, since the core takes what the socket takes; a
 * moving buffer, since its queue slides between retries; released
 * buffers, so that an idle connection gives back its 32 KiB.
 */
static void set_modes(SSL_CTX *ctx)
{
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/*
	 * kTLS where the kernel has the tls module (OpenSSL falls back to
	 * its own records where not); no renegotiation, which only a
	 * client-certificate server needs and attackers like.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION);
	/* Resumption: tickets (on by default) and a server-side cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, session_context,
				       sizeof(session_context) - 1);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
}

/* A complete context from s: NULL with "FILE: reason" in err. */
static SSL_CTX *build_ctx(const struct tls_settings *s, char *err,
			  size_t errlen)
{
	SSL_CTX *ctx;
	int min = s->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		fail("context", err, errlen);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min)) {
		fail("min version", err, errlen);
		goto out_free;
	}
	if (s->ciphers && set_ciphers(ctx, s->ciphers, err, errlen) < 0)
		goto out_free;
	if (load_pair(ctx, s, err, errlen) < 0)
		goto out_free;
	set_modes(ctx);
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

static void free_settings(struct tls_server *srv)
{
	free(srv->cert);
	free(srv->key);
	free(srv->ciphers);
	free(srv);
}

/* srv's own copy of s, so that the caller's strings may go. */
static int copy_settings(struct tls_server *srv, const struct tls_settings *s)
{
	srv->cert = strdup(s->cert);
	srv->key = strdup(s->key);
	srv->ciphers = s->ciphers ? strdup(s->ciphers) : NULL;
	srv->set = (struct tls_settings){
		.cert = srv->cert,
		.key = srv->key,
		.ciphers = srv->ciphers,
		.min_version = s->min_version,
	};
	if (!srv->cert || !srv->key || (s->ciphers && !srv->ciphers))
		return -ENOMEM;
	return 0;
}

struct tls_server *tls_server_new(const struct tls_settings *s, char *err,
				  size_t errlen)
{
	struct tls_server *srv = calloc(1, sizeof(*srv));
	char why[256];

	if (srv == NULL || copy_settings(srv, s) < 0) {
		snprintf(err, errlen, "tls: %s", strerror(ENOMEM));
		if (srv)
			free_settings(srv);
		return NULL;
	}
	srv->ctx = build_ctx(&srv->set, why, sizeof(why));
	if (srv->ctx == NULL) {
		snprintf(err, errlen, "tls: %s", why);
		free_settings(srv);
		return NULL;
	}
	pthread_mutex_init(&srv->lock, NULL);
	return srv;
}

int tls_server_reload(struct tls_server *s, char *err, size_t errlen)
{
	SSL_CTX *ctx, *old;
	char why[256];

	/* Built outside the lock: reading files must not stall accepts. */
	ctx = build_ctx(&s->set, why, sizeof(why));
	if (ctx == NULL) {
		snprintf(err, errlen, "tls: reload: %s", why);
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	old = s->ctx;
	s->ctx = ctx;
	pthread_mutex_unlock(&s->lock);
	/* Open sessions hold their own references to the old context. */
	SSL_CTX_free(old);
	return 0;
}

void tls_server_free(struct tls_server *s)
{
	if (s == NULL)
		return;
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->lock);
	free_settings(s);
}

struct tls_conn *tls_conn_new(struct tls_server *s, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	SSL_CTX *ctx;

	if (t == NULL)
		return NULL;
	/*
	 * A reference taken under the lock, so that a reload freeing the
	 * old context meanwhile cannot free it under SSL_new.
	 */
	pthread_mutex_lock(&s->lock);
	ctx = s->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&s->lock);
	t->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	if (t->ssl == NULL || !SSL_set_fd(t->ssl, fd)) {
		ERR_clear_error();
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* What an end of stream means to the caller of a step. */
enum eof_meaning {
	EOF_IS_ZERO, /* reading: the peer is done, as a plain read's 0 */
	EOF_IS_RESET, /* handshaking or writing: cut short */
};

/*
 * Maps a failed SSL call (its return r, errno as it left it) to tls.h's
 * answers. OpenSSL 3 reports a bare FIN as SSL_ERROR_SSL "unexpected eof
 * while reading", older ones as SSL_ERROR_SYSCALL with errno 0: both are
 * how many clients end, so neither is an error.
 */
static int step_error(struct tls_conn *t, int r, int err, unsigned int *want,
		      enum eof_meaning eof)
{
	unsigned long e;

	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = TLS_WANT_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = TLS_WANT_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return eof == EOF_IS_ZERO ? 0 : -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		t->failed = true;
		ERR_clear_error();
		if (err)
			return -err;
		return eof == EOF_IS_ZERO ? 0 : -ECONNRESET;
	}
	t->failed = true;
	e = ERR_peek_error();
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return eof == EOF_IS_ZERO ? 0 : -ECONNRESET;
	}
	take_reason(t->err, sizeof(t->err));
	return -EPROTO;
}

int tls_conn_handshake(struct tls_conn *t, unsigned int *want)
{
	int r;

	*want = 0;
	/* A stale error would be taken for this call's: start clean. */
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return 0;
	return step_error(t, r, errno, want, EOF_IS_RESET);
}

/*
 * n must not be 0: 0 means the peer's end. Returns as tls.h says; an end
 * without close_notify is 0 too (a bare FIN is how many clients end).
 */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t n,
		      unsigned int *want)
{
	size_t got = 0;
	int r;

	*want = 0;
	if (n == 0)
		return -EINVAL;
	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(t->ssl, buf, n, &got);
	if (r == 1)
		return (ssize_t)got;
	return step_error(t, r, errno, want, EOF_IS_ZERO);
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t n,
		       unsigned int *want)
{
	size_t put = 0;
	int r;

	*want = 0;
	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(t->ssl, buf, n, &put);
	if (r == 1)
		return (ssize_t)put;
	return step_error(t, r, errno, want, EOF_IS_RESET);
}

void tls_conn_close_notify(struct tls_conn *t)
{
	/*
	 * Once, and only on a session that is up: after a fatal error
	 * OpenSSL forbids it, and before the handshake there is nothing
	 * to close. Whether it all went out is not waited for.
	 */
	if (t->shut || t->failed || !SSL_is_init_finished(t->ssl))
		return;
	t->shut = true;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t->err;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	const char *c;

	if (!SSL_is_init_finished(t->ssl))
		return "";
	c = SSL_get_cipher_name(t->ssl);
	return c ? c : "";
}

bool tls_conn_resumed(const struct tls_conn *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

/* True when the kernel does either direction's records. */
bool tls_conn_ktls(const struct tls_conn *t)
{
	return BIO_get_ktls_send(SSL_get_wbio(t->ssl)) > 0 ||
	       BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) > 0;
}

#else /* !HAVE_OPENSSL */

/*
 * A build without libssl keeps the interface, so that the core compiles
 * alike; main never makes a server, so nothing below tls_server_new runs.
 */
#define TLS_ABSENT "not compiled in (built without libssl)"

bool tls_available(const char **why)
{
	*why = TLS_ABSENT;
	return false;
}

struct tls_server *tls_server_new(const struct tls_settings *s, char *err,
				  size_t errlen)
{
	(void)s;
	snprintf(err, errlen, "tls: " TLS_ABSENT);
	return NULL;
}

int tls_server_reload(struct tls_server *s, char *err, size_t errlen)
{
	(void)s;
	snprintf(err, errlen, "tls: " TLS_ABSENT);
	return -1;
}

void tls_server_free(struct tls_server *s)
{
	(void)s;
}

struct tls_conn *tls_conn_new(struct tls_server *s, int fd)
{
	(void)s;
	(void)fd;
	return NULL;
}

void tls_conn_free(struct tls_conn *t)
{
	(void)t;
}

int tls_conn_handshake(struct tls_conn *t, unsigned int *want)
{
	(void)t;
	*want = 0;
	return -ENOSYS;
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t n,
		      unsigned int *want)
{
	(void)t;
	(void)buf;
	(void)n;
	*want = 0;
	return -ENOSYS;
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t n,
		       unsigned int *want)
{
	(void)t;
	(void)buf;
	(void)n;
	*want = 0;
	return -ENOSYS;
}

void tls_conn_close_notify(struct tls_conn *t)
{
	(void)t;
}

const char *tls_conn_error(const struct tls_conn *t)
{
	(void)t;
	return TLS_ABSENT;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	(void)t;
	return "";
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	(void)t;
	return "";
}

bool tls_conn_resumed(const struct tls_conn *t)
{
	(void)t;
	return false;
}

bool tls_conn_ktls(const struct tls_conn *t)
{
	(void)t;
	return false;
}

#endif
