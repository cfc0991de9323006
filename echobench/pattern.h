// SPDX-License-Identifier: BSD-2-Clause
/* pattern.h - the bytes each message carries, and checking what came back. */
#ifndef ECHOBENCH_PATTERN_H
#define ECHOBENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/*
 * A message is a window of a fixed pseudo-random sequence of period
 * PAT_PERIOD, starting at an offset derived from (connection id, message
 * number). No two neighbouring bytes of the sequence are equal, so a byte
 * dropped, duplicated or swapped with its neighbour always shows as a
 * mismatch at that place; a byte of another message or connection shows
 * unless it happens to equal the expected one.
 */
enum {
	PAT_PERIOD = 1 << 18,
};

/* Fills the table; call once before any thread starts. */
void pat_init(void);

/* Where message (conn, seq) starts in the sequence. */
uint32_t pat_start(uint32_t conn, uint64_t seq);

/*
 * Bytes of the sequence from position pos (any value; taken modulo the
 * period); *len is cut to what is contiguous, at least PAT_PERIOD bytes
 * unless *len was smaller. The memory is read-only and shared.
 */
const unsigned char *pat_bytes(uint64_t pos, size_t *len);

/*
 * Compares buf[0..len) with the sequence from pos. Returns the index of
 * the first differing byte, or -1 when all are equal.
 */
long pat_compare(uint64_t pos, const unsigned char *buf, size_t len);

/* How many bytes of buf[0..len) differ from the sequence from pos. */
size_t pat_count_diff(uint64_t pos, const unsigned char *buf, size_t len);

#endif
