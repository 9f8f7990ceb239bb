/* Storage types of tensors: weights, activations, the KV cache, what the
 * transport reduces.
 *
 * Besides the plain floating-point types there are llama.cpp's block
 * formats (GGUF's quantized types): a row of n elements is n / block
 * blocks, each block_bytes long, holding its own scales and the packed
 * integers (layouts in runtime/core/quant_blocks.h). They are weight-only
 * types: activations and the KV cache stay f32 / bf16 / f16.
 *
 * Values are stable (they may be stored in files). */
#ifndef SHMRT_DTYPE_H
#define SHMRT_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

enum shmrt_dtype {
	SHMRT_F32 = 0,
	SHMRT_BF16 = 1,
	SHMRT_F16 = 2,
	/* block formats, GGML's layouts (weights only) */
	SHMRT_Q8_0 = 16, /* 32 int8, one fp16 scale: 34 bytes / 32 */
	SHMRT_Q4_0 = 17, /* 32 4-bit, one fp16 scale, offset 8: 18 bytes / 32 */
	SHMRT_Q4_1 = 18, /* 32 4-bit, fp16 scale and minimum: 20 bytes / 32 */
	SHMRT_Q4_K = 19, /* 256: 8 x 32 4-bit, 6-bit scales and mins: 144 bytes */
	SHMRT_Q5_K = 20, /* 256: 8 x 32 5-bit, 6-bit scales and mins: 176 bytes */
	SHMRT_Q6_K = 21, /* 256: 16 x 16 6-bit, int8 scales: 210 bytes */
};

/* Bytes per element of a plain type; 0 for a block format or an unknown
 * dtype (use shmrt_dtype_row_bytes for those). */
SHMRT_API size_t shmrt_dtype_size(enum shmrt_dtype dt);

/* "f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k";
 * "?" for an unknown value. */
SHMRT_API const char *shmrt_dtype_name(enum shmrt_dtype dt);

/* The dtype called name (the names above, case-insensitive): 0 or -ENOENT. */
SHMRT_API int shmrt_dtype_from_name(const char *name, enum shmrt_dtype *out);

/* Elements per block (1 for a plain type) and bytes per block; 0 for an
 * unknown dtype. */
SHMRT_API int shmrt_dtype_block(enum shmrt_dtype dt);
SHMRT_API size_t shmrt_dtype_block_bytes(enum shmrt_dtype dt);

/* A block format (not one of f32, bf16, f16). */
SHMRT_API bool shmrt_dtype_is_quantized(enum shmrt_dtype dt);

/* Bytes of n consecutive elements (a row): 0 when n is not a whole number
 * of blocks, n is negative, or dt is unknown. */
SHMRT_API uint64_t shmrt_dtype_row_bytes(enum shmrt_dtype dt, int64_t n);

#endif
