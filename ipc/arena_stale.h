/* Internal: who owns an arena file, and removing those whose owner died. */
#ifndef SHMRT_ARENA_STALE_H
#define SHMRT_ARENA_STALE_H

#include <stdbool.h>

#include "shmrt/arena.h"

/* Takes the owner's lock on a file this process just created (waiting out
 * a cleaner that holds it for a moment). 0 or -errno. */
int shmrt_arena_lock_owner(int fd);

/* True while some other open file description holds the owner's lock. */
bool shmrt_arena_owner_locked(int fd);

/* True when fd is the file that dirfd/fname names now. */
bool shmrt_arena_same_file(int dirfd, const char *fname, int fd);

/* Looks at dirfd/fname ("shmrt-NAME"): 1 when it was a stale arena and has
 * been removed, 0 when its owner lives (info filled for both), -ENOENT when
 * it is gone, -EBADMSG when it is not an arena (left alone), or -errno. */
int shmrt_arena_remove_stale(int dirfd, const char *fname, struct shmrt_arena_info *info);

#endif
