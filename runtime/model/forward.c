/* The forward step of a ragged batch through the backend's kernels
 * (model.h). Per layer, on the rows of all new tokens at once:
 *
 *   h = rmsnorm(x)            qkv = h Wqkv^T (+ b)      rope(q, k)
 *   kv_write(k, v)            a = attention(q, cache)   x += a Wo^T (+ b)
 *   h = rmsnorm(x)            gu = h Wgate_up^T         x += swiglu(gu) Wdown^T
 *
 * then the rows that want logits are gathered (the embedding kernel is a
 * row gather: "vocabulary" = the token rows), normed and multiplied by
 * lm_head. With tensor parallelism (model.h) a rank runs its heads and
 * MLP columns, and the outputs of o_proj and down_proj are all-reduced
 * before the residual adds. Activations and the cache are in m->act (f32 or bf16), logits
 * in f32. The step's int32 metadata goes to the device in one copy. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "model_impl.h"
#include "array_size.h"

static size_t f32s(int64_t n)
{
	return (size_t)n * sizeof(float);
}

/* Bytes of n activations. */
static size_t acts(const struct shmrt_model *m, int64_t n)
{
	return (size_t)n * shmrt_dtype_size(m->act);
}

/* The buffers sized by tokens (not the metadata). */
static void free_token_buffers(struct shmrt_model *m)
{
	struct shmrt_scratch *s = &m->s;
	void *bufs[] = {s->x,	   s->h,      s->qkv,	     s->attn,	      s->gu,	    s->act,
			s->rows,   s->logits, s->logits_part, s->logits_gather, s->params, s->sampled};
	for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
		m->b->free(bufs[i]);
	s->x = s->h = s->qkv = s->attn = s->gu = s->act = s->rows = s->logits = NULL;
	s->logits_part = s->logits_gather = NULL;
	s->params = NULL;
	s->sampled = NULL;
	s->cap_tokens = 0;
}

void shmrt_scratch_free(struct shmrt_model *m)
{
	free_token_buffers(m);
	m->b->free(m->s.meta);
	m->s.meta = NULL;
	m->s.meta_cap = 0;
}

static int qkv_dim(const struct shmrt_model_config *c)
{
	return (c->num_heads + 2 * c->num_kv_heads) * c->head_dim;
}

static int reserve_meta(struct shmrt_model *m, size_t entries)
{
	struct shmrt_scratch *s = &m->s;
	if (entries <= s->meta_cap)
		return 0;
	size_t cap = entries < 1024 ? 1024 : entries * 2;
	m->b->free(s->meta);
	s->meta = NULL;
	s->meta_cap = 0;
	free(m->host_meta);
	if (!(m->host_meta = malloc(cap * sizeof(int32_t))))
		return shmrt_fail(ENOMEM, "no memory for step metadata");
	int rc = m->b->alloc((void **)&s->meta, cap * sizeof(int32_t));
	if (rc < 0)
		return rc;
	s->meta_cap = cap;
	return 0;
}

