/* shmrt bench kernels: inputs in a backend's device memory (random
 * values, a paged KV cache with its metadata), shared by the CPU and GPU
 * parts. Values do not change the speed of these kernels; they only have
 * to be finite and of ordinary magnitude. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype_conv.h"
#include "kernels.h"

#define FILL_CHUNK ((size_t)1 << 20) /* elements generated on the host at a time */

/* n elements (whole blocks) of block format dt: random bytes, the fp16
 * scales of every block (d, then m / dmin where the format has one, at the
 * offsets of quant_blocks.h's structs) set to 1/128 so that values stay
 * small and finite. */
static int fill_blocks(const struct shmrt_backend *b, void *dev, size_t n, enum shmrt_dtype dt, uint64_t seed)
{
	size_t bb = shmrt_dtype_block_bytes(dt), nb = n / (size_t)shmrt_dtype_block(dt);
	size_t per = FILL_CHUNK / bb, at_d = dt == SHMRT_Q6_K ? bb - 2 : 0;
	bool has_m = dt == SHMRT_Q4_1 || dt == SHMRT_Q4_K || dt == SHMRT_Q5_K;
	uint8_t *host = malloc(per * bb);
	if (!host)
		return -ENOMEM;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	const uint16_t scale = 0x2000; /* 2^-7 in fp16 */
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < nb; off += per) {
		size_t len = nb - off < per ? nb - off : per;
		for (size_t i = 0; i < len * bb; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
			host[i] = (uint8_t)(x >> 32);
		}
		for (size_t i = 0; i < len; i++) {
			memcpy(host + i * bb + at_d, &scale, 2);
			if (has_m)
				memcpy(host + i * bb + 2, &scale, 2);
		}
		rc = b->copy_to_device(NULL, (char *)dev + off * bb, host, len * bb);
	}
	if (rc == 0)
		rc = b->synchronize(NULL);
	free(host);
	return rc;
}

int kb_fill(const struct shmrt_backend *b, void *dev, size_t n, enum shmrt_dtype dt, uint64_t seed)
{
	if (shmrt_dtype_is_quantized(dt))
		return fill_blocks(b, dev, n, dt, seed);
	size_t es = shmrt_dtype_size(dt);
	void *host = malloc(FILL_CHUNK * es);
	if (!host)
		return -ENOMEM;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < n; off += FILL_CHUNK) {
		size_t len = n - off < FILL_CHUNK ? n - off : FILL_CHUNK;
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
			shmrt_store(host, dt, (int64_t)i, (float)(x >> 40) * 0x1p-23f - 1.0f);
		}
		rc = b->copy_to_device(NULL, (char *)dev + off * es, host, len * es);
	}
	if (rc == 0)
		rc = b->synchronize(NULL);
	free(host);
	return rc;
}

int kb_alloc_random(const struct shmrt_backend *b, void **dev, size_t n, enum shmrt_dtype dt, uint64_t seed)
{
	size_t bytes = shmrt_dtype_is_quantized(dt) ? shmrt_dtype_row_bytes(dt, (int64_t)n) : n * shmrt_dtype_size(dt);
	int rc = b->alloc(dev, bytes);
	if (rc < 0) {
		*dev = NULL;
		return rc;
	}
	if ((rc = kb_fill(b, *dev, n, dt, seed)) < 0) {
		b->free(*dev);
		*dev = NULL;
	}
	return rc;
}

static int upload_ints(const struct shmrt_backend *b, int32_t **dev, const int32_t *host, size_t n)
{
	int rc = b->alloc((void **)dev, n * sizeof(int32_t));
	if (rc == 0)
		rc = b->copy_to_device(NULL, *dev, host, n * sizeof(int32_t));
	return rc;
}

void kb_attn_free(const struct shmrt_backend *b, struct kb_attn *t)
{
	b->free(t->k);
	b->free(t->v);
	b->free(t->q);
	b->free(t->out);
	b->free(t->cu_q_lens);
	b->free(t->ctx_lens);
	b->free(t->block_tables);
	memset(t, 0, sizeof(*t));
}

/* The host metadata of s: cu_q_lens, ctx_lens and block tables (the
 * cache's blocks dealt out in a shuffled order, as a long-running
 * allocator leaves them). */
