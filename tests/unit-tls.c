// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-tls.c - tls.c against an OpenSSL client in the same process, over
 * a socketpair, both ends non-blocking and stepped with poll: handshake,
 * echo, ALPN, resumption, ends, refusals, reload (tests/tap.h). The
 * certificates are made at test time with the openssl command.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#include "../src/tls.h"
#include "tap.h"

#ifdef HAVE_OPENSSL

enum {
	STEPS = 400, /* poll rounds of 10 ms: 4 s for anything here */
};

static char dir[256];

/* A TAP comment line. */
#define diag(...)                    \
	do {                         \
		printf("# ");        \
		printf(__VA_ARGS__); \
		printf("\n");        \
	} while (0)

/* Nothing further can be tested: TAP's stop, and a failure. */
static void bail_out(const char *why)
{
	printf("Bail out! %s\n", why);
	exit(1);
}

/* dir/name */
static const char *at(const char *name)
{
	static char path[2][512];
	static int i;

	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

/* A self-signed EC pair name.crt, name.key with CN=name. */
static int make_pair(const char *name)
{
	char cmd[1536];

	snprintf(
		cmd, sizeof(cmd),
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=%s -keyout '%s/%s.key' -out '%s/%s.crt' >/dev/null 2>&1",
		name, dir, name, dir, name);
	return system(cmd);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1100];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	if (system(cmd) != 0)
		bail_out("cp failed");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		bail_out("cannot write a file");
	fputs(text, f);
	fclose(f);
}

/* One connection: our server session and an OpenSSL client. */
struct pair {
	int sfd, cfd;
	struct tls_conn *t;
	SSL *c;
	int server; /* the server's last handshake result */
};

static SSL_CTX *client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		bail_out("SSL_CTX_new");
	if (max_version)
		SSL_CTX_set_max_proto_version(ctx, max_version);
	return ctx;
}

static bool open_pair(struct pair *p, struct tls_server *s, SSL_CTX *cctx)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		bail_out("socketpair");
	p->sfd = sv[0];
	p->cfd = sv[1];
	p->server = -EAGAIN;
	p->t = tls_conn_new(s, p->sfd);
	p->c = SSL_new(cctx);
	if (p->t == NULL || p->c == NULL)
		return false;
	SSL_set_fd(p->c, p->cfd);
	SSL_set_connect_state(p->c);
	return true;
}

static void close_pair(struct pair *p)
{
	tls_conn_free(p->t);
	SSL_free(p->c);
	close(p->sfd);
	if (p->cfd >= 0)
		close(p->cfd);
}

static void wait_a_bit(const struct pair *p)
{
	struct pollfd fds[2] = {{.fd = p->sfd, .events = POLLIN},
				{.fd = p->cfd, .events = POLLIN}};

	poll(fds, p->cfd >= 0 ? 2 : 1, 10);
}

/* Steps both ends until the server's handshake ends; its result. */
static int handshake(struct pair *p)
{
	unsigned int want;
	bool client_done = false;

	for (int i = 0; i < STEPS && p->server == -EAGAIN; i++) {
		if (!client_done && p->cfd >= 0)
			client_done = SSL_do_handshake(p->c) == 1;
		p->server = tls_conn_handshake(p->t, &want);
		if (p->server == -EAGAIN && want == 0)
			return -999; /* -EAGAIN must say what it waits for */
		wait_a_bit(p);
	}
	/* TLS 1.2: the server's Finished comes last; let the client see it. */
	for (int i = 0; i < STEPS && !client_done && p->server == 0; i++) {
		client_done = SSL_do_handshake(p->c) == 1;
		wait_a_bit(p);
	}
	ERR_clear_error();
	return p->server;
}

/* Reads at the server until data, the end or an error. */
static ssize_t server_read(struct pair *p, char *buf, size_t n)
{
	unsigned int want;
	ssize_t r = -EAGAIN;

	for (int i = 0; i < STEPS && r == -EAGAIN; i++) {
		r = tls_conn_read(p->t, buf, n, &want);
		if (r == -EAGAIN)
			wait_a_bit(p);
	}
	return r;
}

