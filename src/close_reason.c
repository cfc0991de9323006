// SPDX-License-Identifier: BSD-2-Clause
/* close_reason.c - the words for each reason a connection closes. */
#include <errno.h>

#include "close_reason.h"

static const char *const labels[CLOSE_NREASONS] = {
#define CLOSE_REASON_LABEL(name, label, words) [name] = label,
	CLOSE_REASONS(CLOSE_REASON_LABEL)
#undef CLOSE_REASON_LABEL
};

static const char *const words[CLOSE_NREASONS] = {
#define CLOSE_REASON_WORDS(name, label, text) [name] = text,
	CLOSE_REASONS(CLOSE_REASON_WORDS)
#undef CLOSE_REASON_WORDS
};

static const char *const refuse_labels[REFUSE_NREASONS] = {
#define REFUSE_REASON_LABEL(name, label, words) [name] = label,
	REFUSE_REASONS(REFUSE_REASON_LABEL)
#undef REFUSE_REASON_LABEL
};

static const char *const refuse_words[REFUSE_NREASONS] = {
#define REFUSE_REASON_WORDS(name, label, text) [name] = text,
	REFUSE_REASONS(REFUSE_REASON_WORDS)
#undef REFUSE_REASON_WORDS
};

static const char *const proxy_labels[PROXY_NOUTCOMES] = {
#define PROXY_OUTCOME_LABEL(name, label, words) [name] = label,
	PROXY_OUTCOMES(PROXY_OUTCOME_LABEL)
#undef PROXY_OUTCOME_LABEL
};

static const char *const proxy_words[PROXY_NOUTCOMES] = {
#define PROXY_OUTCOME_WORDS(name, label, text) [name] = text,
	PROXY_OUTCOMES(PROXY_OUTCOME_WORDS)
#undef PROXY_OUTCOME_WORDS
};

static const char *const tls_labels[TLS_NOUTCOMES] = {
#define TLS_OUTCOME_LABEL(name, label, words) [name] = label,
	TLS_OUTCOMES(TLS_OUTCOME_LABEL)
#undef TLS_OUTCOME_LABEL
};

const char *tls_outcome_label(int r)
{
	return r >= 0 && r < TLS_NOUTCOMES ? tls_labels[r] : "unknown";
}

const char *proxy_outcome_label(int r)
{
	return r >= 0 && r < PROXY_NOUTCOMES ? proxy_labels[r] : "unknown";
}

const char *proxy_outcome_words(int r)
{
	return r >= 0 && r < PROXY_NOUTCOMES ? proxy_words[r] : "unknown";
}

const char *refuse_reason_label(int r)
{
	return r >= 0 && r < REFUSE_NREASONS ? refuse_labels[r] : "unknown";
}

const char *refuse_reason_words(int r)
{
	return r >= 0 && r < REFUSE_NREASONS ? refuse_words[r] : "unknown";
}

enum close_reason close_reason_of(int err)
{
	/*
	 * ETIMEDOUT is TCP_USER_TIMEOUT (net_tune_stream): the peer took
	 * none of what the kernel held for it for --send-timeout.
	 */
	if (err == -ETIMEDOUT)
		return CLOSE_SEND_TIMEOUT;
	return err == -ENOMEM ? CLOSE_MEMORY : CLOSE_ERROR;
}

const char *close_reason_label(int r)
{
	return r >= 0 && r < CLOSE_NREASONS ? labels[r] : "unknown";
}

const char *close_reason_words(int r)
{
	return r >= 0 && r < CLOSE_NREASONS ? words[r] : "unknown";
}
