/* Storage types of tensors: weights, activations, the KV cache, what the
 * transport reduces.
 *
 * Values are stable (they may be stored in files). */
#ifndef SHMRT_DTYPE_H
#define SHMRT_DTYPE_H

#include <stddef.h>

#include "common.h"

enum shmrt_dtype {
	SHMRT_F32 = 0,
	SHMRT_BF16 = 1,
	SHMRT_F16 = 2,
};

/* Bytes per element (0 for an unknown dtype), and "f32" / "bf16" / "f16". */
SHMRT_API size_t shmrt_dtype_size(enum shmrt_dtype dt);
SHMRT_API const char *shmrt_dtype_name(enum shmrt_dtype dt);

#endif
