// SPDX-License-Identifier: BSD-2-Clause
/*
 * tls.h - TLS for echod's --tls-port listeners, over OpenSSL 3: the
 * server's certificate and settings (reloadable on SIGHUP, for new
 * connections), and one connection's session on its non-blocking socket,
 * stepped by the core as the socket is ready. A build without libssl
 * keeps this interface: tls_available() is false and nothing is served.
 */
#ifndef ECHOD_TLS_H
#define ECHOD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a step that could not finish waits for (enum bits). */
enum tls_want {
	TLS_WANT_READ = 1 << 0,
	TLS_WANT_WRITE = 1 << 1,
};

/* The settings, from the command line (options.h keeps the text). */
struct tls_settings {
	const char *cert; /* PEM: the certificate, then its chain */
	const char *key; /* PEM: its private key */
	const char *ciphers; /* TLS 1.2's cipher list (and 1.3's suites); or
				NULL for OpenSSL's defaults */
	int min_version; /* 12 or 13 */
};

struct tls_server;
struct tls_conn;

/* Whether this build has TLS (libssl); else why not, in *why. */
bool tls_available(const char **why);

/*
 * Loads the certificate and key (they must match), the minimum version,
 * the ciphers, ALPN ("echo" chosen when the client offers it), session
 * tickets for resumption, and kTLS where the kernel has it. Returns NULL
 * with one line in err ("tls: cert.pem: no such file").
 */
struct tls_server *tls_server_new(const struct tls_settings *s, char *err,
				  size_t errlen);

/*
 * SIGHUP: loads the files again; connections accepted from now on use
 * the new pair, open ones keep theirs. A bad new pair keeps the old one:
 * returns -1 with the reason in err; 0 on success. Thread-safe against
 * tls_conn_new.
 */
int tls_server_reload(struct tls_server *s, char *err, size_t errlen);

void tls_server_free(struct tls_server *s);

/*
 * A session for accepted socket fd (non-blocking), server side, on the
 * current certificate. NULL when out of memory.
 */
struct tls_conn *tls_conn_new(struct tls_server *s, int fd);
void tls_conn_free(struct tls_conn *t);

/*
 * One step of the handshake: 0 when it is done, -EAGAIN with *want set
 * when the socket must be ready first, -EPROTO when it failed (the peer
 * spoke no TLS, or nothing we accept: tls_conn_error says what), or
 * another -errno from the socket.
 */
int tls_conn_handshake(struct tls_conn *t, unsigned int *want);

/*
 * Reads plaintext: the bytes read, 0 at the peer's close (close_notify
 * or a bare FIN), -EAGAIN with *want, or -EPROTO / -errno. Bytes already
 * decrypted and buffered come first: call again until -EAGAIN.
 */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t n,
		      unsigned int *want);

/*
 * Writes plaintext: the bytes taken (maybe fewer than n), -EAGAIN with
 * *want, or -EPROTO / -errno. buf may move between calls (the queue
 * slides), and a retry may offer more or fewer bytes.
 */
ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t n,
		       unsigned int *want);

/* Sends our close_notify, once, without waiting for the peer's. */
void tls_conn_close_notify(struct tls_conn *t);

/* The last failure in words ("wrong version number"), for the log. */
const char *tls_conn_error(const struct tls_conn *t);

/* "TLSv1.3", "TLS_AES_256_GCM_SHA384"; "" before the handshake is done. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);

/* Whether the session was resumed; whether the kernel encrypts (kTLS). */
bool tls_conn_resumed(const struct tls_conn *t);
bool tls_conn_ktls(const struct tls_conn *t);

#endif
