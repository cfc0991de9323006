/* worker.c - thread start-up, per-thread counters, timeline helpers. */
#include <sys/epoll.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "worker.h"

const char *const err_names[ERR_MAX] = {
	[ERR_MISMATCH] = "mismatch", [ERR_SHORT] = "short",
	[ERR_EXCESS] = "excess",     [ERR_CLOSED] = "closed",
	[ERR_CONNECT] = "connect",   [ERR_LOST] = "lost",
	[ERR_REORDER] = "reordered", [ERR_DUP] = "duplicate",
	[ERR_LATE] = "late",
};

void worker_error(struct worker *w, enum err_kind k, const char *fmt, ...)
{
	va_list ap;

	inc(&w->st.err[k], 1);
	if (w->first_err[0] || k >= ERR_FATAL_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(w->first_err, sizeof(w->first_err), fmt, ap);
	va_end(ap);
}

void worker_done(struct worker *w, uint64_t t0, uint64_t now, size_t bytes)
{
	inc(&w->st.done, 1);
	inc(&w->st.bytes, bytes);
	if (t0 < w->run->measure)
		return;
	hist_record(&w->hist, now > t0 ? now - t0 : 0);
	inc(&w->st.measured, 1);
	inc(&w->st.measured_bytes, bytes);
	__atomic_store_n(&w->st.last_done, now, __ATOMIC_RELAXED);
}

bool worker_stopping(const struct worker *w, uint64_t now)
{
	return now >= w->run->end ||
	       __atomic_load_n(&w->run->stop, __ATOMIC_RELAXED) ||
	       (w->limited && !w->quota);
}

bool worker_take(struct worker *w, uint64_t t0)
{
	if (!w->limited || t0 < w->run->measure)
		return true;
	if (!w->quota)
		return false;
	w->quota--;
	return true;
}

uint64_t worker_first_due(const struct worker *w, uint32_t id)
{
	const struct bench_opts *o = w->run->o;

	/* Spread the connections' phases evenly over one period. */
	return w->run->start + (uint64_t)((double)id * 1e9 / o->rate);
}

int worker_wait(int epfd, struct epoll_event *ev, int n, uint64_t deadline)
{
	uint64_t now = now_ns(), left;
	struct timespec ts;

	/* Wake at least every 100 ms to notice run->stop. */
	left = deadline > now ? deadline - now : 0;
	if (left > 100000000)
		left = 100000000;
	ts.tv_sec = (time_t)(left / 1000000000);
	ts.tv_nsec = (long)(left % 1000000000);
	return epoll_pwait2(epfd, ev, n, &ts, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->run->o->udp)
		udp_run(w);
	else
		tcp_run(w);
	__atomic_store_n(&w->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

int worker_start(struct worker *w)
{
	int e = pthread_create(&w->tid, NULL, worker_main, w);

	return e ? -e : 0;
}

void worker_join(struct worker *w)
{
	pthread_join(w->tid, NULL);
}
