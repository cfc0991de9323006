/* worker.c - worker threads: start, stop, and the shared connection count. */
#include <sys/eventfd.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "backend.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

int worker_conn_get(struct worker *w)
{
	unsigned int max = w->opts->max_conns;
	unsigned int n =
		atomic_load_explicit(&w->shared->conns, memory_order_relaxed);

	/* A CAS loop, so concurrent accepts never overshoot the limit. */
	do {
		if (max && n >= max)
			return -1;
	} while (!atomic_compare_exchange_weak_explicit(
		&w->shared->conns, &n, n + 1, memory_order_relaxed,
		memory_order_relaxed));
	return 0;
}

void worker_conn_put(struct worker *w)
{
	atomic_fetch_sub_explicit(&w->shared->conns, 1, memory_order_relaxed);
}

int worker_admit(struct worker *w, int fd)
{
	if (worker_conn_get(w) == 0)
		return 0;
	log_verbose("refuse fd %d: --max-conns %u reached", fd,
		    w->opts->max_conns);
	w->stats.refused++;
	close(fd);
	return -1;
}

void worker_count_close(struct worker *w, const struct conn *c, const char *why)
{
	struct worker_stats *s = &w->stats;

	s->closed++;
	s->bytes_in += c->bytes_in;
	s->bytes_out += c->bytes_out;
	s->messages += c->messages;
	conn_log_close(c, why);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	log_set_worker(w->id);
	w->result = w->backend->run(w);
	if (w->result < 0) {
		log_error("%s", w->why);
		/* main() waits in sigwaitinfo(); this tells it we failed. */
		kill(getpid(), SIGUSR1);
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	int err;

	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0)
		return -errno;
	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err) {
		close(w->stop_fd);
		w->stop_fd = -1;
		return -err;
	}
	return 0;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_warn("stop worker %d: %s", w->id, "eventfd write failed");
	pthread_join(w->thread, NULL);
	close(w->stop_fd);
	w->stop_fd = -1;
}