static int make_metadata(const struct kb_attn_shape *s, int32_t **cu, int32_t **ctx, int32_t **tables,
			 int *blocks_per_seq)
{
	int q_len = s->prefill ? s->ctx_len : 1, per = (s->ctx_len + s->block_size - 1) / s->block_size;
	int n_blocks = per * s->n_seqs;
	*cu = malloc(sizeof(int32_t) * (size_t)(s->n_seqs + 1));
	*ctx = malloc(sizeof(int32_t) * (size_t)s->n_seqs);
	*tables = malloc(sizeof(int32_t) * (size_t)n_blocks);
	if (!*cu || !*ctx || !*tables)
		return -ENOMEM;
	for (int i = 0; i < n_blocks; i++)
		(*tables)[i] = i;
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (int i = n_blocks - 1; i > 0; i--) { /* Fisher-Yates */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int j = (int)(x % (uint64_t)(i + 1)), tmp = (*tables)[i];
		(*tables)[i] = (*tables)[j];
		(*tables)[j] = tmp;
	}
	for (int i = 0; i <= s->n_seqs; i++)
		(*cu)[i] = i * q_len;
	for (int i = 0; i < s->n_seqs; i++)
		(*ctx)[i] = s->ctx_len;
	*blocks_per_seq = per;
	return 0;
}

int kb_attn_make(const struct shmrt_backend *b, const struct kb_attn_shape *s, struct kb_attn *t)
{
	memset(t, 0, sizeof(*t));
	int32_t *cu = NULL, *ctx = NULL, *tables = NULL;
	int per = 0, rc = make_metadata(s, &cu, &ctx, &tables, &per);
	int q_len = s->prefill ? s->ctx_len : 1, n_tokens = q_len * s->n_seqs, n_blocks = per * s->n_seqs;
	size_t cache_elems = (size_t)n_blocks * s->n_kv_heads * s->block_size * s->head_dim;
	size_t q_elems = (size_t)n_tokens * s->n_heads * s->head_dim;
	if (rc == 0)
		rc = upload_ints(b, &t->cu_q_lens, cu, (size_t)s->n_seqs + 1);
	if (rc == 0)
		rc = upload_ints(b, &t->ctx_lens, ctx, (size_t)s->n_seqs);
	if (rc == 0)
		rc = upload_ints(b, &t->block_tables, tables, (size_t)n_blocks);
	if (rc == 0)
		rc = kb_alloc_random(b, &t->k, cache_elems, s->dtype, 1);
	if (rc == 0)
		rc = kb_alloc_random(b, &t->v, cache_elems, s->dtype, 2);
	if (rc == 0)
		rc = kb_alloc_random(b, &t->q, q_elems, s->dtype, 3);
	if (rc == 0)
		rc = b->alloc(&t->out, q_elems * shmrt_dtype_size(s->dtype));
	if (rc == 0)
		rc = b->synchronize(NULL);
	free(cu);
	free(ctx);
	free(tables);
	if (rc < 0) {
		kb_attn_free(b, t);
		return rc;
	}
	t->a = (struct shmrt_attention_args){
		.n_seqs = s->n_seqs,
		.n_tokens = n_tokens,
		.max_q_len = q_len,
		.max_ctx_len = s->ctx_len,
		.n_heads = s->n_heads,
		.scale = 1.0f / __builtin_sqrtf((float)s->head_dim),
		.cu_q_lens = t->cu_q_lens,
		.ctx_lens = t->ctx_lens,
		.block_tables = t->block_tables,
		.block_table_stride = per,
		.q = t->q,
		.q_stride = (int64_t)s->n_heads * s->head_dim,
		.dtype = s->dtype,
		.out = t->out,
		.cache = {t->k, t->v, s->dtype, n_blocks, s->block_size, s->n_kv_heads, s->head_dim},
	};
	/* Decode reads every cached K and V row once; prefill multiplies each
	 * query with every key it sees (q k^T, then p v: 2 * 2 * head_dim
	 * flops per pair and query head; FlashAttention's benchmarks count
	 * causal work the same way). */
	t->kv_bytes = 2.0 * (double)s->n_seqs * s->ctx_len * s->n_kv_heads * s->head_dim *
		      (double)shmrt_dtype_size(s->dtype);
	double pairs = s->prefill ? (double)q_len * (q_len + 1) / 2 : (double)s->ctx_len;
	t->flops = 4.0 * s->head_dim * s->n_heads * s->n_seqs * pairs;
	return 0;
}

int kb_attn_shape_str(const struct kb_attn_shape *s, char *out, size_t cap)
{
	return snprintf(out, cap, "seqs=%d ctx=%d heads=%d kv_heads=%d head_dim=%d block=%d dtype=%s", s->n_seqs,
			s->ctx_len, s->n_heads, s->n_kv_heads, s->head_dim, s->block_size, shmrt_dtype_name(s->dtype));
}
