// SPDX-License-Identifier: BSD-2-Clause
/* worker.c - worker threads: start one running its backend, stop it. */
#include <sys/eventfd.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "worker.h"

int worker_failed(struct worker *w, const char *what, int err)
{
	snprintf(w->why, sizeof(w->why), "%s: %s", what, strerror(-err));
	return err;
}

/* Runs w's backend: set-up, the loop until stopped, tear-down. */
static int run_backend(struct worker *w)
{
	const struct backend_ops *b = w->backend;
	char what[64];
	void *loop;
	int err;

	loop = calloc(1, b->loop_size);
	err = loop ? b->init(loop, w, w->opts) : -ENOMEM;
	/* Counted before the barrier: /readyz is 200 from "ready" on. */
	if (err == 0)
		atomic_fetch_add(&w->shared->serving, 1);
	/*
	 * No worker serves before every worker holds its own descriptors:
	 * clients accepted by one could otherwise take the last descriptors
	 * another needs to start. main() says "ready" after this too.
	 */
	pthread_barrier_wait(&w->shared->started);
	if (err < 0) {
		snprintf(what, sizeof(what), "%s set-up", b->name);
		worker_failed(w, loop ? what : "start", err);
	} else {
		err = b->serve(loop);
		atomic_fetch_sub(&w->shared->serving, 1);
	}
	if (loop)
		b->destroy(loop);
	free(loop);
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	log_set_worker(w->id);
	w->result = run_backend(w);
	if (w->result < 0) {
		log_error("%s", w->why);
		/*
		 * Wakes main(); an eventfd, not a signal, so that no other
		 * process can fake a failure (SIGUSR1 asks for the table).
		 */
		if (eventfd_write(w->shared->fail_fd, 1) < 0)
			log_error("eventfd write: %s", strerror(errno));
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	pthread_condattr_t attr;
	int err;

	pthread_mutex_init(&w->reply.lock, NULL);
	pthread_condattr_init(&attr);
	/* Report deadlines are on the monotonic clock. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->reply.done, &attr);
	pthread_condattr_destroy(&attr);
	w->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->ctl_fd < 0)
		return -errno;
	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err) {
		close(w->ctl_fd);
		w->ctl_fd = -1;
		return -err;
	}
	return 0;
}

void worker_ask(struct worker *w, unsigned int req)
{
	uint64_t one = 1;

	/* The bits first, so the loop that wakes for the write sees them. */
	atomic_fetch_or_explicit(&w->requests, req, memory_order_release);
	if (write(w->ctl_fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: eventfd write: %s", w->id,
			 strerror(errno));
}

unsigned int worker_requests(struct worker *w)
{
	uint64_t n;

	/* Resets the eventfd; the bits say what was asked. */
	if (read(w->ctl_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
	return atomic_exchange_explicit(&w->requests, 0, memory_order_acquire);
}

void worker_answer(struct worker *w, struct report_row *rows, size_t n)
{
	struct worker_reply *re = &w->reply;

	pthread_mutex_lock(&re->lock);
	/* An answer nobody took (its asker gave up) is replaced. */
	free(re->rows);
	re->rows = rows;
	re->nrows = n;
	re->answered = re->asked;
	pthread_cond_broadcast(&re->done);
	pthread_mutex_unlock(&re->lock);
}

void worker_stop(struct worker *w)
{
	worker_ask(w, WORKER_STOP);
	pthread_join(w->thread, NULL);
	close(w->ctl_fd);
	w->ctl_fd = -1;
	free(w->reply.rows);
	w->reply.rows = NULL;
	pthread_cond_destroy(&w->reply.done);
	pthread_mutex_destroy(&w->reply.lock);
}
