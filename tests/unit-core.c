// SPDX-License-Identifier: BSD-2-Clause
/*
 * unit-core.c - the loop core's clock arithmetic: how long a worker
 * sleeps, and when a wakeup may skip the look at every deadline
 * (core_quiet), on a core that holds no connection (tests/tap.h).
 */
#include <stdint.h>
#include <unistd.h>

#include "../src/core.h"
#include "tap.h"

enum {
	NOW = 1000000
};

static void test_wait_ms(void)
{
	struct core k = {.now_ms = NOW};

	is_int(core_wait_ms(&k, UINT64_MAX), -1,
	       "nothing timed: the sleep has no timeout");
	is_int(core_wait_ms(&k, NOW + 10), 15,
	       "10 ms away: 15, past the coarse clock's next tick");
	is_int(core_wait_ms(&k, NOW - 100), 5,
	       "overdue: 5 ms, not a spin on a clock that has not ticked");
	is_int(core_wait_ms(&k, NOW + 366ULL * 24 * 3600 * 1000), INT32_MAX,
	       "a year away (--idle-timeout's most): the longest sleep "
	       "epoll_wait takes, not the difference cut to 32 bits "
	       "(negative, so endless, from 24.9 to 49.7 days)");
}

static void test_quiet(void)
{
	struct core k = {.now_ms = NOW};

	is_int(core_timeout_ms(&k), -1,
	       "a core with nothing armed sleeps without a timeout");
	ok(k.quiet_until == UINT64_MAX && core_quiet(&k),
	   "... and its wakeups are quiet until something is armed");
	core_wake_by(&k, NOW + 2000);
	ok(k.quiet_until == NOW + 2000 && core_quiet(&k),
	   "arming lowers the bound to its time; not due yet: still quiet");
	is_int(core_timeout_ms(&k), 2005, "the sleep ends by then");
	core_wake_by(&k, NOW + 5000);
	ok(k.quiet_until == NOW + 2000,
	   "arming something later leaves the bound where it is");
	k.pool.nfree = 1;
	ok(!core_quiet(&k),
	   "a spare buffer with no trim planned: the wakeup looks (and plans)");
	k.trim_at = NOW + 1000;
	ok(core_quiet(&k), "once the trim is planned: quiet again");
	k.now_ms = NOW + 2000;
	ok(!core_quiet(&k), "at the bound: the wakeup looks at everything");
	k.now_ms = NOW;
	core_recheck(&k);
	ok(!core_quiet(&k), "a fault's wake-up armed: the next wakeup looks");
}

static void test_spare_back(void)
{
	struct core k = {.now_ms = NOW, .spare_fd = -1};
	enum close_reason why;

	is_int(core_timeout_ms(&k), 105,
	       "a worker whose spare descriptor another took wakes within "
	       "100 ms, whatever else it has to do");
	k.now_ms = NOW + 100;
	ok(core_due(&k, &why) == NULL && k.spare_fd >= 0,
	   "... and takes a spare back then");
	if (k.spare_fd >= 0)
		close(k.spare_fd);
	k.spare_fd = 3;
	is_int(core_timeout_ms(&k), -1, "with its spare: no timeout");
}

int main(void)
{
	test_wait_ms();
	test_quiet();
	test_spare_back();
	return done_testing();
}
