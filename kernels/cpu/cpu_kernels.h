/* Internal: the CPU kernels behind the "cpu-ref" table (shmrt_ref_*,
 * kernels/cpu/ref_NAME.c: plain loops, double accumulation, the readable
 * truth the tests compare against) and the "cpu" table (shmrt_cpu_*,
 * kernels/cpu/NAME.c: threaded over the pool, vectorised, fp32). */
#ifndef SHMRT_CPU_KERNELS_H
#define SHMRT_CPU_KERNELS_H

#include "shmrt/backend.h"

#define SHMRT_CPU_KERNEL(name, args)                                    \
	int shmrt_ref_##name(void *stream, const struct args *a);       \
	int shmrt_cpu_##name(void *stream, const struct args *a);

SHMRT_CPU_KERNEL(matmul, shmrt_matmul_args)
SHMRT_CPU_KERNEL(kv_write, shmrt_kv_write_args)
SHMRT_CPU_KERNEL(attention, shmrt_attention_args)
SHMRT_CPU_KERNEL(rmsnorm, shmrt_rmsnorm_args)
SHMRT_CPU_KERNEL(rope, shmrt_rope_args)
SHMRT_CPU_KERNEL(swiglu, shmrt_swiglu_args)
SHMRT_CPU_KERNEL(add, shmrt_add_args)
SHMRT_CPU_KERNEL(embedding, shmrt_embedding_args)
SHMRT_CPU_KERNEL(sample, shmrt_sample_args)

#undef SHMRT_CPU_KERNEL

/* The cpu matmul for a block-format W (kernels/cpu/matmul_quant.c), after
 * shmrt_cpu_matmul's checks: x and y f32, m > 0. */
int shmrt_cpu_matmul_quant(const struct shmrt_matmul_args *a);

/* Whether the cpu matmul of a (bf16 W at the avx512bf16 level, with the
 * dot product asked for) takes AVX512-BF16's dot product, rounding X to
 * bf16 (matmul_bf16dot.c); else fp32 (matmul.c). The same answer for
 * every m. */
bool shmrt_cpu_bf16dot_used(const struct shmrt_matmul_args *a);

/* Whether the dot product is asked for: $SHMRT_CPU_BF16DOT=on at the first
 * call (else off); this (for tests and benchmarks) at any time, not
 * thread-safe against running kernels. */
enum shmrt_bf16dot_mode { SHMRT_BF16DOT_OFF, SHMRT_BF16DOT_ON };
void shmrt_cpu_set_bf16dot(enum shmrt_bf16dot_mode mode);

/* The cpu matmul for bf16 W at the avx512bf16 level, after
 * shmrt_cpu_matmul's checks; -ENOTSUP off x86. */
int shmrt_cpu_matmul_bf16dot(const struct shmrt_matmul_args *a);

/* Checks of the metadata the CPU can read (kernels/cpu/metadata.c):
 * cu_q_lens ascending and ending at n_tokens, q_len <= ctx_len within the
 * maxima, block table entries in range; slots in range or -1. */
int shmrt_cpu_check_seqs(const struct shmrt_attention_args *a);
int shmrt_cpu_check_slots(const struct shmrt_kv_write_args *a);

/* Element offset of (block, kv head, slot in block, dim 0) in a cache
 * array (layout in shmrt/backend.h). */
static inline int64_t shmrt_kv_offset(const struct shmrt_kv_cache *c, int64_t block, int head, int slot)
{
	return ((block * c->n_kv_heads + head) * c->block_size + slot) * (int64_t)c->head_dim;
}

#endif
