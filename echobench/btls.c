// SPDX-License-Identifier: BSD-2-Clause
/*
 * btls.c - echobench's TLS client side (--tls) on OpenSSL 3.
 *
 * Each connection's SSL sits on its non-blocking socket (a socket BIO) and
 * is stepped by tcp_client.c's edge-triggered loop: every call may answer
 * "want read" or "want write", a write that wants to read included. The
 * context reads ahead, so that a record comes in one recv(2) rather than
 * a header and then a body; what it read ahead waits inside the SSL
 * (btls_pending), and the loop reads until OpenSSL wants the socket again.
 * Buffers stay with their SSL (no SSL_MODE_RELEASE_BUFFERS): nothing is
 * allocated per echo, only per connection, in SSL_new and the handshake.
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "btls.h"
#include "opts.h"

#ifdef HAVE_OPENSSL

static const unsigned char alpn[] = "\x04"
				    "echo";

/* --tls-verify: the CA file, and the name checked in the certificate. */
static void set_verify(SSL_CTX *ctx, const struct bench_opts *o)
{
	X509_VERIFY_PARAM *p = SSL_CTX_get0_param(ctx);
	const char *name = o->sni ? o->sni : o->host;
	unsigned long e;

	if (!o->tls_ca) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return;
	}
	if (!SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL)) {
		e = ERR_get_error();
		/* Freed first, so that a leak checker sees the exit clean. */
		SSL_CTX_free(ctx);
		errx(1, "tls-verify %s: %s", o->tls_ca,
		     e ? ERR_reason_error_string(e) : "cannot be loaded");
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* An address is checked against the certificate's IP names. */
	if (X509_VERIFY_PARAM_set1_ip_asc(p, name) != 1 &&
	    !X509_VERIFY_PARAM_set1_host(p, name, 0))
		errx(1, "tls-verify: name %s: out of memory", name);
}

struct ssl_ctx_st *btls_ctx_new(const struct bench_opts *o)
{
	int v = o->tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX *ctx;

