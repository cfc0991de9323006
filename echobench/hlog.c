// SPDX-License-Identifier: BSD-2-Clause
/*
 * hlog.c - HdrHistogram's compressed V2 histogram encoding and interval log
 * format, so that echobench's latencies can be read by HdrHistogram's own
 * tools (HistogramLogProcessor and the log readers of every port) and logs
 * of several load hosts merged (merge.c).
 *
 * The encoding, all big-endian: a compressed wrapper (cookie 0x1c849314,
 * length, zlib stream) around the V2 form (cookie 0x1c849313, payload
 * length, normalizing offset, significant digits, lowest discernible and
 * highest trackable value, conversion ratio as a double) whose payload is
 * the counts array as ZigZag LEB128 numbers, a run of zero counts written
 * once as its negated length.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "hlog.h"

enum {
	V2_COOKIE = 0x1c849303 | 0x10,
	V2_COMPRESSED_COOKIE = 0x1c849304 | 0x10,
	COOKIE_BASE_MASK = ~0xf0,
	HEADER = 40, /* bytes of the V2 form before its payload */
	/* What we write: 3 digits, so 2048 sub-buckets, unit 1 ns. */
	OUR_DIGITS = 3,
	OUR_HALF_MAG = 10,
};

static const uint64_t our_highest = 3600ULL * 1000000000; /* 1 h in ns */

/* The layout of an HdrHistogram's counts array (its own terms). */
struct layout {
	int half_mag; /* log2 of half the sub-buckets */
	int unit_mag; /* log2 of the lowest discernible value */
};

static int index_of(const struct layout *l, uint64_t v)
{
	uint64_t mask = ((2ULL << l->half_mag) - 1) << l->unit_mag;
	int bucket = 63 - l->unit_mag - (l->half_mag + 1) -
		     __builtin_clzll(v | mask) + 1;
	int sub = (int)(v >> (bucket + l->unit_mag));

	return ((bucket + 1) << l->half_mag) + sub - (1 << l->half_mag);
}

/* The midpoint of the values counted at idx. */
static uint64_t value_at(const struct layout *l, int idx)
{
	int bucket = (idx >> l->half_mag) - 1;
	int sub = (idx & ((1 << l->half_mag) - 1)) + (1 << l->half_mag);

	if (bucket < 0) {
		sub -= 1 << l->half_mag;
		bucket = 0;
	}
	return ((uint64_t)sub << (bucket + l->unit_mag)) +
	       ((1ULL << (bucket + l->unit_mag)) >> 1);
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	p = put32(p, (uint32_t)(v >> 32));
	return put32(p, (uint32_t)v);
}

