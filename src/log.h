// SPDX-License-Identifier: BSD-2-Clause
/*
 * log.h - leveled one-line logging to stderr:
 * "2026-01-31T23:59:59.123Z echod[w2]: message", without the time stamp
 * when stderr is the journal (which stamps lines itself), or one JSON
 * object a line (--log-format json).
 */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_VERBOSE, /* -v: per-connection lines, the lecture's view */
	LOG_DEBUG, /* -vv: transient peer errors and the like */
};

/*
 * Set once by main() before any worker starts and only read afterwards,
 * so it needs no lock.
 */
extern int log_level;

/* Which worker the calling thread is; -1 (the default) prints "echod: ". */
void log_set_worker(int id);

/*
 * Called once by main() before any worker starts: JSON or text, and
 * whether stderr is the journal (then text lines go unstamped).
 */
void log_setup(bool json);

/* Whether stderr is the stream systemd's JOURNAL_STREAM names. */
bool log_to_journal(void);

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * log_write with typed fields for --log-format json: fields is the
 * inside of a JSON object ("\"fd\":7,\"peer\":\"[::1]:4000\""), put
 * beside msg; text lines leave it out. Callers build it only when
 * log_json_on() says it will be read.
 */
void log_write_fields(int level, const char *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --log-format json is on. */
bool log_json_on(void);

/*
 * What starts a log line before "echod: ": the time stamp and a space,
 * or "" under the journal. For output written beside log lines (the
 * text tables), so that they carry the time too. Returns its length.
 */
int log_prefix(char *buf, int len);

/* The time stamp alone ("2026-01-31T23:59:59.123Z"), for JSON lines. */
int log_stamp(char *buf, int len);

/* The level is tested before the arguments are evaluated. */
#define log_at(level, ...)                             \
	do {                                           \
		if (log_level >= (level))              \
			log_write(level, __VA_ARGS__); \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_verbose(...) log_at(LOG_VERBOSE, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
