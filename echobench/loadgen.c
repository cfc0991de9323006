// SPDX-License-Identifier: BSD-2-Clause
/* loadgen.c - lg_: thread start-up, per-thread counters, timeline helpers. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loadgen.h"
#include "opts.h"

const char *const err_names[ERR_MAX] = {
	[ERR_MISMATCH] = "mismatch", [ERR_SHORT] = "short",
	[ERR_EXCESS] = "excess",     [ERR_CLOSED] = "closed",
	[ERR_CONNECT] = "connect",   [ERR_TLS] = "tls",
	[ERR_LOST] = "lost",	     [ERR_REORDER] = "reordered",
	[ERR_DUP] = "duplicate",     [ERR_LATE] = "late",
};

void lg_error(struct lg_thread *th, enum err_kind k, const char *fmt, ...)
{
	va_list ap;

	inc(&th->st.err[k], 1);
	if (th->first_err[0] || k >= ERR_FATAL_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(th->first_err, sizeof(th->first_err), fmt, ap);
	va_end(ap);
}

void lg_done(struct lg_thread *th, uint64_t t0, uint64_t now, size_t bytes)
{
	inc(&th->st.done, 1);
	inc(&th->st.bytes, bytes);
	if (th->limited ? t0 < th->lg->measure
			: now < th->lg->measure || now >= th->lg->end)
		return;
	hist_record(&th->hist, now > t0 ? now - t0 : 0);
	inc(&th->st.measured, 1);
	inc(&th->st.measured_bytes, bytes);
	__atomic_store_n(&th->st.last_done, now, __ATOMIC_RELAXED);
}

void lg_handshake(struct lg_thread *th, uint64_t t0, uint64_t now, bool resumed)
{
	inc(&th->st.handshakes_all, 1);
	inc(&th->st.resumed_all, resumed);
	if (now < th->lg->measure || now >= th->lg->end)
		return;
	hist_record(&th->hs_hist, now > t0 ? now - t0 : 0);
	inc(&th->st.handshakes, 1);
	inc(&th->st.resumed, resumed);
}

bool lg_stopping(const struct lg_thread *th, uint64_t now)
{
	return now >= th->lg->end ||
	       __atomic_load_n(&th->lg->stop, __ATOMIC_RELAXED) ||
	       (th->limited && !th->quota);
}

bool lg_take(struct lg_thread *th, uint64_t t0)
{
	if (!th->limited || t0 < th->lg->measure)
		return true;
	if (!th->quota)
		return false;
	th->quota--;
	return true;
}

void lg_untake(struct lg_thread *th, uint64_t t0)
{
	if (th->limited && t0 >= th->lg->measure)
		th->quota++;
}

int lg_wait(int epfd, struct epoll_event *ev, int n, uint64_t deadline)
{
	uint64_t now = now_ns(), left;
	struct timespec ts;
	int got;

	/* Wake at least every 100 ms to notice lg->stop. */
	left = deadline > now ? deadline - now : 0;
	if (left > 100000000)
		left = 100000000;
	ts.tv_sec = (time_t)(left / 1000000000);
	ts.tv_nsec = (long)(left % 1000000000);
	got = epoll_pwait2(epfd, ev, n, &ts, NULL);
	if (got < 0 && errno != EINTR)
		err(1, "epoll_pwait2");
	return got < 0 ? 0 : got;
}

static void *thread_main(void *arg)
{
	struct lg_thread *th = arg;

	th->ops->run(th);
	__atomic_store_n(&th->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

int lg_start(struct lg_thread *th, const struct lg_ops *ops)
{
	int e;

	th->ops = ops;
	e = pthread_create(&th->tid, NULL, thread_main, th);
	return e ? -e : 0;
}

void lg_join(struct lg_thread *th)
{
	pthread_join(th->tid, NULL);
}

int lg_bind_source(int fd, const struct bench_opts *o, uint32_t id)
{
	int one = 1;
	unsigned int i;

	if (!o->nsrc)
		return 0;
	i = id % o->nsrc;
	/*
	 * The port is chosen at connect(2), for the whole 4-tuple: each
	 * source then has its own ~28k ephemeral ports towards the target.
	 */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&o->src[i], o->srclen[i]))
		return -errno;
	return 0;
}
