/* shmrt — the directory that holds arenas, and its space. */
#ifndef SHMRT_SHM_DIR_H
#define SHMRT_SHM_DIR_H

#include "common.h"

/* $SHMRT_SHM_DIR if set and not empty, else "/dev/shm". */
SHMRT_API const char *shmrt_shm_dir(void);

/* Total and available bytes of the file system holding shmrt_shm_dir()
 * (statvfs; available as an unprivileged process sees it). 0 or -errno. */
SHMRT_API int shmrt_shm_space(uint64_t *total, uint64_t *avail);

#endif