/* The client reads n bytes, or gives its SSL error (negated). */
static int client_read(struct pair *p, char *buf, size_t n)
{
	size_t got = 0, one;
	int e;

	for (int i = 0; i < STEPS && got < n; i++) {
		if (SSL_read_ex(p->c, buf + got, n - got, &one) == 1) {
			got += one;
			continue;
		}
		e = SSL_get_error(p->c, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -e;
		wait_a_bit(p);
	}
	return (int)got;
}

/* One message, client to server and back; whether it came back whole. */
static bool echo(struct pair *p, const char *msg)
{
	char buf[256] = "", back[256] = "";
	size_t n = strlen(msg), put;
	unsigned int want;
	ssize_t r;

	if (SSL_write_ex(p->c, msg, n, &put) != 1 || put != n)
		return false;
	r = server_read(p, buf, sizeof(buf));
	if (r != (ssize_t)n || memcmp(buf, msg, n) != 0)
		return false;
	if (tls_conn_write(p->t, buf, (size_t)r, &want) != r)
		return false;
	return client_read(p, back, n) == (int)n && memcmp(back, msg, n) == 0;
}

/* The CN of the certificate the server showed. */
static const char *peer_cn(struct pair *p)
{
	static char cn[64];
	X509 *x = SSL_get1_peer_certificate(p->c);

	cn[0] = '\0';
	if (x)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, cn, sizeof(cn));
	X509_free(x);
	return cn;
}

static struct tls_server *server(const char *cert, const char *key,
				 const char *ciphers, int min, char *err)
{
	struct tls_settings set = {
		.cert = at(cert),
		.key = at(key),
		.ciphers = ciphers,
		.min_version = min,
	};

	err[0] = '\0';
	return tls_server_new(&set, err, 512);
}

static void test_handshake(struct tls_server *s, SSL_CTX *cctx)
{
	static const unsigned char offer[] = "\x02h2\x04"
					     "echo";
	const unsigned char *alpn;
	unsigned int alpn_len;
	struct pair p;

	ok(open_pair(&p, s, cctx), "a session for an accepted socket");
	is_str(tls_conn_version(p.t), "", "no version before the handshake");
	is_str(tls_conn_cipher(p.t), "", "no cipher before the handshake");
	SSL_set_alpn_protos(p.c, offer, sizeof(offer) - 1);
	is_int(handshake(&p), 0, "the handshake completes, stepped");
	is_str(tls_conn_version(p.t), "TLSv1.3", "TLS 1.3 by default");
	ok(tls_conn_cipher(p.t)[0] != '\0', "a cipher: %s",
	   tls_conn_cipher(p.t));
	SSL_get0_alpn_selected(p.c, &alpn, &alpn_len);
	ok(alpn_len == 4 && memcmp(alpn, "echo", 4) == 0,
	   "ALPN: echo chosen from h2, echo");
	is_str(peer_cn(&p), "alpha", "the certificate given is shown");
	ok(echo(&p, "hello over tls"), "a message comes back");
	ok(echo(&p, "and another"), "and another");
	ok(!tls_conn_resumed(p.t), "a first session is not resumed");
	diag("kTLS: %s (a socketpair never has it)",
	     tls_conn_ktls(p.t) ? "on" : "off");
	close_pair(&p);
}

static void test_no_alpn(struct tls_server *s, SSL_CTX *cctx)
{
	static const unsigned char offer[] = "\x02h2";
	const unsigned char *alpn = NULL;
	unsigned int alpn_len = 1;
	struct pair p;

	open_pair(&p, s, cctx);
	SSL_set_alpn_protos(p.c, offer, sizeof(offer) - 1);
	is_int(handshake(&p), 0, "ALPN without echo: the handshake completes");
	SSL_get0_alpn_selected(p.c, &alpn, &alpn_len);
	is_int(alpn_len, 0, "... and no protocol is chosen");
	close_pair(&p);
}

