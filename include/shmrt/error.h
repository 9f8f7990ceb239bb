/* shmrt — errors and version.
 *
 * Functions return 0 (or a count) on success and -errno on failure, as
 * liburing does. The thread that saw the failure can then read a sentence
 * saying what went wrong and what to do about it. */
#ifndef SHMRT_ERROR_H
#define SHMRT_ERROR_H

#include "common.h"

/* The message of this thread's last failure, "" if none. Valid until the
 * next shmrt call on this thread. */
SHMRT_API const char *shmrt_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH". */
SHMRT_API const char *shmrt_version(void);

/* Build features, one word each, space separated: "cuda nccl liburing hwloc". */
SHMRT_API const char *shmrt_build_features(void);

/* CUDA architectures compiled in, space separated ("80 89 90a"), "" if none. */
SHMRT_API const char *shmrt_cuda_archs(void);

#endif
