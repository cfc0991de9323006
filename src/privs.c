// SPDX-License-Identifier: BSD-2-Clause
/* privs.c - the privilege drop for --user, verified after the fact. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "number.h"
#include "privs.h"

/* A user or group name, or a number; returns 0 or -ENOENT. */
static int lookup(const char *name, bool group, unsigned int *id,
		  unsigned int *user_gid)
{
	const char *errstr;
	struct passwd *pw;
	struct group *gr;
	long long n;

	if (group) {
		gr = getgrnam(name);
		if (gr) {
			*id = gr->gr_gid;
			return 0;
		}
	} else {
		pw = getpwnam(name);
		if (pw) {
			*id = pw->pw_uid;
			*user_gid = pw->pw_gid;
			return 0;
		}
	}
	n = number_parse(name, 0, 0xfffffffeLL, &errstr);
	if (errstr)
		return -ENOENT;
	*id = (unsigned int)n;
	if (!group) {
		pw = getpwuid(*id);
		*user_gid = pw ? pw->pw_gid : *id;
	}
	return 0;
}

/* Whether the drop to uid:gid took, all of it, for good. */
static int verify(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid || getgroups(0, NULL) != 0) {
		snprintf(err, errlen, "user: ids did not change as asked");
		return -EPERM;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "user: root could be taken back");
		return -EPERM;
	}
	return 0;
}

int privs_resolve(const char *spec, struct privs_ids *ids, char *err,
		  size_t errlen)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	unsigned int user_gid = 0;
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	if (n == 0 || n >= sizeof(name) || (colon && colon[1] == '\0')) {
		snprintf(err, errlen, "user %s: expected NAME[:GROUP]", spec);
		return -EINVAL;
	}
	memcpy(name, spec, n);
	name[n] = '\0';
	if (lookup(name, false, &ids->uid, &user_gid) < 0) {
		snprintf(err, errlen, "user %s: no such user", name);
		return -ENOENT;
	}
	ids->gid = user_gid;
	if (colon && lookup(colon + 1, true, &ids->gid, NULL) < 0) {
		snprintf(err, errlen, "user %s: no such group", colon + 1);
		return -ENOENT;
	}
	return 0;
}

int privs_drop(const char *spec, const struct privs_ids *ids, char *err,
	       size_t errlen)
{
	uid_t uid = ids->uid;
	gid_t gid = ids->gid;

	/* Groups first: once the user is not root, none can be dropped. */
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		int e = errno;

		snprintf(err, errlen, "user %s: %s", spec, strerror(e));
		return -e;
	}
	return verify(uid, gid, err, errlen);
}
