/* The tensor-parallel sharding plan of a Llama-family model (shard_plan.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shard_plan.h"
#include "fail.h"
#include "array_size.h"

struct shmrt_shard_plan {
	struct shmrt_shard *shards; /* sorted by tensor name */
	size_t n;
	uint64_t bytes;
};

/* Dimensions as config.json gives them. */
enum dim { D_HIDDEN, D_Q, D_KV, D_INTER, D_VOCAB };

enum when { ALWAYS, QKV_BIAS, O_BIAS, UNTIED };

/* The weights of transformers' LlamaForCausalLM (also Mistral and Qwen2,
 * which use the same names), per layer under "model.layers.N.". */
static const struct weight {
	const char *name;
	bool per_layer;
	int ndim;
	enum dim dims[2];
	enum shmrt_shard_kind kind;
	enum when when;
} weights[] = {
	{"model.embed_tokens.weight", false, 2, {D_VOCAB, D_HIDDEN}, SHMRT_SHARD_REPLICATED, ALWAYS},
	{"model.norm.weight", false, 1, {D_HIDDEN}, SHMRT_SHARD_REPLICATED, ALWAYS},
	{"lm_head.weight", false, 2, {D_VOCAB, D_HIDDEN}, SHMRT_SHARD_REPLICATED, UNTIED},
	{"input_layernorm.weight", true, 1, {D_HIDDEN}, SHMRT_SHARD_REPLICATED, ALWAYS},
	{"self_attn.q_proj.weight", true, 2, {D_Q, D_HIDDEN}, SHMRT_SHARD_COLUMN, ALWAYS},
	{"self_attn.q_proj.bias", true, 1, {D_Q}, SHMRT_SHARD_COLUMN, QKV_BIAS},
	{"self_attn.k_proj.weight", true, 2, {D_KV, D_HIDDEN}, SHMRT_SHARD_COLUMN, ALWAYS},
	{"self_attn.k_proj.bias", true, 1, {D_KV}, SHMRT_SHARD_COLUMN, QKV_BIAS},
	{"self_attn.v_proj.weight", true, 2, {D_KV, D_HIDDEN}, SHMRT_SHARD_COLUMN, ALWAYS},
	{"self_attn.v_proj.bias", true, 1, {D_KV}, SHMRT_SHARD_COLUMN, QKV_BIAS},
	{"self_attn.o_proj.weight", true, 2, {D_HIDDEN, D_Q}, SHMRT_SHARD_ROW, ALWAYS},
	{"self_attn.o_proj.bias", true, 1, {D_HIDDEN}, SHMRT_SHARD_REPLICATED, O_BIAS},
	{"post_attention_layernorm.weight", true, 1, {D_HIDDEN}, SHMRT_SHARD_REPLICATED, ALWAYS},
	{"mlp.gate_proj.weight", true, 2, {D_INTER, D_HIDDEN}, SHMRT_SHARD_COLUMN, ALWAYS},
	{"mlp.up_proj.weight", true, 2, {D_INTER, D_HIDDEN}, SHMRT_SHARD_COLUMN, ALWAYS},
	{"mlp.down_proj.weight", true, 2, {D_HIDDEN, D_INTER}, SHMRT_SHARD_ROW, ALWAYS},
};
#define N_WEIGHTS (ARRAY_SIZE(weights))

static int64_t dim_of(const struct shmrt_model_config *c, enum dim d)
{
	switch (d) {
	case D_HIDDEN:
		return c->hidden_size;
	case D_Q:
		return (int64_t)c->num_heads * c->head_dim;
	case D_KV:
		return (int64_t)c->num_kv_heads * c->head_dim;
	case D_INTER:
		return c->intermediate_size;
	case D_VOCAB:
		return c->vocab_size;
	}
	return 0;
}

static bool applies(const struct shmrt_model_config *c, enum when w)
{
	switch (w) {
	case ALWAYS:
		return true;
	case QKV_BIAS:
		return c->qkv_bias;
	case O_BIAS:
		return c->o_bias;
	case UNTIED:
		return !c->tie_word_embeddings;
	}
	return false;
}

