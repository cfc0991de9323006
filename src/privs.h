/* privs.h - --user: giving up root once every socket is open. */
#ifndef ECHOD_PRIVS_H
#define ECHOD_PRIVS_H

#include <stddef.h>

/*
 * Becomes spec, "NAME[:GROUP]" (names or numbers; the group defaults to
 * the user's own): drops every supplementary group, then the group, then
 * the user, and checks that each took and that root cannot be had back.
 * Returns 0, or -errno with what failed in err.
 */
int privs_drop(const char *spec, char *err, size_t errlen);

#endif
