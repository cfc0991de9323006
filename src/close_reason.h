// SPDX-License-Identifier: BSD-2-Clause
/*
 * close_reason.h - why a connection closed: one list. The -v log line,
 * the totals (SIGUSR1, --stats-interval, the exit line) and /metrics all
 * take a reason's words from it and walk all of it, so that a reason
 * added here shows up everywhere, and one cannot be left out of any.
 */
#ifndef ECHOD_CLOSE_REASON_H
#define ECHOD_CLOSE_REASON_H

/* X(name, label for /metrics and the totals, words for the log) */
#define CLOSE_REASONS(X)                                      \
	X(CLOSE_EOF, "eof", "end of input")                   \
	X(CLOSE_IDLE, "idle", "idle timeout")                 \
	X(CLOSE_LINGER, "linger", "linger timeout")           \
	X(CLOSE_ERROR, "error", "error")                      \
	X(CLOSE_MEMORY, "memory", "out of memory")            \
	X(CLOSE_SHUTDOWN, "shutdown", "shutdown")             \
	X(CLOSE_SEND_TIMEOUT, "send_timeout", "send timeout") \
	X(CLOSE_LIFETIME, "lifetime", "lifetime")             \
	X(CLOSE_FAULT, "fault", "fault injected")             \
	X(CLOSE_PROXY, "proxy", "PROXY header refused")       \
	X(CLOSE_TLS, "tls", "TLS handshake failed")

enum close_reason {
	CLOSE_NONE = -1, /* not closing */
#define CLOSE_REASON_ENUM(name, label, words) name,
	CLOSE_REASONS(CLOSE_REASON_ENUM)
#undef CLOSE_REASON_ENUM
	CLOSE_NREASONS,
};

/*
 * Why a client was refused at admission, before a byte was read: the
 * same kind of list, for echod_connections_refused_total{reason}.
 */
#define REFUSE_REASONS(X)                                           \
	X(REFUSE_DENY, "deny", "denied by --deny")                  \
	X(REFUSE_NOT_ALLOWED, "not_allowed", "not in any --allow")  \
	X(REFUSE_PER_SOURCE, "per_source", "over --max-per-source") \
	X(REFUSE_SOURCE_TABLE, "source_table",                      \
	  "no memory for the per-source table")                     \
	X(REFUSE_MAX_CONNS, "max_conns", "over --max-conns")        \
	X(REFUSE_DESCRIPTORS, "descriptors", "out of descriptors")  \
	X(REFUSE_MEMORY, "memory", "out of memory")

enum refuse_reason {
#define REFUSE_REASON_ENUM(name, label, words) name,
	REFUSE_REASONS(REFUSE_REASON_ENUM)
#undef REFUSE_REASON_ENUM
	REFUSE_NREASONS,
};

/*
 * "per_source": a Prometheus label value. The reason is an int so that
 * a walk over all of them can take the function as its label maker.
 */
const char *refuse_reason_label(int r);

/* "over --max-per-source": the log's words. */
const char *refuse_reason_words(int r);

/*
 * What came of a connection's PROXY header (--proxy-protocol), for
 * echod_proxy_headers_total{reason}: the same kind of list.
 */
#define PROXY_OUTCOMES(X)                                                  \
	X(PROXY_OUT_OK, "ok", "a client's address")                        \
	X(PROXY_OUT_LOCAL, "local", "the balancer's own (LOCAL, UNKNOWN)") \
	X(PROXY_OUT_PLAIN, "plain", "no header, from a client itself")     \
	X(PROXY_OUT_MISSING, "missing", "no header from a balancer")       \
	X(PROXY_OUT_NOT_ALLOWED, "not_allowed",                            \
	  "a header from no --proxy-from")                                 \
	X(PROXY_OUT_MALFORMED, "malformed", "malformed header")            \
	X(PROXY_OUT_OVERSIZED, "oversized", "oversized header")            \
	X(PROXY_OUT_TRUNCATED, "truncated", "header cut short")            \
	X(PROXY_OUT_TIMEOUT, "timeout", "no whole header in time")

enum proxy_outcome {
#define PROXY_OUTCOME_ENUM(name, label, words) name,
	PROXY_OUTCOMES(PROXY_OUTCOME_ENUM)
#undef PROXY_OUTCOME_ENUM
	PROXY_NOUTCOMES,
};

/* What came of a TLS handshake, for echod_tls_handshakes_total{reason}. */
#define TLS_OUTCOMES(X)                                    \
	X(TLS_OUT_FULL, "full", "a full handshake")        \
	X(TLS_OUT_RESUMED, "resumed", "a resumed session") \
	X(TLS_OUT_FAILED, "failed", "failed")              \
	X(TLS_OUT_TIMEOUT, "timeout", "not done in time")

enum tls_outcome {
#define TLS_OUTCOME_ENUM(name, label, words) name,
	TLS_OUTCOMES(TLS_OUTCOME_ENUM)
#undef TLS_OUTCOME_ENUM
	TLS_NOUTCOMES,
};

const char *tls_outcome_label(int r);

/* "not_allowed": a label value; and the log's words. */
const char *proxy_outcome_label(int r);
const char *proxy_outcome_words(int r);

/*
 * A failed call's reason: CLOSE_MEMORY for -ENOMEM, CLOSE_SEND_TIMEOUT
 * for -ETIMEDOUT (the kernel's user timeout), else CLOSE_ERROR.
 */
enum close_reason close_reason_of(int err);

/* "send_timeout": a Prometheus label value, one word. */
const char *close_reason_label(int r);

/* "send timeout": the log's words. */
const char *close_reason_words(int r);

#endif
