/* Internal: validation of kernel arguments that every backend shares: the
 * host-side fields of the argument structs (shapes, dtypes, strides,
 * pointers). Each returns 0 or -EINVAL with the message set. Metadata in
 * device memory (lengths, block tables, slots) is checked by the CPU
 * kernels themselves, which can read it. */
#ifndef SHMRT_ARGS_H
#define SHMRT_ARGS_H

#include "shmrt/backend.h"

int shmrt_check_matmul(const struct shmrt_matmul_args *a);
int shmrt_check_kv_cache(const struct shmrt_kv_cache *c);
int shmrt_check_kv_write(const struct shmrt_kv_write_args *a);
int shmrt_check_attention(const struct shmrt_attention_args *a);
int shmrt_check_rmsnorm(const struct shmrt_rmsnorm_args *a);
int shmrt_check_rope(const struct shmrt_rope_args *a);
int shmrt_check_swiglu(const struct shmrt_swiglu_args *a);
int shmrt_check_add(const struct shmrt_add_args *a);
int shmrt_check_embedding(const struct shmrt_embedding_args *a);
int shmrt_check_sample(const struct shmrt_sample_args *a);

#endif
