/* Internal: making sure an arena's memory exists before anyone touches it. */
#ifndef SHMRT_ARENA_SPACE_H
#define SHMRT_ARENA_SPACE_H

#include <stdint.h>

/* -ENOSPC (with the MiB needed and free and the container settings to
 * change) when the file system of dirfd has less than `need` bytes free. */
int shmrt_arena_space_check(int dirfd, const char *name, uint64_t need);

/* Allocates bytes [0, size) of fd's file, so that touching any page of a
 * mapping of it can never raise SIGBUS. -ENOSPC as above. */
int shmrt_arena_space_reserve(int fd, int dirfd, const char *name, uint64_t size);

#endif
