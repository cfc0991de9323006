// SPDX-License-Identifier: BSD-2-Clause
/* log.c - one-line logging; each line is written with a single write(2). */
#include <sys/stat.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int log_level = LOG_INFO;
static __thread int log_worker = -1;
static bool log_json;
static bool stamped = true;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",	   [LOG_WARN] = "warning", [LOG_INFO] = "info",
	[LOG_VERBOSE] = "verbose", [LOG_DEBUG] = "debug",
};

void log_set_worker(int id)
{
	log_worker = id;
}

/*
 * systemd sets JOURNAL_STREAM to "device:inode" of the stream it gave
 * us; only when standard error is still that stream does the journal
 * stamp our lines (a redirect in a unit's command keeps the variable).
 */
bool log_to_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(bool json)
{
	log_json = json;
	stamped = !log_to_journal();
}

/* "2026-01-31T23:59:59.123Z": UTC, so lines from hosts in any zone sort. */
int log_stamp(char *buf, int len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, (size_t)len, "%Y-%m-%dT%H:%M:%S", &tm);
	return (int)n + snprintf(buf + n, (size_t)len - n, ".%03ldZ",
				 ts.tv_nsec / 1000000);
}

bool log_json_on(void)
{
	return log_json;
}

int log_prefix(char *buf, int len)
{
	int n;

	buf[0] = '\0';
	if (!stamped || len < 2)
		return 0;
	n = log_stamp(buf, len - 1);
	buf[n++] = ' ';
	buf[n] = '\0';
	return n;
}

/* Appends msg to line[n, len) as a JSON string body; returns the new n. */
static int json_escape(char *line, int n, int len, const char *msg)
{
	for (const char *p = msg; *p && n < len - 7; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"' || ch == '\\')
			n += snprintf(line + n, 3, "\\%c", ch);
		else if (ch < 0x20)
			n += snprintf(line + n, 7, "\\u%04x", ch);
		else
			line[n++] = (char)ch;
	}
	return n;
}

/*
 * One JSON object: time (always: a field costs a reader nothing, unlike
 * a doubled prefix), level, worker when on one, the caller's fields,
 * msg.
 */
static int json_line(char *line, int len, int level, const char *fields,
		     const char *msg)
{
	char ts[40];
	int n;

	log_stamp(ts, sizeof(ts));
	n = snprintf(line, (size_t)len, "{\"time\":\"%s\",\"level\":\"%s\",",
		     ts, level_names[level]);
	if (log_worker >= 0)
		n += snprintf(line + n, (size_t)(len - n), "\"worker\":%d,",
			      log_worker);
	if (fields && fields[0])
		n += snprintf(line + n, (size_t)(len - n), "%s,", fields);
	n += snprintf(line + n, (size_t)(len - n), "\"msg\":\"");
	n = json_escape(line, n, len - 3, msg);
	line[n++] = '"';
	line[n++] = '}';
	return n;
}

/*
 * Formats the whole line first and writes it at once, so lines from
 * several workers never interleave mid-line.
 */
__attribute__((format(printf, 3, 0))) static void
write_line(int level, const char *fields, const char *fmt, va_list ap)
{
	char msg[512], line[1536];
	int n = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_json) {
		n = json_line(line, (int)sizeof(line) - 1, level, fields, msg);
	} else {
		n = log_prefix(line, (int)sizeof(line));
		if (log_worker >= 0)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      "echod[w%d]: %s", log_worker, msg);
		else
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      "echod: %s", msg);
		if (n > (int)sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_write(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_line(level, NULL, fmt, ap);
	va_end(ap);
}

void log_write_fields(int level, const char *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_line(level, fields, fmt, ap);
	va_end(ap);
}
