/* Validation of kernel arguments, shared by all backends (args.h). */
#include <errno.h>

#include "shmrt/backend.h"
#include "args.h"
#include "fail.h"

static int bad_dtype(enum shmrt_dtype dt)
{
	return shmrt_dtype_size(dt) == 0;
}

/* A weight-like operand: a plain type, or a block format whose blocks
 * tile a row of n elements exactly (a block never straddles two rows). */
static int bad_rows(const char *what, const char *operand, enum shmrt_dtype dt, int64_t n)
{
	if (!shmrt_dtype_is_quantized(dt))
		return bad_dtype(dt) ? shmrt_fail(EINVAL, "%s: unknown %s dtype", what, operand) : 0;
	if (shmrt_dtype_block(dt) <= 0 || n % shmrt_dtype_block(dt))
		return shmrt_fail(EINVAL, "%s: %s is %s, blocks of %d, but its rows have %lld elements", what,
				  operand, shmrt_dtype_name(dt), shmrt_dtype_block(dt), (long long)n);
	return 0;
}

int shmrt_check_matmul(const struct shmrt_matmul_args *a)
{
	if (a->m < 0 || a->n <= 0 || a->k <= 0)
		return shmrt_fail(EINVAL, "matmul: bad shape m=%d n=%d k=%d", a->m, a->n, a->k);
	if (bad_dtype(a->x_dtype) || bad_dtype(a->y_dtype) || (a->bias && bad_dtype(a->bias_dtype)))
		return shmrt_fail(EINVAL, "matmul: unknown x, y or bias dtype (block formats are for w only)");
	int rc = bad_rows("matmul", "w", a->w_dtype, a->k);
	if (rc)
		return rc;
	if (a->m > 0 && (!a->x || !a->w || !a->y))
		return shmrt_fail(EINVAL, "matmul: NULL x, w or y");
	return 0;
}

int shmrt_check_kv_cache(const struct shmrt_kv_cache *c)
{
	if (!c->k || !c->v || bad_dtype(c->dtype))
		return shmrt_fail(EINVAL, "kv cache: NULL k or v, or unknown dtype");
	if (c->num_blocks <= 0 || c->block_size <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
	    c->head_dim % 2)
		return shmrt_fail(EINVAL, "kv cache: bad shape blocks=%d block_size=%d kv_heads=%d head_dim=%d",
				  c->num_blocks, c->block_size, c->n_kv_heads, c->head_dim);
	return 0;
}

int shmrt_check_kv_write(const struct shmrt_kv_write_args *a)
{
	int rc = shmrt_check_kv_cache(&a->cache);
	if (rc)
		return rc;
	int64_t row = (int64_t)a->cache.n_kv_heads * a->cache.head_dim;
	if (a->n_tokens < 0 || a->k_stride < row || a->v_stride < row || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "kv_write: bad n_tokens %d, strides %lld/%lld (row %lld) or dtype",
				  a->n_tokens, (long long)a->k_stride, (long long)a->v_stride, (long long)row);
	if (a->n_tokens > 0 && (!a->k || !a->v || !a->slots))
		return shmrt_fail(EINVAL, "kv_write: NULL k, v or slots");
	return 0;
}

int shmrt_check_attention(const struct shmrt_attention_args *a)
{
	int rc = shmrt_check_kv_cache(&a->cache);
	if (rc)
		return rc;
	const struct shmrt_kv_cache *c = &a->cache;
	if (a->n_seqs < 0 || a->n_tokens < 0 || a->max_q_len < 0 || a->max_ctx_len < a->max_q_len)
		return shmrt_fail(EINVAL, "attention: bad n_seqs %d, n_tokens %d, max_q_len %d or max_ctx_len %d",
				  a->n_seqs, a->n_tokens, a->max_q_len, a->max_ctx_len);
	if (a->n_heads <= 0 || a->n_heads % c->n_kv_heads)
		return shmrt_fail(EINVAL, "attention: n_kv_heads %d does not divide n_heads %d", c->n_kv_heads,
				  a->n_heads);
	if (a->q_stride < (int64_t)a->n_heads * c->head_dim || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "attention: q_stride %lld < n_heads * head_dim, or unknown dtype",
				  (long long)a->q_stride);
	int64_t blocks_needed = ((int64_t)a->max_ctx_len + c->block_size - 1) / c->block_size;
	if (a->block_table_stride < blocks_needed)
		return shmrt_fail(EINVAL, "attention: block_table_stride %d < %lld blocks of max_ctx_len %d",
				  a->block_table_stride, (long long)blocks_needed, a->max_ctx_len);
	if (a->n_seqs > 0 && (!a->cu_q_lens || !a->ctx_lens || !a->block_tables))
		return shmrt_fail(EINVAL, "attention: NULL metadata");
	if (a->n_tokens > 0 && (!a->q || !a->out))
		return shmrt_fail(EINVAL, "attention: NULL q or out");
	return 0;
}