	if (!o->tls)
		return NULL;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		errx(1, "SSL_CTX_new: out of memory");
	SSL_CTX_set_min_proto_version(ctx, o->tls_version ? v : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, o->tls_version ? v : TLS1_3_VERSION);
	/*
	 * A FIN without close_notify is an end like any other for an echo
	 * server; moving buffers: a write is repeated from the pattern table
	 * at the same stream position, not always the same address.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1))
		errx(1, "SSL_CTX_set_alpn_protos: out of memory");
	set_verify(ctx, o);
	return ctx;
}

void btls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

struct ssl_st *btls_new(struct ssl_ctx_st *ctx, const struct bench_opts *o,
			int fd, struct ssl_session_st *sess)
{
	SSL *s = SSL_new(ctx);

	if (!s)
		return NULL;
	/* RFC 6066: no address as a server name; --sni sends one anyway. */
	if (!SSL_set_fd(s, fd) ||
	    (o->sni_send && !SSL_set_tlsext_host_name(s, o->sni_send)) ||
	    (sess && !SSL_set_session(s, sess))) {
		SSL_free(s);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(s);
	return s;
}

/*
 * The status of a call that returned r <= 0. After a fatal error no
 * close_notify may be sent: the session shuts down quietly.
 */
static int status(SSL *s, int r)
{
	switch (SSL_get_error(s, r)) {
	case SSL_ERROR_WANT_READ:
		return BTLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return BTLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return BTLS_EOF;
	case SSL_ERROR_SYSCALL:
		if (!errno && !ERR_peek_error())
			return BTLS_EOF;
		break;
	case SSL_ERROR_SSL:
		errno = 0;
		break;
	default:
		break;
	}
	SSL_set_quiet_shutdown(s, 1);
	return BTLS_FAILED;
}

int btls_handshake(struct ssl_st *s)
{
	int r;

	errno = 0;
	r = SSL_do_handshake(s);
	return r == 1 ? 1 : status(s, r);
}

bool btls_resumed(struct ssl_st *s)
{
	return SSL_session_reused(s);
}

const char *btls_version(struct ssl_st *s)
{
	return SSL_get_version(s);
}

bool btls_pending(struct ssl_st *s)
{
	return SSL_has_pending(s);
}

ssize_t btls_read(struct ssl_st *s, void *buf, size_t len)
{
	size_t n;
	int r;

	errno = 0;
	r = SSL_read_ex(s, buf, len, &n);
	return r == 1 ? (ssize_t)n : status(s, r);
}

ssize_t btls_write(struct ssl_st *s, const void *buf, size_t len)
{
	size_t n;
	int r;

	errno = 0;
	r = SSL_write_ex(s, buf, len, &n);
	return r == 1 ? (ssize_t)n : status(s, r);
}

/*
 * Records that are no TLS: a plain echo server sends the ClientHello
 * back, which is a handshake record, but not the message expected.
 */
static bool not_tls(int reason)
{
	return reason == SSL_R_WRONG_VERSION_NUMBER ||
	       reason == SSL_R_UNEXPECTED_MESSAGE ||
	       reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
	       reason == SSL_R_RECORD_LENGTH_MISMATCH ||
	       reason == SSL_R_HTTP_REQUEST;
}

const char *btls_why(struct ssl_st *s, int e, char *buf, size_t len)
{
	unsigned long err = ERR_get_error();
	long v = SSL_get_verify_result(s);
	const char *what;

	ERR_clear_error();
	if (v != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
		return buf;
	}
	if (!err) {
		snprintf(buf, len, "%s", e ? strerror(e) : "closed");
		return buf;
	}
	what = ERR_reason_error_string(err);
	snprintf(buf, len, "%s%s", what ? what : "TLS error",
		 not_tls(ERR_GET_REASON(err)) ? " (not a TLS server?)" : "");
	return buf;
}

void btls_close(struct ssl_st *s, bool clean, struct ssl_session_st **keep)
{
	SSL_SESSION *sess;

	if (!clean)
		SSL_set_quiet_shutdown(s, 1);
	/* One try: close_notify goes out if the socket takes it. */
	SSL_shutdown(s);
	if (keep && clean && (sess = SSL_get1_session(s))) {
		if (SSL_SESSION_is_resumable(sess)) {
			SSL_SESSION_free(*keep);
			*keep = sess;
		} else {
			SSL_SESSION_free(sess);
		}
	}
	SSL_free(s);
	ERR_clear_error();
}

void btls_session_free(struct ssl_session_st *sess)
{
	SSL_SESSION_free(sess);
}

#else /* !HAVE_OPENSSL */

struct ssl_ctx_st *btls_ctx_new(const struct bench_opts *o)
{
	if (o->tls)
		errx(2, "--tls: not available (built without libssl)");
	return NULL;
}

/* Never reached: without a context no connection has a session. */
void btls_ctx_free(struct ssl_ctx_st *ctx)
{
	(void)ctx;
}

struct ssl_st *btls_new(struct ssl_ctx_st *ctx, const struct bench_opts *o,
			int fd, struct ssl_session_st *sess)
{
	(void)ctx, (void)o, (void)fd, (void)sess;
	return NULL;
}

int btls_handshake(struct ssl_st *s)
{
	(void)s;
	return BTLS_FAILED;
}

bool btls_resumed(struct ssl_st *s)
{
	(void)s;
	return false;
}

const char *btls_version(struct ssl_st *s)
{
	(void)s;
	return "none";
}

bool btls_pending(struct ssl_st *s)
{
	(void)s;
	return false;
}

ssize_t btls_read(struct ssl_st *s, void *buf, size_t len)
{
	(void)s, (void)buf, (void)len;
	return BTLS_FAILED;
}

ssize_t btls_write(struct ssl_st *s, const void *buf, size_t len)
{
	(void)s, (void)buf, (void)len;
	return BTLS_FAILED;
}

const char *btls_why(struct ssl_st *s, int e, char *buf, size_t len)
{
	(void)s, (void)e;
	snprintf(buf, len, "built without libssl");
	return buf;
}

void btls_close(struct ssl_st *s, bool clean, struct ssl_session_st **keep)
{
	(void)s, (void)clean, (void)keep;
}

void btls_session_free(struct ssl_session_st *sess)
{
	(void)sess;
}

#endif /* HAVE_OPENSSL */