/* Both ends of a session: a bare FIN and a close_notify each read 0. */
static void test_ends(struct tls_server *s, SSL_CTX *cctx)
{
	struct pair p;
	char buf[16];

	open_pair(&p, s, cctx);
	handshake(&p);
	/*
	 * The client takes the session tickets first: a socket closed with
	 * bytes unread resets the connection (TCP and AF_UNIX alike).
	 */
	echo(&p, "x");
	close(p.cfd);
	p.cfd = -1;
	is_int(server_read(&p, buf, sizeof(buf)), 0,
	       "a bare FIN after the handshake reads 0, not an error");
	close_pair(&p);

	open_pair(&p, s, cctx);
	handshake(&p);
	SSL_shutdown(p.c);
	is_int(server_read(&p, buf, sizeof(buf)), 0,
	       "the client's close_notify reads 0");
	close_pair(&p);

	open_pair(&p, s, cctx);
	handshake(&p);
	tls_conn_close_notify(p.t);
	tls_conn_close_notify(p.t); /* once only: the second does nothing */
	is_int(client_read(&p, buf, 1), -SSL_ERROR_ZERO_RETURN,
	       "tls_conn_close_notify: the client reads a close_notify");
	close_pair(&p);

	open_pair(&p, s, cctx);
	close(p.cfd);
	p.cfd = -1;
	is_int(handshake(&p), -ECONNRESET,
	       "a FIN before any hello: -ECONNRESET");
	close_pair(&p);
}

static void test_resumption(struct tls_server *s, SSL_CTX *cctx)
{
	SSL_SESSION *sess;
	struct pair p;

	open_pair(&p, s, cctx);
	handshake(&p);
	echo(&p, "tickets arrive with the first read");
	sess = SSL_get1_session(p.c);
	/* Freed without a close_notify, OpenSSL would spoil the session. */
	SSL_shutdown(p.c);
	close_pair(&p);
	open_pair(&p, s, cctx);
	SSL_set_session(p.c, sess);
	is_int(handshake(&p), 0, "a second handshake with the session");
	ok(tls_conn_resumed(p.t), "... is resumed");
	SSL_SESSION_free(sess);
	close_pair(&p);
}

static void test_refusals(struct tls_server *s, SSL_CTX *cctx)
{
	static const char http[] = "GET / HTTP/1.0\r\n\r\n";
	SSL_CTX *old = client_ctx(TLS1_2_VERSION);
	struct tls_server *s13;
	struct pair p;
	char err[512];

	open_pair(&p, s, old);
	is_int(handshake(&p), 0, "a client capped at TLS 1.2 is served");
	is_str(tls_conn_version(p.t), "TLSv1.2", "... in TLS 1.2");
	ok(echo(&p, "twelve"), "... and echoed");
	close_pair(&p);

	s13 = server("alpha.crt", "alpha.key", NULL, 13, err);
	ok(s13 != NULL, "--tls-min-version 1.3: a server");
	open_pair(&p, s13, old);
	is_int(handshake(&p), -EPROTO, "min 1.3: a 1.2 client is refused");
	ok(tls_conn_error(p.t)[0] != '\0', "... and why: %s",
	   tls_conn_error(p.t));
	close_pair(&p);
	tls_server_free(s13);
	SSL_CTX_free(old);

	open_pair(&p, s, cctx);
	if (write(p.cfd, http, sizeof(http) - 1) < 0)
		bail_out("write");
	is_int(handshake(&p), -EPROTO, "HTTP instead of a ClientHello");
	ok(tls_conn_error(p.t)[0] != '\0', "... and why: %s",
	   tls_conn_error(p.t));
	close_pair(&p);
}

/* What tls_server_new says of a pair or list it cannot use. */
static void test_bad_settings(void)
{
	char err[512];

	ok(server("alpha.crt", "beta.key", NULL, 12, err) == NULL &&
		   strstr(err, "beta.key: key values mismatch") &&
		   !strchr(err, '\n'),
	   "a key of another certificate: one line: %s", err);
	ok(server("none.crt", "alpha.key", NULL, 12, err) == NULL &&
		   strncmp(err, "tls: ", 5) == 0 && strstr(err, "none.crt"),
	   "a missing file: named: %s", err);
	ok(server("alpha.crt", "alpha.key", "NOSUCH:TLS_NOSUCH", 12, err) ==
			   NULL &&
		   strstr(err, "ciphers NOSUCH:TLS_NOSUCH"),
	   "an unknown cipher: %s", err);
}

