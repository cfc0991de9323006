// SPDX-License-Identifier: BSD-2-Clause
/*
 * btls.h - btls_: echobench's TLS client side (--tls), OpenSSL on the
 * non-blocking sockets of tcp_client.c. Built without OpenSSL, only
 * btls_ctx_new exists in earnest: it refuses --tls as a usage error.
 */
#ifndef ECHOBENCH_BTLS_H
#define ECHOBENCH_BTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bench_opts;
/* OpenSSL's SSL_CTX, SSL and SSL_SESSION, opaque here. */
struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;

/* What btls_read, btls_write and btls_handshake return short of success. */
enum btls_status {
	BTLS_WANT_READ = -1, /* wait until the socket is readable */
	BTLS_WANT_WRITE = -2, /* wait until it is writable */
	BTLS_EOF = -3, /* the server closed: close_notify or FIN */
	BTLS_FAILED = -4, /* the session is broken; btls_why says why */
};

/*
 * The client context of the run, shared by every thread (SSL_CTX is safe
 * for that), or NULL without --tls. TLS 1.3, 1.2 allowed unless
 * --tls-version pins one; ALPN "echo" offered; the server's certificate
 * verified against --tls-verify's CA file and the --sni name (default the
 * target's host), or not at all without --tls-verify. Exits 2 when built
 * without OpenSSL, 1 with one line if the CA file cannot be loaded.
 */
struct ssl_ctx_st *btls_ctx_new(const struct bench_opts *o);
void btls_ctx_free(struct ssl_ctx_st *ctx);

/*
 * A client session on connected socket fd, offering sess for resumption
 * when not NULL (the caller keeps its reference). NULL if out of memory.
 */
struct ssl_st *btls_new(struct ssl_ctx_st *ctx, const struct bench_opts *o,
			int fd, struct ssl_session_st *sess);

/* Steps the handshake: 1 done, or a negative enum btls_status. */
int btls_handshake(struct ssl_st *s);

/* Whether the handshake just done resumed a session; its TLS version. */
bool btls_resumed(struct ssl_st *s);
const char *btls_version(struct ssl_st *s);

/* Whether decrypted or raw bytes wait inside s, beyond the socket's. */
bool btls_pending(struct ssl_st *s);

/*
 * SSL_read and SSL_write: bytes moved (> 0), or a negative enum
 * btls_status; BTLS_FAILED leaves errno set when the socket failed (0 if
 * TLS did). A write that returned BTLS_WANT_* is repeated with the same
 * bytes (the same len, from the same place of the stream).
 */
ssize_t btls_read(struct ssl_st *s, void *buf, size_t len);
ssize_t btls_write(struct ssl_st *s, const void *buf, size_t len);

/*
 * Why the last BTLS_FAILED happened, in buf: the certificate check, the
 * TLS alert or error, or the socket's errno; hints at a server that is not
 * TLS. Clears this thread's OpenSSL error queue.
 */
const char *btls_why(struct ssl_st *s, int e, char *buf, size_t len);

/*
 * Ends s and frees it. clean: the session worked, send close_notify (not
 * waiting for the server's). keep: when not NULL and the session may be
 * resumed, it replaces *keep (the old reference dropped) for the next
 * connection's btls_new.
 */
void btls_close(struct ssl_st *s, bool clean, struct ssl_session_st **keep);
void btls_session_free(struct ssl_session_st *sess);

#endif
