/* A private SHMRT_SHM_DIR for one test program: a fresh directory on the
 * /dev/shm tmpfs, so parallel tests never see each other's arenas. It is
 * removed, with whatever is left in it, when the process that made it exits
 * (forked children leave with _exit and do not remove it). */
#ifndef SHMRT_TESTS_SHM_TMPDIR_H
#define SHMRT_TESTS_SHM_TMPDIR_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

/* Makes the directory, points SHMRT_SHM_DIR at it, returns its path. */
const char *shm_tmpdir(void);

#endif