static void test_ciphers(SSL_CTX *cctx)
{
	struct tls_server *s;
	struct pair p;
	char err[512];

	s = server("alpha.crt", "alpha.key",
		   "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_CHACHA20_POLY1305_SHA256",
		   12, err);
	ok(s != NULL, "a list of 1.2 and 1.3 names: %s", err);
	if (s == NULL)
		return;
	open_pair(&p, s, cctx);
	handshake(&p);
	is_str(tls_conn_cipher(p.t), "TLS_CHACHA20_POLY1305_SHA256",
	       "TLS 1.3 takes its suite from the list");
	close_pair(&p);
	tls_server_free(s);
}

static void test_reload(SSL_CTX *cctx)
{
	struct tls_server *s;
	struct pair old, p;
	char err[512];

	copy_file(at("alpha.crt"), at("cur.crt"));
	copy_file(at("alpha.key"), at("cur.key"));
	s = server("cur.crt", "cur.key", NULL, 12, err);
	if (!ok(s != NULL, "a server on cur.crt"))
		return;
	open_pair(&old, s, cctx);
	handshake(&old);
	write_file(at("cur.crt"), "not a certificate\n");
	is_int(tls_server_reload(s, err, sizeof(err)), -1,
	       "reload of a bad file fails");
	ok(strstr(err, "cur.crt") && !strchr(err, '\n'),
	   "... naming it, one line: %s", err);
	open_pair(&p, s, cctx);
	ok(handshake(&p) == 0 && strcmp(peer_cn(&p), "alpha") == 0,
	   "... and new sessions keep the certificate in use");
	close_pair(&p);
	copy_file(at("beta.crt"), at("cur.crt"));
	copy_file(at("beta.key"), at("cur.key"));
	is_int(tls_server_reload(s, err, sizeof(err)), 0,
	       "reload of a good new pair: %s", err);
	open_pair(&p, s, cctx);
	is_int(handshake(&p), 0, "a new session after the reload");
	is_str(peer_cn(&p), "beta", "... is shown the new certificate");
	close_pair(&p);
	ok(echo(&old, "still here"), "a session from before goes on");
	close_pair(&old);
	tls_server_free(s);
}

static void run(void)
{
	const char *why = "?";
	struct tls_server *s;
	SSL_CTX *cctx;
	char err[512];

	ok(tls_available(&why), "TLS is compiled in");
	if (make_pair("alpha") != 0 || make_pair("beta") != 0)
		bail_out("openssl req: could not make certificates");
	s = server("alpha.crt", "alpha.key", NULL, 12, err);
	if (!ok(s != NULL, "a server from a certificate and key: %s", err))
		bail_out("no server");
	cctx = client_ctx(0);
	test_handshake(s, cctx);
	test_no_alpn(s, cctx);
	test_ends(s, cctx);
	test_resumption(s, cctx);
	test_refusals(s, cctx);
	test_bad_settings();
	test_ciphers(cctx);
	test_reload(cctx);
	SSL_CTX_free(cctx);
	tls_server_free(s);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[300];

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/unit-tls.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp");
	run();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}

#else /* !HAVE_OPENSSL */

int main(void)
{
	struct tls_settings set = {.cert = "c", .key = "k", .min_version = 12};
	const char *why = NULL;
	char err[256] = "";

	ok(!tls_available(&why), "built without libssl: no TLS");
	is_str(why, "not compiled in (built without libssl)", "... and why");
	ok(tls_server_new(&set, err, sizeof(err)) == NULL,
	   "tls_server_new fails");
	is_str(err, "tls: not compiled in (built without libssl)",
	       "... with that line");
	return done_testing();
}

#endif
