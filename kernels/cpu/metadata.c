/* Validation of the attention and cache-write metadata, which lives in
 * (host-visible) device memory on the CPU backends. */
#include <errno.h>

#include "cpu_kernels.h"
#include "fail.h"

int shmrt_cpu_check_seqs(const struct shmrt_attention_args *a)
{
	const struct shmrt_kv_cache *c = &a->cache;
	if (a->n_seqs > 0 && a->cu_q_lens[0] != 0)
		return shmrt_fail(EINVAL, "attention: cu_q_lens[0] = %d, not 0", a->cu_q_lens[0]);
	for (int s = 0; s < a->n_seqs; s++) {
		int q_len = a->cu_q_lens[s + 1] - a->cu_q_lens[s], ctx = a->ctx_lens[s];
		if (q_len < 0 || q_len > a->max_q_len || ctx < q_len || ctx > a->max_ctx_len)
			return shmrt_fail(EINVAL, "attention: sequence %d has q_len %d, ctx_len %d (max %d, %d)", s,
					  q_len, ctx, a->max_q_len, a->max_ctx_len);
		const int32_t *table = a->block_tables + (int64_t)s * a->block_table_stride;
		for (int b = 0; b < (ctx + c->block_size - 1) / c->block_size; b++)
			if (table[b] < 0 || table[b] >= c->num_blocks)
				return shmrt_fail(EINVAL, "attention: sequence %d block %d is %d, outside 0..%d", s, b,
						  table[b], c->num_blocks - 1);
	}
	if (a->n_seqs > 0 && a->cu_q_lens[a->n_seqs] != a->n_tokens)
		return shmrt_fail(EINVAL, "attention: cu_q_lens[%d] = %d != n_tokens %d", a->n_seqs,
				  a->cu_q_lens[a->n_seqs], a->n_tokens);
	return 0;
}

int shmrt_cpu_check_slots(const struct shmrt_kv_write_args *a)
{
	int64_t n_slots = (int64_t)a->cache.num_blocks * a->cache.block_size;
	for (int t = 0; t < a->n_tokens; t++)
		if (a->slots[t] < -1 || a->slots[t] >= n_slots)
			return shmrt_fail(EINVAL, "kv_write: token %d has slot %d outside -1..%lld", t, a->slots[t],
					  (long long)n_slots - 1);
	return 0;
}
