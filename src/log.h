/* log.h - leveled one-line logging to stderr: "echod[w2]: message". */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

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

void log_write(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The level is tested before the arguments are evaluated. */
#define log_at(level, ...)                      \
	do {                                    \
		if (log_level >= (level))       \
			log_write(__VA_ARGS__); \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_verbose(...) log_at(LOG_VERBOSE, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
