// SPDX-License-Identifier: BSD-2-Clause
/* proxy.c - HAProxy's PROXY protocol header, v1 text and v2 binary, parsed. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

static const char v1_sig[] = "PROXY ";

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/*
 * A v1 line: its body, the bytes before its CR, and whether the CR has
 * come (whole), so that a line still arriving is checked as a prefix.
 */
struct v1_line {
	const char *s;
	size_t len;
	size_t pos; /* the next field's start */
	bool whole;
};

/* What ended a v1 field. */
enum v1_end {
	V1_SPACE, /* a space: another field follows */
	V1_CR, /* the line's CR: the last field */
	V1_PART, /* the bytes so far: the field may still grow */
};

static const char *const v1_protos[] = {"TCP4", "TCP6", "UNKNOWN"};
static const int v1_families[] = {AF_INET, AF_INET6, AF_UNSPEC};

/*
 * Finds the line p[0, n) starts with. Returns PROXY_OK when its LF has
 * come, PROXY_MORE while it may still come, PROXY_MALFORMED for an LF
 * without its CR or PROXY_V1_MAX bytes without an LF: the spec's reader
 * gives up there rather than wait for a line it would refuse.
 */
static enum proxy_result v1_line(const char *p, size_t n, struct v1_line *l)
{
	const char *lf = memchr(p, '\n', n < PROXY_V1_MAX ? n : PROXY_V1_MAX);

	l->s = p;
	if (lf) {
		l->len = (size_t)(lf - p);
		if (l->len == 0 || p[l->len - 1] != '\r')
			return PROXY_MALFORMED;
		l->len--;
		l->whole = true;
		return PROXY_OK;
	}
	if (n >= PROXY_V1_MAX)
		return PROXY_MALFORMED;
	/* A CR last is the line's end whose LF is on its way. */
	l->whole = p[n - 1] == '\r';
	l->len = l->whole ? n - 1 : n;
	return PROXY_MORE;
}

/* The field at l->pos, up to a space or the body's end. */
static enum v1_end v1_field(struct v1_line *l, const char **f, size_t *len)
{
	const char *s = l->s + l->pos;
	const char *sp = memchr(s, ' ', l->len - l->pos);

	*f = s;
	*len = sp ? (size_t)(sp - s) : l->len - l->pos;
	if (!sp)
		return l->whole ? V1_CR : V1_PART;
	l->pos += *len + 1;
	return V1_SPACE;
}

/*
 * Whether a field that checked out ends as it must: by a single space,
 * or by the CR when it is the last. A field still growing is PROXY_MORE.
 */
static enum proxy_result v1_ends(enum v1_end end, bool last)
{
	if (end == V1_PART)
		return PROXY_MORE;
	return end == (last ? V1_CR : V1_SPACE) ? PROXY_OK : PROXY_MALFORMED;
}

/*
 * The protocol field: TCP4, TCP6 or UNKNOWN (sets *af), or a prefix of
 * one while it grows. UNKNOWN may end the line or be followed by
 * anything, which the spec tells receivers to ignore.
 */
static enum proxy_result v1_proto(const char *f, size_t len, enum v1_end end,
				  int *af)
{
	for (size_t i = 0; i < sizeof(v1_protos) / sizeof(v1_protos[0]); i++) {
		size_t want = strlen(v1_protos[i]);

		if (len > want || memcmp(f, v1_protos[i], len) != 0)
			continue;
		if (end == V1_PART)
			return PROXY_MORE;
		if (len != want)
			continue;
		*af = v1_families[i];
		return *af == AF_UNSPEC ? PROXY_OK : v1_ends(end, false);
	}
	return PROXY_MALFORMED;
}

/*
 * An address of family af into a (port aside). Its characters are
 * checked as they come, so that "TCP4 ::1" is refused at the ':' rather
 * than when the line ends; inet_pton() has the last word.
 */
static enum proxy_result v1_addr(const char *f, size_t len, enum v1_end end,
				 int af, union net_addr *a)
{
	static const char chars[] = "0123456789.abcdefABCDEF:";
	size_t nchars = af == AF_INET ? 11 : sizeof(chars) - 1;
	size_t max = af == AF_INET ? INET_ADDRSTRLEN : INET6_ADDRSTRLEN;
	char text[INET6_ADDRSTRLEN];
	void *dst = af == AF_INET ? (void *)&a->in.sin_addr
				  : (void *)&a->in6.sin6_addr;

	if (len >= max)
		return PROXY_MALFORMED;
	for (size_t i = 0; i < len; i++)
		if (!memchr(chars, f[i], nchars))
			return PROXY_MALFORMED;
	if (end == V1_PART)
		return PROXY_MORE;
	memcpy(text, f, len);
	text[len] = '\0';
	if (inet_pton(af, text, dst) != 1)
		return PROXY_MALFORMED;
	a->sa.sa_family = (sa_family_t)af;
	return PROXY_OK;
}

