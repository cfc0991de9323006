// SPDX-License-Identifier: BSD-2-Clause
/* privs.h - --user: giving up root once every socket is open. */
#ifndef ECHOD_PRIVS_H
#define ECHOD_PRIVS_H

#include <stddef.h>

/* Whom --user names, resolved before any socket is opened. */
struct privs_ids {
	unsigned int uid, gid;
};

/*
 * Resolves spec, "NAME[:GROUP]" (names or numbers; the group defaults to
 * the user's own), into ids. Returns 0, or -errno with what is wrong in
 * err ("user nobody_such: no such user").
 */
int privs_resolve(const char *spec, struct privs_ids *ids, char *err,
		  size_t errlen);

/*
 * Becomes ids (spec, for the messages): drops every supplementary group,
 * then the group, then the user, and checks that each took and that root
 * cannot be had back. Returns 0, or -errno with what failed in err.
 */
int privs_drop(const char *spec, const struct privs_ids *ids, char *err,
	       size_t errlen);

#endif