int shmrt_check_rmsnorm(const struct shmrt_rmsnorm_args *a)
{
	if (a->rows < 0 || a->dim <= 0 || !(a->eps >= 0) || bad_dtype(a->dtype) || bad_dtype(a->w_dtype))
		return shmrt_fail(EINVAL, "rmsnorm: bad rows %d, dim %d, eps or dtype", a->rows, a->dim);
	if (a->rows > 0 && (!a->x || !a->weight || !a->out))
		return shmrt_fail(EINVAL, "rmsnorm: NULL x, weight or out");
	return 0;
}

int shmrt_check_rope(const struct shmrt_rope_args *a)
{
	if (a->n_tokens < 0 || a->n_heads <= 0 || a->head_dim <= 0 || a->head_dim % 2 || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "rope: bad n_tokens %d, n_heads %d, head_dim %d or dtype", a->n_tokens,
				  a->n_heads, a->head_dim);
	if (a->q_stride < (int64_t)a->n_heads * a->head_dim ||
	    (a->k && (a->n_kv_heads <= 0 || a->k_stride < (int64_t)a->n_kv_heads * a->head_dim)))
		return shmrt_fail(EINVAL, "rope: bad q or k stride, or n_kv_heads");
	const struct shmrt_rope_config *c = &a->cfg;
	if (!(c->theta > 0) || (c->scaling != SHMRT_ROPE_DEFAULT && c->scaling != SHMRT_ROPE_LLAMA3))
		return shmrt_fail(EINVAL, "rope: bad theta or scaling type");
	if (c->scaling == SHMRT_ROPE_LLAMA3 &&
	    !(c->factor > 0 && c->low_freq_factor > 0 && c->high_freq_factor > c->low_freq_factor &&
	      c->original_max_position > 0))
		return shmrt_fail(EINVAL, "rope: llama3 scaling needs factor > 0, high_freq_factor > "
					  "low_freq_factor > 0, original_max_position > 0");
	if (a->n_tokens > 0 && (!a->q || !a->positions))
		return shmrt_fail(EINVAL, "rope: NULL q or positions");
	return 0;
}

int shmrt_check_swiglu(const struct shmrt_swiglu_args *a)
{
	if (a->rows < 0 || a->dim <= 0 || a->in_stride < a->dim || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "swiglu: bad rows %d, dim %d, in_stride %lld or dtype", a->rows, a->dim,
				  (long long)a->in_stride);
	if (a->rows > 0 && (!a->gate || !a->up || !a->out))
		return shmrt_fail(EINVAL, "swiglu: NULL gate, up or out");
	return 0;
}

int shmrt_check_add(const struct shmrt_add_args *a)
{
	if (a->n < 0 || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "add: bad n %lld or dtype", (long long)a->n);
	if (a->n > 0 && (!a->a || !a->b || !a->out))
		return shmrt_fail(EINVAL, "add: NULL operand");
	return 0;
}

int shmrt_check_embedding(const struct shmrt_embedding_args *a)
{
	if (a->n_tokens < 0 || a->dim <= 0 || a->vocab <= 0 || bad_dtype(a->out_dtype))
		return shmrt_fail(EINVAL, "embedding: bad n_tokens %d, dim %d, vocab %d or out dtype", a->n_tokens,
				  a->dim, a->vocab);
	int rc = bad_rows("embedding", "table", a->table_dtype, a->dim);
	if (rc)
		return rc;
	if (a->n_tokens > 0 && (!a->tokens || !a->table || !a->out))
		return shmrt_fail(EINVAL, "embedding: NULL tokens, table or out");
	return 0;
}

int shmrt_check_sample(const struct shmrt_sample_args *a)
{
	if (a->n_seqs < 0 || a->vocab <= 0 || a->logits_stride < a->vocab || bad_dtype(a->dtype))
		return shmrt_fail(EINVAL, "sample: bad n_seqs %d, vocab %d, logits_stride %lld or dtype", a->n_seqs,
				  a->vocab, (long long)a->logits_stride);
	if (a->n_seqs > 0 && (!a->logits || !a->params || !a->tokens))
		return shmrt_fail(EINVAL, "sample: NULL logits, params or tokens");
	return 0;
}
