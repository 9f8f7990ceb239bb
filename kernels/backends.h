/* Internal: the backends the registry (kernels/backend.c) hands out. */
#ifndef SHMRT_BACKENDS_H
#define SHMRT_BACKENDS_H

#include "shmrt/backend.h"

extern const struct shmrt_backend shmrt_backend_cpu_ref; /* kernels/cpu/tables.c */
extern const struct shmrt_backend shmrt_backend_cpu;     /* kernels/cpu/tables.c */

/* kernels/cuda (built when SHMRT_HAVE_CUDA): *out = the CUDA table, or
 * -ENODEV (message set) when no usable GPU or driver is present. Called on
 * every shmrt_backend_get("cuda"); cache the probe. C linkage. */
int shmrt_backend_cuda_open(const struct shmrt_backend **out);

#endif
