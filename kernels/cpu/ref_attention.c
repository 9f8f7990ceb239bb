/* Reference paged attention and KV-cache write: for every new token and
 * query head, the scores against every visible cached key, a softmax and
 * the weighted sum of values, in double. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"
#include "fail.h"

int shmrt_ref_kv_write(void *stream, const struct shmrt_kv_write_args *a)
{
	(void)stream;
	int rc = shmrt_check_kv_write(a);
	if (rc || (rc = shmrt_cpu_check_slots(a)))
		return rc;
	const struct shmrt_kv_cache *c = &a->cache;
	for (int t = 0; t < a->n_tokens; t++) {
		if (a->slots[t] < 0)
			continue;
		int block = a->slots[t] / c->block_size, slot = a->slots[t] % c->block_size;
		for (int h = 0; h < c->n_kv_heads; h++) {
			int64_t dst = shmrt_kv_offset(c, block, h, slot);
			for (int d = 0; d < c->head_dim; d++) {
				int64_t i = (int64_t)h * c->head_dim + d;
				shmrt_store(c->k, c->dtype, dst + d, shmrt_load(a->k, a->dtype, t * a->k_stride + i));
				shmrt_store(c->v, c->dtype, dst + d, shmrt_load(a->v, a->dtype, t * a->v_stride + i));
			}
		}
	}
	return 0;
}

/* Offset of token pos's (kv head h) row in the cache of a sequence. */
static int64_t cache_row(const struct shmrt_kv_cache *c, const int32_t *table, int pos, int h)
{
	return shmrt_kv_offset(c, table[pos / c->block_size], h, pos % c->block_size);
}

/* One query row (token t, head h) of a sequence with visible keys
 * 0 .. n_visible-1; scores is scratch for n_visible doubles. */
static void attend_one(const struct shmrt_attention_args *a, const int32_t *table, int64_t t, int h,
		       int n_visible, double *scores)
{
	const struct shmrt_kv_cache *c = &a->cache;
	int D = c->head_dim, kvh = h / (a->n_heads / c->n_kv_heads);
	int64_t q = t * a->q_stride + (int64_t)h * D;
	double max = -INFINITY;
	for (int p = 0; p < n_visible; p++) {
		int64_t k = cache_row(c, table, p, kvh);
		double s = 0;
		for (int d = 0; d < D; d++)
			s += (double)shmrt_load(a->q, a->dtype, q + d) * shmrt_load(c->k, c->dtype, k + d);
		scores[p] = s * a->scale;
		max = fmax(max, scores[p]);
	}
	double sum = 0;
	for (int p = 0; p < n_visible; p++)
		sum += scores[p] = exp(scores[p] - max);
	for (int d = 0; d < D; d++) {
		double o = 0;
		for (int p = 0; p < n_visible; p++)
			o += scores[p] * shmrt_load(c->v, c->dtype, cache_row(c, table, p, kvh) + d);
		shmrt_store(a->out, a->dtype, (t * a->n_heads + h) * D + d, (float)(o / sum));
	}
}

int shmrt_ref_attention(void *stream, const struct shmrt_attention_args *a)
{
	(void)stream;
	int rc = shmrt_check_attention(a);
	if (rc || (rc = shmrt_cpu_check_seqs(a)))
		return rc;
	double *scores = malloc(sizeof(double) * (a->max_ctx_len ? a->max_ctx_len : 1));
	if (!scores)
		return shmrt_fail(ENOMEM, "attention: no memory for %d scores", a->max_ctx_len);
	for (int s = 0; s < a->n_seqs; s++) {
		int q0 = a->cu_q_lens[s], q_len = a->cu_q_lens[s + 1] - q0, ctx = a->ctx_lens[s];
		const int32_t *table = a->block_tables + (int64_t)s * a->block_table_stride;
		for (int j = 0; j < q_len; j++)
			for (int h = 0; h < a->n_heads; h++)
				attend_one(a, table, q0 + j, h, ctx - q_len + j + 1, scores);
	}
	free(scores);
	return 0;
}