/* Splits are by whole heads (and whole MLP columns). */
static int check_world(const struct shmrt_model_config *c, int rank, int world)
{
	if (world < 1 || rank < 0 || rank >= world)
		return shmrt_fail(EINVAL, "rank %d of %d ranks: need 0 <= rank < ranks", rank, world);
	if (c->num_heads % world)
		return shmrt_fail(EINVAL,
				  "tensor parallelism %d: num_attention_heads %d is not a multiple of it "
				  "(q_proj and o_proj are split by whole heads)",
				  world, c->num_heads);
	if (c->num_kv_heads % world)
		return shmrt_fail(EINVAL,
				  "tensor parallelism %d: num_key_value_heads %d is not a multiple of it "
				  "(k_proj and v_proj are split by whole heads)",
				  world, c->num_kv_heads);
	if (c->intermediate_size % world)
		return shmrt_fail(EINVAL, "tensor parallelism %d: intermediate_size %d is not a multiple of it", world,
				  c->intermediate_size);
	return 0;
}

static int check_shape(const struct shmrt_model_config *c, const struct weight *w, const struct shmrt_tensor_info *t)
{
	bool ok = t->ndim == w->ndim;
	for (int i = 0; ok && i < w->ndim; i++)
		ok = t->shape[i] == dim_of(c, w->dims[i]);
	if (ok)
		return 0;
	char want[64], got[64] = "[";
	if (w->ndim == 2)
		snprintf(want, sizeof(want), "[%lld, %lld]", (long long)dim_of(c, w->dims[0]),
			 (long long)dim_of(c, w->dims[1]));
	else
		snprintf(want, sizeof(want), "[%lld]", (long long)dim_of(c, w->dims[0]));
	for (int i = 0; i < t->ndim && i < 4; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
	snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s]", t->ndim > 4 ? ", ..." : "");
	return shmrt_fail(EINVAL, "%s: tensor '%s' has shape %s; config.json implies %s", t->file, t->name, got, want);
}

/* Rank `rank`'s part of t: its shape, bytes and file slice. A block
 * format (Q8_0, Q4_K, ...) splits its rows only on block boundaries. */
static int plan_shard(struct shmrt_shard *s, const struct shmrt_tensor_info *t, enum shmrt_shard_kind kind,
		      int rank, int world)
{
	int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
	uint64_t row = shmrt_dtype_row_bytes(t->dtype, cols); /* bytes of one row of dimension 0 */
	*s = (struct shmrt_shard){.tensor = t, .kind = kind, .ndim = t->ndim, .shape = {t->shape[0], t->ndim == 2 ? cols : 0}};
	switch (kind) {
	case SHMRT_SHARD_REPLICATED:
		s->bytes = t->size;
		break;
	case SHMRT_SHARD_COLUMN:
		s->shape[0] = t->shape[0] / world;
		s->start = rank * s->shape[0];
		s->bytes = (uint64_t)s->shape[0] * row;
		s->slice.offset = (uint64_t)s->start * row;
		break;
	case SHMRT_SHARD_ROW: { /* t->shape[0] runs of cols/world elements, a row apart */
		s->shape[1] = cols / world;
		s->start = rank * s->shape[1];
		uint64_t part = shmrt_dtype_row_bytes(t->dtype, s->shape[1]);
		if (!part)
			return shmrt_fail(EINVAL, "%s: tensor '%s' (%s) cannot be split %d ways: rows of %lld give parts "
					  "of %lld elements, not whole blocks of %d (use fewer workers)",
					  t->file, t->name, shmrt_dtype_name(t->dtype), world, (long long)cols,
					  (long long)s->shape[1], shmrt_dtype_block(t->dtype));
		s->bytes = (uint64_t)t->shape[0] * part;
		s->slice = (struct shmrt_tensor_slice){(uint64_t)rank * part, part, row, (uint64_t)t->shape[0]};
		return 0;
	}
	}
	s->slice.length = s->slice.stride = s->bytes;
	s->slice.count = 1;
	return 0;
}

bool shmrt_shard_lm_head_split(const struct shmrt_model_config *c, int world)
{
	return world > 1 && c->vocab_size % world == 0;
}

