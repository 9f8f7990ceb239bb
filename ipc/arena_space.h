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

/* The shared-memory size to advise for `bytes` of arenas: a quarter of
 * headroom for other users of /dev/shm (NCCL, PyTorch data loaders),
 * rounded up to a power of two below 1 GiB (64 MiB at least, Docker's
 * default) and to whole GiB above. In MiB. */
uint64_t shmrt_shm_advised_mib(uint64_t bytes);

/* mib as Docker's --shm-size ("512m", "2g") and a Kubernetes quantity
 * ("512Mi", "2Gi") spell it. */
void shmrt_shm_size_spellings(uint64_t mib, char docker[32], char k8s[32]);

#endif