/*
 * A port: 1 to 5 decimal digits, at most 65535. Leading zeros pass, as
 * HAProxy takes them; signs and a sixth digit do not.
 */
static enum proxy_result v1_port(const char *f, size_t len, enum v1_end end,
				 unsigned int *port)
{
	unsigned int v = 0;

	if (len > 5)
		return PROXY_MALFORMED;
	for (size_t i = 0; i < len; i++) {
		if (f[i] < '0' || f[i] > '9')
			return PROXY_MALFORMED;
		v = v * 10 + (unsigned int)(f[i] - '0');
	}
	if (v > 65535)
		return PROXY_MALFORMED;
	if (end == V1_PART)
		return PROXY_MORE;
	if (len == 0)
		return PROXY_MALFORMED;
	*port = v;
	return PROXY_OK;
}

static void set_port(union net_addr *a, unsigned int port)
{
	if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons((uint16_t)port);
	else
		a->in.sin_port = htons((uint16_t)port);
}

/* The four fields after TCP4 or TCP6: source, destination, their ports. */
static enum proxy_result v1_tcp(struct v1_line *l, int af,
				struct proxy_header *h)
{
	unsigned int port[2];
	enum proxy_result r;
	enum v1_end end;
	const char *f;
	size_t len;

	for (int i = 0; i < 4; i++) {
		end = v1_field(l, &f, &len);
		if (i < 2)
			r = v1_addr(f, len, end, af, i ? &h->dst : &h->src);
		else
			r = v1_port(f, len, end, &port[i - 2]);
		if (r == PROXY_OK)
			r = v1_ends(end, i == 3);
		if (r != PROXY_OK)
			return r;
	}
	set_port(&h->src, port[0]);
	set_port(&h->dst, port[1]);
	return PROXY_OK;
}

/* p[0, n) starts with "PROXY ". */
static enum proxy_result parse_v1(const char *p, size_t n,
				  struct proxy_header *h)
{
	struct v1_line l;
	enum proxy_result line = v1_line(p, n, &l), r;
	enum v1_end end;
	const char *f;
	size_t len;
	int af = AF_UNSPEC;

	/* A CR before the end is a bare one: no field may hold it. */
	if (line == PROXY_MALFORMED || memchr(l.s, '\r', l.len))
		return PROXY_MALFORMED;
	l.pos = PROXY_SIGNATURE_MIN;
	end = v1_field(&l, &f, &len);
	r = v1_proto(f, len, end, &af);
	if (r == PROXY_OK && af != AF_UNSPEC)
		r = v1_tcp(&l, af, h);
	/* Every field checked out: the line is good once its LF is in. */
	if (r != PROXY_OK || line != PROXY_OK)
		return r != PROXY_OK ? r : line;
	h->version = 1;
	h->command = PROXY_CMD_PROXY;
	h->has_addr = af != AF_UNSPEC;
	h->length = l.len + 2;
	return PROXY_OK;
}

/*
 * The bytes of the address block v2 family byte fam announces, or -1
 * for a value the spec defines not (its receivers must drop those).
 */
static int v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case 0x00: /* UNSPEC */
		return 0;
	case 0x11: /* TCP over IPv4 */
	case 0x12: /* UDP over IPv4 */
		return 12;
	case 0x21: /* TCP over IPv6 */
	case 0x22: /* UDP over IPv6 */
		return 36;
	case 0x31: /* UNIX stream */
	case 0x32: /* UNIX datagram */
		return 216;
	default:
		return -1;
	}
}

/* Whether t[0, n) is whole TLVs: type, 2-byte length, value. */
static bool v2_tlvs_fit(const uint8_t *t, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (n - i < 3)
			return false;
		i += 3 + ((size_t)t[i + 1] << 8 | t[i + 2]);
	}
	return i == n;
}

/*
 * The addresses of a PROXY command, kept for TCP only: echod serves TCP,
 * so a UDP or UNIX family names endpoints that are not this stream's
 * peer; such a header is valid, and has_addr stays false.
 */
