// SPDX-License-Identifier: BSD-2-Clause
/* notify.c - sd_notify's protocol, without libsystemd. */
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"

/* Set once by main() before any worker starts; read by main only. */
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	if (path == NULL)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n >= sizeof(notify_addr.sun_path))
		return -EINVAL;
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, n);
	/* "@name" is Linux's abstract namespace: a leading NUL byte. */
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				 (path[0] == '/'));
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

bool notify_enabled(void)
{
	return notify_len != 0;
}

int notify_send(const char *state)
{
	int fd, err = 0;

	if (!notify_enabled())
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&notify_addr, notify_len) < 0)
		err = -errno;
	close(fd);
	return err;
}