static int add_shard(struct shmrt_shard_plan *p, const struct shmrt_checkpoint *ck, const struct weight *w,
		     const char *name, int rank, int world)
{
	const struct shmrt_model_config *c = shmrt_checkpoint_config(ck);
	const struct shmrt_tensor_info *t;
	int rc = shmrt_checkpoint_find(ck, name, &t);
	if (rc < 0)
		return shmrt_fail(ENOENT, "tensor '%s' is missing from the checkpoint (%s), and the %s model of config.json needs it",
				  name, shmrt_checkpoint_file(ck, 0), shmrt_arch_name(c->arch));
	if ((rc = check_shape(c, w, t)) < 0)
		return rc;
	/* lm_head (the one weight whose rows are the vocabulary, apart from
	 * the embedding) is split by vocabulary when it divides */
	enum shmrt_shard_kind kind = w->kind;
	if (w->dims[0] == D_VOCAB && w->when == UNTIED && shmrt_shard_lm_head_split(c, world))
		kind = SHMRT_SHARD_COLUMN;
	if ((rc = plan_shard(&p->shards[p->n++], t, kind, rank, world)) < 0)
		return rc;
	p->bytes += p->shards[p->n - 1].bytes;
	return 0;
}

static int fill(struct shmrt_shard_plan *p, const struct shmrt_checkpoint *ck, int rank, int world)
{
	const struct shmrt_model_config *c = shmrt_checkpoint_config(ck);
	char name[128];
	for (const struct weight *w = weights; w < weights + N_WEIGHTS; w++) {
		if (!applies(c, w->when))
			continue;
		for (int l = 0; l < (w->per_layer ? c->num_layers : 1); l++) {
			if (w->per_layer)
				snprintf(name, sizeof(name), "model.layers.%d.%s", l, w->name);
			int rc = add_shard(p, ck, w, w->per_layer ? name : w->name, rank, world);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct shmrt_shard *x = a, *y = b;
	return strcmp(x->tensor->name, y->tensor->name);
}

int shmrt_shard_plan_create(const struct shmrt_checkpoint *ck, int rank, int world, struct shmrt_shard_plan **out)
{
	shmrt_clear_error();
	*out = NULL;
	const struct shmrt_model_config *c = shmrt_checkpoint_config(ck);
	int rc = check_world(c, rank, world);
	if (rc < 0)
		return rc;
	struct shmrt_shard_plan *p = calloc(1, sizeof(*p));
	size_t max = N_WEIGHTS * (size_t)c->num_layers + N_WEIGHTS;
	if (!p || !(p->shards = calloc(max, sizeof(*p->shards)))) {
		free(p);
		return shmrt_fail(ENOMEM, "no memory for a plan of %zu tensors", max);
	}
	if ((rc = fill(p, ck, rank, world)) < 0) {
		shmrt_shard_plan_destroy(p);
		return rc;
	}
	qsort(p->shards, p->n, sizeof(*p->shards), by_name);
	*out = p;
	return 0;
}

void shmrt_shard_plan_destroy(struct shmrt_shard_plan *plan)
{
	if (!plan)
		return;
	free(plan->shards);
	free(plan);
}

size_t shmrt_shard_plan_count(const struct shmrt_shard_plan *plan)
{
	return plan->n;
}

const struct shmrt_shard *shmrt_shard_plan_get(const struct shmrt_shard_plan *plan, size_t i)
{
	return i < plan->n ? &plan->shards[i] : NULL;
}

int shmrt_shard_plan_find(const struct shmrt_shard_plan *plan, const char *name, const struct shmrt_shard **out)
{
	struct shmrt_tensor_info t = {.name = name};
	struct shmrt_shard key = {.tensor = &t};
	*out = bsearch(&key, plan->shards, plan->n, sizeof(*plan->shards), by_name);
	return *out ? 0 : shmrt_fail(ENOENT, "tensor '%s' is not in the plan", name);
}

uint64_t shmrt_shard_plan_bytes(const struct shmrt_shard_plan *plan)
{
	return plan->bytes;
}

int shmrt_shard_plan_load(struct shmrt_checkpoint *ck, const struct shmrt_shard_plan *plan, void *const *dst,
			  const struct shmrt_load_options *opt, struct shmrt_load_stats *stats)
{
	shmrt_clear_error();
	struct shmrt_load_item *items = calloc(plan->n ? plan->n : 1, sizeof(*items));
	if (!items)
		return shmrt_fail(ENOMEM, "no memory for %zu load items", plan->n);
	size_t n = 0;
	for (size_t i = 0; i < plan->n; i++)
		if (dst[i])
			items[n++] = (struct shmrt_load_item){plan->shards[i].tensor, plan->shards[i].slice, dst[i]};
	int rc = shmrt_checkpoint_load(ck, items, n, opt, stats);
	free(items);
	return rc;
}