int shmrt_scratch_reserve(struct shmrt_model *m, int n_tokens, size_t meta_entries)
{
	struct shmrt_scratch *s = &m->s;
	const struct shmrt_model_config *c = &m->local;
	int rc = reserve_meta(m, meta_entries);
	if (rc < 0 || n_tokens <= s->cap_tokens)
		return rc;
	free_token_buffers(m);
	int64_t T = (n_tokens + 15) & ~15, H = c->hidden_size, I = c->intermediate_size;
	bool split = m->vocab_local < c->vocab_size;
	struct {
		void **p;
		size_t bytes;
	} want[] = {
		{&s->x, acts(m, T * H)},
		{&s->h, acts(m, T * H)},
		{&s->qkv, acts(m, T * qkv_dim(c))},
		{&s->attn, acts(m, T * c->num_heads * c->head_dim)},
		{&s->gu, acts(m, T * 2 * I)},
		{&s->act, acts(m, T * I)},
		{&s->rows, acts(m, T * H)},
		{&s->logits, f32s(T * c->vocab_size)},
		{&s->logits_part, split ? f32s(T * m->vocab_local) : 0},
		{&s->logits_gather, split ? f32s(T * c->vocab_size) : 0},
		{(void **)&s->params, (size_t)T * sizeof(struct shmrt_sample_params)},
		{(void **)&s->sampled, (size_t)T * sizeof(int32_t)},
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (want[i].bytes && (rc = m->b->alloc(want[i].p, want[i].bytes)) < 0) {
			free_token_buffers(m);
			return rc;
		}
	s->cap_tokens = (int)T;
	return 0;
}

/* Where the step's metadata sits in s.meta (int32 offsets). */
struct meta_layout {
	size_t tokens, positions, slots, cu_q_lens, ctx_lens, block_tables, rows, total;
};

static struct meta_layout layout(const struct shmrt_step *st)
{
	struct meta_layout l;
	size_t T = (size_t)st->n_tokens, S = (size_t)st->n_seqs;
	l.tokens = 0;
	l.positions = l.tokens + T;
	l.slots = l.positions + T;
	l.cu_q_lens = l.slots + T;
	l.ctx_lens = l.cu_q_lens + S + 1;
	l.block_tables = l.ctx_lens + S;
	l.rows = l.block_tables + S * (size_t)st->block_table_stride;
	l.total = l.rows + T;
	return l;
}

struct step_shape {
	int max_q_len, max_ctx_len, rows;
};

/* Checks the step and fills the host metadata (layout above). */
static int fill_meta(struct shmrt_model *m, const struct shmrt_kv_pool *p, const struct shmrt_step *st,
		     const struct meta_layout *l, struct step_shape *sh)
{
	const struct shmrt_model_config *c = &m->local;
	int32_t *h = m->host_meta;
	int bs = p->block_size, cu = 0;
	*sh = (struct step_shape){0};
	for (int s = 0; s < st->n_seqs; s++) {
		int q = st->q_lens[s], ctx = st->ctx_lens[s];
		if (q < 0 || ctx < q || q > st->n_tokens - cu)
			return shmrt_fail(EINVAL, "step: sequence %d has q_len %d, ctx_len %d (%d of %d tokens left)",
					  s, q, ctx, st->n_tokens - cu, st->n_tokens);
		if (ctx > c->max_context)
			return shmrt_fail(EINVAL, "step: sequence %d reaches %d tokens, past the model's context of %d",
					  s, ctx, c->max_context);
		int nb = (ctx + bs - 1) / bs;
		if (nb > st->block_table_stride)
			return shmrt_fail(EINVAL, "step: sequence %d needs %d blocks, block_table_stride is %d", s,
					  nb, st->block_table_stride);
		const int32_t *bt = st->block_tables + (size_t)s * st->block_table_stride;
		for (int b = 0; b < nb; b++)
			if (bt[b] < 0 || bt[b] >= p->num_blocks)
				return shmrt_fail(EINVAL, "step: sequence %d: block %d of its table is %d, not in [0, %d)",
						  s, b, bt[b], p->num_blocks);
		memcpy(h + l->block_tables + (size_t)s * st->block_table_stride, bt,
		       (size_t)st->block_table_stride * sizeof(int32_t));
		for (int j = 0; j < q; j++) {
			int t = cu + j, pos = ctx - q + j, tok = st->tokens[t];
			if (tok < 0 || tok >= c->vocab_size)
				return shmrt_fail(EINVAL, "step: token %d is %d, not in the vocabulary [0, %d)", t, tok,
						  c->vocab_size);
			h[l->tokens + t] = tok;
			h[l->positions + t] = pos;
			h[l->slots + t] = bt[pos / bs] * bs + pos % bs;
		}
		h[l->cu_q_lens + s] = cu;
		h[l->ctx_lens + s] = ctx;
		if (st->logits == SHMRT_LOGITS_LAST && q > 0)
			h[l->rows + sh->rows++] = cu + q - 1;
		cu += q;
		sh->max_q_len = q > sh->max_q_len ? q : sh->max_q_len;
		sh->max_ctx_len = ctx > sh->max_ctx_len ? ctx : sh->max_ctx_len;
	}
	if (cu != st->n_tokens)
		return shmrt_fail(EINVAL, "step: the q_lens add up to %d, n_tokens is %d", cu, st->n_tokens);
	h[l->cu_q_lens + st->n_seqs] = cu;
	if (st->logits == SHMRT_LOGITS_ALL)
		sh->rows = st->n_tokens;
	return 0;
}

/* y[T][n] = x[T][k] W^T (+ b), y in the activation dtype */
static int linear(const struct shmrt_model *m, int T, const void *x, struct shmrt_weight w,
		  struct shmrt_weight bias, int n, int k, void *y)
{
	struct shmrt_matmul_args a = {.m = T, .n = n, .k = k, .x = x, .x_dtype = m->act, .w = w.p,
				      .w_dtype = w.dtype, .bias = bias.p, .bias_dtype = bias.dtype, .y = y,
				      .y_dtype = m->act};
	return m->b->matmul(NULL, &a);
}

static int rmsnorm(const struct shmrt_model *m, int rows, const void *x, struct shmrt_weight w, void *out)
{
	struct shmrt_rmsnorm_args a = {.rows = rows, .dim = m->cfg.hidden_size, .eps = m->cfg.rms_norm_eps,
				       .x = x, .dtype = m->act, .weight = w.p, .w_dtype = w.dtype, .out = out};
	return m->b->rmsnorm(NULL, &a);
}

/* Where a row-parallel projection of T rows goes: the transport's shared
 * buffer when it fits (the all-reduce then works in place, zero copy),
 * else s.h. */
static void *partial_out(const struct shmrt_model *m, int T)
{
	if (m->xfer_buf && acts(m, (int64_t)T * m->local.hidden_size) <= m->xfer_buf_bytes)
		return m->xfer_buf;
	return m->s.h;
}

/* Tensor parallel: h holds this rank's partial sum of a row-parallel
 * projection (o_proj, down_proj over its heads / MLP columns); the
 * all-reduce makes it the whole product on every rank. */
static int reduce(const struct shmrt_model *m, int T, void *h)
{
	if (m->world == 1)
		return 0;
	/* the transport reads h: the kernels that wrote it must be done */
	int rc = m->b->synchronize(NULL);
	if (rc < 0)
		return rc;
	return shmrt_xfer_all_reduce(m->xfer, h, h, (size_t)T * m->local.hidden_size, m->act, NULL);
}

static int residual_add(const struct shmrt_model *m, int T, void *x, const void *h)
{
	struct shmrt_add_args a = {.n = (int64_t)T * m->cfg.hidden_size, .a = x, .b = h, .dtype = m->act,
				   .out = x};
	return m->b->add(NULL, &a);
}

/* A weight of parts in different dtypes (model_impl.h): each part's
 * outputs [T][rows i] one after the other in y, part-major; the bias (one
 * plain vector of all the rows) split likewise. */
static int linear_parts(const struct shmrt_model *m, int T, const void *x, struct shmrt_weight w,
			struct shmrt_weight bias, int k, void *y)
{
	int64_t before = 0;
	for (int i = 0; i < w.n_parts; i++) {
		struct shmrt_weight part = {.p = w.part[i], .dtype = w.part_dtype[i]}, b = bias;
		if (b.p)
			b.p = (const uint8_t *)b.p + before * (int64_t)shmrt_dtype_size(b.dtype);
		int rc = linear(m, T, x, part, b, w.rows[i], k, (uint8_t *)y + acts(m, (size_t)T * before));
		if (rc < 0)
			return rc;
		before += w.rows[i];
	}
	return 0;
}

/* The attention half of layer l: x += attn(rmsnorm(x)). */
static int attention_block(struct shmrt_model *m, const struct shmrt_kv_pool *p, int l, const struct shmrt_step *st,
			   const struct meta_layout *ml, const struct step_shape *sh)
{
	const struct shmrt_model_config *c = &m->local;
	const struct shmrt_layer *w = &m->layers[l];
	struct shmrt_scratch *s = &m->s;
	const struct shmrt_backend *b = m->b;
	int T = st->n_tokens, H = c->hidden_size, D = c->head_dim, QKV = qkv_dim(c);
	int64_t q_dim = (int64_t)c->num_heads * D, kv_dim = (int64_t)c->num_kv_heads * D;
	/* fused: rows [T][q k v]; parts of mixed dtypes: [T][q], [T][k], [T][v] */
	bool parts = w->qkv.n_parts > 0;
	int64_t q_stride = parts ? q_dim : QKV, kv_stride = parts ? kv_dim : QKV;
	uint8_t *qkv = s->qkv, *k = qkv + acts(m, parts ? (size_t)T * q_dim : (size_t)q_dim),
		*v = k + acts(m, parts ? (size_t)T * kv_dim : (size_t)kv_dim);
	struct shmrt_kv_cache cache = shmrt_kv_pool_layer(p, l);
	int rc;

	if ((rc = rmsnorm(m, T, s->x, w->ln1, s->h)) < 0 ||
	    (rc = parts ? linear_parts(m, T, s->h, w->qkv, w->qkv_bias, H, s->qkv)
			: linear(m, T, s->h, w->qkv, w->qkv_bias, QKV, H, s->qkv)) < 0)
		return rc;
	struct shmrt_rope_args ra = {.n_tokens = T, .n_heads = c->num_heads, .n_kv_heads = c->num_kv_heads,
				     .head_dim = D, .q = qkv, .q_stride = q_stride, .k = k, .k_stride = kv_stride,
				     .dtype = m->act, .positions = s->meta + ml->positions, .cfg = c->rope};
	if ((rc = b->rope(NULL, &ra)) < 0)
		return rc;
	struct shmrt_kv_write_args kw = {.n_tokens = T, .k = k, .v = v, .k_stride = kv_stride, .v_stride = kv_stride,
					 .dtype = m->act, .slots = s->meta + ml->slots, .cache = cache};
	if ((rc = b->kv_write(NULL, &kw)) < 0)
		return rc;
	struct shmrt_attention_args aa = {
		.n_seqs = st->n_seqs, .n_tokens = T, .max_q_len = sh->max_q_len, .max_ctx_len = sh->max_ctx_len,
		.n_heads = c->num_heads, .scale = 1.0f / sqrtf((float)D), .cu_q_lens = s->meta + ml->cu_q_lens,
		.ctx_lens = s->meta + ml->ctx_lens, .block_tables = s->meta + ml->block_tables,
		.block_table_stride = st->block_table_stride, .q = qkv, .q_stride = q_stride, .dtype = m->act,
		.out = s->attn, .cache = cache};
	void *out = partial_out(m, T);
	if ((rc = b->attention(NULL, &aa)) < 0 ||
	    (rc = linear(m, T, s->attn, w->o, w->o_bias, H, (int)q_dim, out)) < 0 || (rc = reduce(m, T, out)) < 0)
		return rc;
	return residual_add(m, T, s->x, out);
}

/* The MLP half of layer l: x += down(swiglu(gate_up(rmsnorm(x)))). */
static int mlp_block(struct shmrt_model *m, int l, int T)
{
	const struct shmrt_layer *w = &m->layers[l];
	struct shmrt_scratch *s = &m->s;
	int H = m->local.hidden_size, I = m->local.intermediate_size, rc;
	struct shmrt_weight none = {0};
	/* fused: rows [T][gate up]; parts of mixed dtypes: [T][gate], [T][up] */
	bool parts = w->gate_up.n_parts > 0;
	if ((rc = rmsnorm(m, T, s->x, w->ln2, s->h)) < 0 ||
	    (rc = parts ? linear_parts(m, T, s->h, w->gate_up, none, H, s->gu)
			: linear(m, T, s->h, w->gate_up, none, 2 * I, H, s->gu)) < 0)
		return rc;
	struct shmrt_swiglu_args sw = {.rows = T, .dim = I, .gate = s->gu,
				       .up = (uint8_t *)s->gu + acts(m, parts ? (size_t)T * I : (size_t)I),
				       .in_stride = parts ? I : 2 * I, .dtype = m->act, .out = s->act};
	void *out = partial_out(m, T);
	if ((rc = m->b->swiglu(NULL, &sw)) < 0 || (rc = linear(m, T, s->act, w->down, none, H, I, out)) < 0 ||
	    (rc = reduce(m, T, out)) < 0)
		return rc;
	return residual_add(m, T, s->x, out);
}

/* lm_head split by vocabulary: every rank's logits of the rows, gathered
 * [world][rows][vocab_local], into s->logits [rows][vocab], rank r's
 * block at column r * vocab_local. */
static int gather_logits(struct shmrt_model *m, int rows)
{
	struct shmrt_scratch *s = &m->s;
	size_t part = (size_t)rows * (size_t)m->vocab_local, row = (size_t)m->vocab_local * sizeof(float);
	/* the transport reads logits_part: the matmul must be done */
	int rc = m->b->synchronize(NULL);
	if (rc < 0 || (rc = shmrt_xfer_all_gather(m->xfer, s->logits_part, s->logits_gather, part, SHMRT_F32, NULL)) < 0)
		return rc;
	for (int r = 0; r < m->world && rc >= 0; r++)
		rc = m->b->copy_2d(NULL, (float *)s->logits + (size_t)r * m->vocab_local,
				   (size_t)m->cfg.vocab_size * sizeof(float), (float *)s->logits_gather + (size_t)r * part,
				   row, row, (size_t)rows);
	return rc;
}

/* Final norm and lm_head on the rows that want logits. With tensor
 * parallelism lm_head is split by vocabulary when it divides (each rank
 * computes its logits, gathered after), else every rank holds all of it
 * and computes every logit (shard_plan.h). */
static int head(struct shmrt_model *m, const struct shmrt_step *st, const struct meta_layout *ml, int rows)
{
	struct shmrt_scratch *s = &m->s;
	int H = m->cfg.hidden_size, rc;
	void *src = s->x;
	if (st->logits == SHMRT_LOGITS_LAST) {
		struct shmrt_embedding_args g = {.n_tokens = rows, .dim = H, .vocab = st->n_tokens,
						 .tokens = s->meta + ml->rows, .table = s->x,
						 .table_dtype = m->act, .out = s->rows, .out_dtype = m->act};
		if ((rc = m->b->embedding(NULL, &g)) < 0)
			return rc;
		src = s->rows;
	}
	if ((rc = rmsnorm(m, rows, src, m->norm, s->rows)) < 0)
		return rc;
	/* logits in f32 whatever the activations: sampling and callers read f32 */
	bool split = m->vocab_local < m->cfg.vocab_size;
	struct shmrt_matmul_args a = {.m = rows, .n = m->vocab_local, .k = H, .x = s->rows, .x_dtype = m->act,
				      .w = m->lm_head.p, .w_dtype = m->lm_head.dtype,
				      .y = split ? s->logits_part : s->logits, .y_dtype = SHMRT_F32};
	if ((rc = m->b->matmul(NULL, &a)) < 0)
		return rc;
	return split ? gather_logits(m, rows) : 0;
}

int shmrt_model_forward(struct shmrt_model *m, struct shmrt_kv_pool *p, const struct shmrt_step *st,
			float *logits_out)
{
	shmrt_clear_error();
	m->logit_rows = 0;
	if (st->n_seqs < 0 || st->n_tokens < 0 || st->block_table_stride < 0 || st->logits < SHMRT_LOGITS_LAST ||
	    st->logits > SHMRT_LOGITS_NONE || (st->n_seqs && (!st->q_lens || !st->ctx_lens || !st->block_tables)) ||
	    (st->n_tokens && !st->tokens))
		return shmrt_fail(EINVAL, "step: bad n_seqs %d, n_tokens %d, block_table_stride %d or logits mode",
				  st->n_seqs, st->n_tokens, st->block_table_stride);
	if (p->m != m)
		return shmrt_fail(EINVAL, "step: the kv pool belongs to another model");
	struct meta_layout ml = layout(st);
	struct step_shape sh;
	int rc = shmrt_scratch_reserve(m, st->n_tokens, ml.total);
	if (rc < 0 || (rc = fill_meta(m, p, st, &ml, &sh)) < 0)
		return rc;
	if (st->n_tokens == 0)
		return 0;
	const struct shmrt_model_config *c = &m->local;
	struct shmrt_scratch *s = &m->s;
	if ((rc = m->b->copy_to_device(NULL, s->meta, m->host_meta, ml.total * sizeof(int32_t))) < 0)
		return rc;
	struct shmrt_embedding_args e = {.n_tokens = st->n_tokens, .dim = c->hidden_size, .vocab = c->vocab_size,
					 .tokens = s->meta + ml.tokens, .table = m->embed.p,
					 .table_dtype = m->embed.dtype, .out = s->x, .out_dtype = m->act};
	if ((rc = m->b->embedding(NULL, &e)) < 0)
		return rc;
	for (int l = 0; l < c->num_layers; l++) {
		if ((rc = attention_block(m, p, l, st, &ml, &sh)) < 0 || (rc = mlp_block(m, l, st->n_tokens)) < 0)
			return rc;
		if (m->on_layer)
			m->on_layer(m->on_layer_arg);
	}
	if (st->logits == SHMRT_LOGITS_NONE || sh.rows == 0)
		return m->b->synchronize(NULL);
	if ((rc = head(m, st, &ml, sh.rows)) < 0)
		return rc;
	if (logits_out)
		rc = m->b->copy_from_device(NULL, logits_out, s->logits, f32s((int64_t)sh.rows * c->vocab_size));
	else
		rc = m->b->synchronize(NULL);
	if (rc < 0)
		return rc;
	m->logit_rows = sh.rows;
	return sh.rows;
}
