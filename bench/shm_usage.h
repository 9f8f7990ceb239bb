/* How much of a shared-memory file is really in use, for `shmrt stat` and
 * `shmrt bench shm`.
 *
 * An arena is reserved whole with posix_fallocate (ipc/arena_space.c), so
 * its file's allocated blocks (st_blocks) and the tmpfs's used space
 * (statvfs) equal its size from the start: on tmpfs, fallocate allocates
 * the pages (mm/shmem.c, shmem_fallocate). What the runtime has touched is
 * told by the page tables instead: the proportional set size (Pss) of a
 * mapping charges each resident page 1/n to each of the n processes that
 * map it, so the sum of the Pss of every mapping of the file over every
 * process is the bytes of the distinct pages the live processes have
 * touched (proc(5), /proc/PID/smaps). Processes this one may not read
 * (another user's, without privilege) are left out. */
#ifndef SHMRT_BENCH_SHM_USAGE_H
#define SHMRT_BENCH_SHM_USAGE_H

#include <stdint.h>

struct shm_usage {
	uint64_t reserved;  /* the file's size */
	uint64_t allocated; /* its allocated blocks (st_blocks x 512) */
	uint64_t touched;   /* sum of the Pss of its mappings in every process */
	int mappers;        /* processes that map it */
};

/* Fills u for the file at path: 0 or -errno (shmrt_last_error()). */
int shm_usage_of(const char *path, struct shm_usage *u);

/* The bytes used in the file system of dir (statvfs: blocks - free). */
int shm_fs_used(const char *dir, uint64_t *used);

#endif
