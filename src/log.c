/* log.c - one-line logging; each line is written with a single write(2). */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int log_level = LOG_INFO;
static __thread int log_worker = -1;

void log_set_worker(int id)
{
	log_worker = id;
}

/*
 * Formats the whole line first and writes it at once, so lines from
 * several workers never interleave mid-line.
 */
void log_write(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (log_worker >= 0)
		n = snprintf(line, sizeof(line), "echod[w%d]: ", log_worker);
	else
		n = snprintf(line, sizeof(line), "echod: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