static void v2_addrs(const uint8_t *p, struct proxy_header *h)
{
	const uint8_t *b = p + PROXY_V2_HEAD;

	if (p[13] == 0x11) {
		h->src.in.sin_family = AF_INET;
		h->dst.in.sin_family = AF_INET;
		memcpy(&h->src.in.sin_addr, b, 4);
		memcpy(&h->dst.in.sin_addr, b + 4, 4);
		/* Ports come in network order, as sin_port keeps them. */
		memcpy(&h->src.in.sin_port, b + 8, 2);
		memcpy(&h->dst.in.sin_port, b + 10, 2);
		h->has_addr = true;
	} else if (p[13] == 0x21) {
		h->src.in6.sin6_family = AF_INET6;
		h->dst.in6.sin6_family = AF_INET6;
		memcpy(&h->src.in6.sin6_addr, b, 16);
		memcpy(&h->dst.in6.sin6_addr, b + 16, 16);
		memcpy(&h->src.in6.sin6_port, b + 32, 2);
		memcpy(&h->dst.in6.sin6_port, b + 34, 2);
		h->has_addr = true;
	}
}

/*
 * p[0, n) starts with the v2 signature. Each byte is judged as it comes:
 * a bad version or command at 13 bytes, an unknown family at 14, a length
 * too long at 16, without waiting for the rest.
 */
static enum proxy_result parse_v2(const uint8_t *p, size_t n,
				  struct proxy_header *h)
{
	size_t len, total;
	bool local;
	int alen;

	if (n < 13)
		return PROXY_MORE;
	if (p[12] >> 4 != 2 || (p[12] & 0x0f) > 1)
		return PROXY_MALFORMED;
	/*
	 * LOCAL: the spec has the receiver discard the whole block, family
	 * included, so neither it nor the TLVs are checked.
	 */
	local = (p[12] & 0x0f) == 0;
	if (n < 14)
		return PROXY_MORE;
	alen = local ? 0 : v2_addr_len(p[13]);
	if (alen < 0)
		return PROXY_MALFORMED;
	if (n < PROXY_V2_HEAD)
		return PROXY_MORE;
	len = (size_t)p[14] << 8 | p[15];
	total = PROXY_V2_HEAD + len;
	if (total > PROXY_MAX)
		return PROXY_OVERSIZED;
	if ((size_t)alen > len)
		return PROXY_MALFORMED;
	if (n < total)
		return PROXY_MORE;
	if (!local && !v2_tlvs_fit(p + PROXY_V2_HEAD + alen, len - alen))
		return PROXY_MALFORMED;
	h->version = 2;
	h->command = local ? PROXY_CMD_LOCAL : PROXY_CMD_PROXY;
	h->length = total;
	if (!local)
		v2_addrs(p, h);
	return PROXY_OK;
}

/* PROXY_OK when p[0, n) starts with sig, else PROXY_MORE or PROXY_NONE. */
static enum proxy_result signature(const uint8_t *p, size_t n, const void *sig,
				   size_t len)
{
	if (memcmp(p, sig, n < len ? n : len) != 0)
		return PROXY_NONE;
	return n < len ? PROXY_MORE : PROXY_OK;
}

enum proxy_result proxy_parse(const void *data, size_t n,
			      struct proxy_header *h)
{
	const uint8_t *p = data;
	enum proxy_result r;

	memset(h, 0, sizeof(*h));
	if (n == 0)
		return PROXY_MORE;
	/* The two signatures differ from their first byte on. */
	if (p[0] == (uint8_t)v1_sig[0]) {
		r = signature(p, n, v1_sig, PROXY_SIGNATURE_MIN);
		return r == PROXY_OK ? parse_v1(data, n, h) : r;
	}
	if (p[0] == v2_sig[0]) {
		r = signature(p, n, v2_sig, sizeof(v2_sig));
		return r == PROXY_OK ? parse_v2(p, n, h) : r;
	}
	return PROXY_NONE;
}

const char *proxy_result_name(enum proxy_result r)
{
	switch (r) {
	case PROXY_OK:
		return "ok";
	case PROXY_MORE:
		return "more";
	case PROXY_NONE:
		return "none";
	case PROXY_MALFORMED:
		return "malformed";
	case PROXY_OVERSIZED:
		return "oversized";
	}
	return "?";
}
