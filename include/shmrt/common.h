/* shmrt — shared definitions for the public headers. */
#ifndef SHMRT_COMMON_H
#define SHMRT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define SHMRT_EXTERN_C extern "C"
#else
#define SHMRT_EXTERN_C
#endif

/* Every public function is marked so; the library is built with
 * -fvisibility=hidden, so anything else stays internal. */
#define SHMRT_API SHMRT_EXTERN_C __attribute__((visibility("default")))

/* Timeouts are in nanoseconds: SHMRT_WAIT_FOREVER blocks, 0 never waits. */
#define SHMRT_WAIT_FOREVER ((int64_t)-1)

#endif
