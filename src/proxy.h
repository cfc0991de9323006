// SPDX-License-Identifier: BSD-2-Clause
/*
 * proxy.h - HAProxy's PROXY protocol header, version 1 (text) and 2
 * (binary), parsed from the bytes a connection starts with, without the
 * socket, so that a fuzzer can drive it: the real client a load balancer
 * speaks for, or why the header is refused.
 */
#ifndef ECHOD_PROXY_H
#define ECHOD_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "net.h"

enum {
	PROXY_V1_MAX = 107, /* the longest v1 line, CRLF included */
	PROXY_V2_HEAD = 16, /* signature, version/command, family, length */
	/*
	 * The longest header taken: v2 allows 64 KiB of TLVs, but no
	 * balancer sends more than a few hundred bytes (HAProxy's SSL TLVs
	 * included); more is refused as oversized, so a header costs a
	 * bounded peek.
	 */
	PROXY_MAX = 1024,
	PROXY_SIGNATURE_MIN = 6, /* bytes that tell a header: "PROXY " */
};

enum proxy_result {
	PROXY_OK = 0, /* a whole header: h is filled */
	PROXY_MORE, /* a header's start so far: read more */
	PROXY_NONE, /* not a header at all: the bytes are the client's */
	PROXY_MALFORMED, /* a header's signature, then something else */
	PROXY_OVERSIZED, /* a header longer than PROXY_MAX */
};

enum proxy_command {
	PROXY_CMD_PROXY, /* relayed: src is the client */
	PROXY_CMD_LOCAL, /* the balancer's own (health check): no address */
};

struct proxy_header {
	int version; /* 1 or 2 */
	enum proxy_command command;
	bool has_addr; /* src/dst are known (TCP over IPv4 or IPv6) */
	union net_addr src, dst;
	size_t length; /* bytes of the header, to consume */
};

/*
 * Parses the first n bytes a connection sent. PROXY_MORE while what came
 * is a prefix of a header (or of a signature) and no more than PROXY_MAX;
 * PROXY_NONE once the bytes cannot start a header. v1's "UNKNOWN" and v2's
 * UNSPEC or UNIX families are valid headers with has_addr false; v2 TLVs
 * are skipped, checked only to fit the length. Never reads past n.
 */
enum proxy_result proxy_parse(const void *data, size_t n,
			      struct proxy_header *h);

/* "malformed", for logs and /metrics labels. */
const char *proxy_result_name(enum proxy_result r);

#endif