static uint64_t get(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

/* ZigZag LEB128, as HdrHistogram writes it: the 9th byte holds 8 bits. */
static unsigned char *put_zz(unsigned char *p, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

	for (int i = 0; i < 8 && u >= 0x80; i++) {
		*p++ = (unsigned char)(u | 0x80);
		u >>= 7;
	}
	*p++ = (unsigned char)u;
	return p;
}

static const unsigned char *get_zz(const unsigned char *p,
				   const unsigned char *end, int64_t *v)
{
	uint64_t u = 0;
	int shift = 0;

	for (int i = 0; p < end; i++) {
		if (i == 8) {
			u |= (uint64_t)*p++ << 56;
			break;
		}
		u |= (uint64_t)(*p & 0x7f) << shift;
		shift += 7;
		if (!(*p++ & 0x80))
			break;
	}
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return p;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	uint32_t v;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		v = (uint32_t)p[i] << 16;
		v |= i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0;
		v |= i + 2 < n ? p[i + 2] : 0;
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* Decodes base64 into out (at least 3/4 of its length); bytes or -1. */
static long unbase64(const char *s, size_t len, unsigned char *out)
{
	uint32_t v = 0;
	long n = 0;
	int bits = 0;
	const char *c;

	for (size_t i = 0; i < len && s[i] != '='; i++) {
		c = strchr(b64, s[i]);
		if (!c || !s[i])
			return -1;
		v = v << 6 | (uint32_t)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	return n;
}

/* The V2 form of h into buf (big enough); returns its length. */
static size_t encode_v2(const struct hist *h, unsigned char *buf)
{
	struct layout l = {OUR_HALF_MAG, 0};
	unsigned char *p = buf + HEADER;
	uint64_t *counts, zeros = 0;
	int len = 0, k;
	double ratio = 1.0;
	uint64_t bits;

	counts = calloc((size_t)index_of(&l, our_highest) + 1, sizeof(*counts));
	if (!counts)
		return 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (!h->count[i])
			continue;
		k = index_of(&l, hist_bucket_value(i));
		counts[k] += h->count[i];
		len = k + 1 > len ? k + 1 : len;
	}
	for (int i = 0; i < len; i++) {
		if (!counts[i]) {
			zeros++;
			continue;
		}
		if (zeros)
			p = zeros > 1 ? put_zz(p, -(int64_t)zeros)
				      : put_zz(p, 0);
		zeros = 0;
		p = put_zz(p, (int64_t)counts[i]);
	}
	free(counts);
	memcpy(&bits, &ratio, sizeof(bits));
	put64(put64(put64(put32(put32(put32(put32(buf, V2_COOKIE),
					    (uint32_t)(p - buf - HEADER)),
				      0),
				OUR_DIGITS),
			  1),
		    our_highest),
	      bits);
	return (size_t)(p - buf);
}

char *hlog_encode(const struct hist *h)
{
	struct layout l = {OUR_HALF_MAG, 0};
	size_t cap = HEADER + 9 * ((size_t)index_of(&l, our_highest) + 1);
	unsigned char *raw = malloc(cap), *z = NULL;
	uLongf zlen = compressBound(cap);
	size_t n = raw ? encode_v2(h, raw) : 0;
	char *out = NULL;

	if (n)
		z = malloc(8 + zlen);
	if (z &&
	    compress2(z + 8, &zlen, raw, n, Z_DEFAULT_COMPRESSION) == Z_OK) {
		put32(put32(z, V2_COMPRESSED_COOKIE), (uint32_t)zlen);
		out = base64(z, 8 + zlen);
	}
	free(raw);
	free(z);
	return out;
}

/* Adds the V2 form in buf[0..n) into h. */
static int decode_v2(const unsigned char *buf, size_t n, struct hist *h)
{
	struct layout l;
	const unsigned char *p = buf + HEADER, *end;
	uint64_t len, digits, lowest, v;
	int64_t c;
	int idx = 0;

	if (n < HEADER || (get(buf, 4) & COOKIE_BASE_MASK) != 0x1c849303)
		return -EINVAL;
	len = get(buf + 4, 4);
	digits = get(buf + 12, 4);
	lowest = get(buf + 16, 8);
	if (len > n - HEADER || digits > 5 || !lowest)
		return -EINVAL;
	end = p + len;
	l.unit_mag = 63 - __builtin_clzll(lowest);
	l.half_mag = (int)ceil(log2(2 * pow(10, (double)digits))) - 1;
	while (p < end) {
		p = get_zz(p, end, &c);
		if (c < 0) {
			idx += (int)-c;
			continue;
		}
		if (c) {
			v = value_at(&l, idx);
			hist_record_n(h, v, (uint64_t)c);
		}
		idx++;
	}
	return 0;
}

int hlog_decode(const char *s, struct hist *h)
{
	size_t len = strlen(s);
	unsigned char *z = malloc(len);
	unsigned char *raw = NULL;
	uLongf rawlen;
	long n = z ? unbase64(s, len, z) : 0;
	int e = -EINVAL;

	if (!z)
		return -ENOMEM;
	if (n < 8 || (get(z, 4) & COOKIE_BASE_MASK) != 0x1c849304 ||
	    get(z + 4, 4) > (uint64_t)n - 8)
		goto out;
	/* The V2 form is at most 9 bytes a count: a bound to inflate into. */
	rawlen = HEADER + 9 * (1 << 18);
	raw = malloc(rawlen);
	if (!raw) {
		e = -ENOMEM;
		goto out;
	}
	if (uncompress(raw, &rawlen, z + 8, get(z + 4, 4)) == Z_OK)
		e = decode_v2(raw, rawlen, h);
out:
	free(raw);
	free(z);
	return e;
}

void hlog_header(FILE *f, double unix_start)
{
	time_t t = (time_t)unix_start;
	struct tm tm;
	char when[64];

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %d %H:%M:%S UTC %Y", &tm);
	fprintf(f, "#[Histogram log format version 1.3]\n");
	fprintf(f, "#[StartTime: %.3f (seconds since epoch), %s]\n", unix_start,
		when);
	fprintf(f, "#[BaseTime: %.3f (seconds since epoch)]\n", unix_start);
	fprintf(f,
		"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
}

int hlog_interval(FILE *f, double start, double len, const struct hist *h)
{
	char *s = hlog_encode(h);

	if (!s)
		return -ENOMEM;
	/* Interval_Max in milliseconds, as HdrHistogram's writer has it. */
	fprintf(f, "%.3f,%.3f,%.3f,%s\n", start, len,
		h->total ? (double)h->max / 1e6 : 0.0, s);
	free(s);
	return 0;
}

/* One interval line: [Tag=name,]start,length,max,histogram. */
static int read_line(char *line, struct hist *h, double *at, double *len)
{
	char *p = line, *nl = strchr(line, '\n');

	if (nl)
		*nl = 0;
	if (!strncmp(p, "Tag=", 4)) {
		p = strchr(p, ',');
		if (!p)
			return -EINVAL;
		p++;
	}
	if (sscanf(p, "%lf,%lf,", at, len) != 2)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		p = strchr(p, ',');
		if (!p)
			return -EINVAL;
		p++;
	}
	return hlog_decode(p, h);
}

int hlog_read(FILE *f, struct hist *h, struct hlog_span *span)
{
	char *line = NULL;
	size_t cap = 0;
	double base = -1, at, len;
	int n = 0, e = 0;

	memset(span, 0, sizeof(*span));
	while (getline(&line, &cap, f) > 0) {
		if (line[0] == '#') {
			sscanf(line, "#[StartTime: %lf", &span->start);
			sscanf(line, "#[BaseTime: %lf", &base);
			continue;
		}
		if (line[0] == '"' || line[0] == '\n')
			continue;
		e = read_line(line, h, &at, &len);
		if (e)
			break;
		if (!n++)
			span->first = at;
		span->end = at + len;
	}
	free(line);
	/* Interval times are relative to BaseTime, else to StartTime. */
	base = base >= 0 ? base : span->start;
	span->first += base;
	span->end += base;
	return e ? e : n;
}
