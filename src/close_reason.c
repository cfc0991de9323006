// SPDX-License-Identifier: BSD-2-Clause
/* close_reason.c - the words for each reason a connection closes. */
#include <errno.h>

#include "close_reason.h"

/* Every list's X(name, label, words) entry, as a label or as words. */
#define AS_LABEL(name, label, text) [name] = label,
#define AS_WORDS(name, label, text) [name] = text,

static const char *const labels[CLOSE_NREASONS] = {CLOSE_REASONS(AS_LABEL)};
static const char *const words[CLOSE_NREASONS] = {CLOSE_REASONS(AS_WORDS)};
static const char *const refuse_labels[REFUSE_NREASONS] = {
	REFUSE_REASONS(AS_LABEL)};
static const char *const refuse_words[REFUSE_NREASONS] = {
	REFUSE_REASONS(AS_WORDS)};
static const char *const proxy_labels[PROXY_NOUTCOMES] = {
	PROXY_OUTCOMES(AS_LABEL)};
static const char *const proxy_words[PROXY_NOUTCOMES] = {
	PROXY_OUTCOMES(AS_WORDS)};
static const char *const tls_labels[TLS_NOUTCOMES] = {TLS_OUTCOMES(AS_LABEL)};

/* names[r], or "unknown" for r outside [0, n). */
static const char *pick(const char *const *names, int n, int r)
{
	return r >= 0 && r < n ? names[r] : "unknown";
}

const char *tls_outcome_label(int r)
{
	return pick(tls_labels, TLS_NOUTCOMES, r);
}

const char *proxy_outcome_label(int r)
{
	return pick(proxy_labels, PROXY_NOUTCOMES, r);
}

const char *proxy_outcome_words(int r)
{
	return pick(proxy_words, PROXY_NOUTCOMES, r);
}

const char *refuse_reason_label(int r)
{
	return pick(refuse_labels, REFUSE_NREASONS, r);
}

const char *refuse_reason_words(int r)
{
	return pick(refuse_words, REFUSE_NREASONS, r);
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
	return pick(labels, CLOSE_NREASONS, r);
}

const char *close_reason_words(int r)
{
	return pick(words, CLOSE_NREASONS, r);
}
