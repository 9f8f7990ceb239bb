/* A model's weights placed on a backend from a checkpoint (model.h).
 *
 * Every tensor goes into one device allocation. q/k/v_proj of a layer are
 * loaded back to back into one [(H + 2 KV) D][hidden] matrix (their biases
 * likewise) and gate/up_proj into one [2 I][hidden]: a row-major matrix
 * split along its rows is its parts one after the other, so fusing costs
 * nothing at load and saves matmuls at every step.
 *
 * With options.quantize_to, each 2-D weight is read into host staging in
 * the checkpoint's dtype and quantized row by row (core/quantize.h) into
 * its place: its slot is planned at the quantized size. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype_conv.h"
#include "fail.h"
#include "model_impl.h"
#include "quantize.h"
#include "shmrt/shard_plan.h"

#define ALIGN 256
/* Host staging for backends whose memory the CPU cannot write. */
#define STAGING_BYTES ((size_t)256 << 20)

struct place {
	const struct shmrt_tensor_info *t;
	struct shmrt_tensor_slice slice; /* this rank's part (count 0: the whole tensor) */
	size_t bytes;                    /* of that part, as placed */
	size_t off;
	/* quantized at load: src_bytes read as t->dtype, rows of cols
	 * elements quantized into qdt */
	bool quantize;
	enum shmrt_dtype qdt;
	size_t src_bytes;
	int64_t cols;
};

struct plan {
	struct shmrt_checkpoint *ck;
	const struct shmrt_shard_plan *shards; /* tensor parallel (world > 1), else NULL */
	struct place *items;
	size_t n, cap;
	size_t total;
	int quantize_to; /* shmrt_model_options.quantize_to */
	uint64_t saved;  /* bytes the quantization saved */
};

/* Where a weight will be, until the device buffer exists. */
struct slot {
	size_t off;
	enum shmrt_dtype dtype;
	bool present;
	bool mixed; /* parts of different dtypes (model_impl.h) */
	int n_parts;
	size_t part_off[SHMRT_MAX_PARTS];
	enum shmrt_dtype part_dtype[SHMRT_MAX_PARTS];
	int rows[SHMRT_MAX_PARTS]; /* this rank's */
};

struct layer_slots {
	struct slot ln1, qkv, qkv_bias, o, o_bias, ln2, gate_up, down;
};

static void plan_align(struct plan *pl)
{
	pl->total = (pl->total + ALIGN - 1) / ALIGN * ALIGN;
}

/* The type a 2-D weight of t->dtype with rows of cols elements (this
 * rank's part) is quantized into; false to keep it as it is. */
static bool quantized_type(const struct plan *pl, const struct shmrt_tensor_info *t, int64_t cols,
			   enum shmrt_dtype *qdt)
{
	if (!pl->quantize_to || !cols || shmrt_dtype_is_quantized(t->dtype))
		return false;
	return shmrt_quantize_row_type((enum shmrt_dtype)pl->quantize_to, cols, qdt);
}

/* Plans the quantization of it (bytes read as they are into the staging). */
static void plan_quantize(struct plan *pl, struct place *it, int64_t cols)
{
	size_t elem = shmrt_dtype_size(it->t->dtype);
	/* a K split (strided runs shorter than a row) has shorter rows */
	if (it->slice.count && it->slice.length < (uint64_t)cols * elem)
		cols = (int64_t)(it->slice.length / elem);
	enum shmrt_dtype qdt;
	if (!quantized_type(pl, it->t, cols, &qdt))
		return;
	uint64_t rows = it->bytes / elem / (uint64_t)cols;
	it->quantize = true;
	it->qdt = qdt;
	it->cols = cols;
	it->src_bytes = it->bytes;
	it->bytes = rows * shmrt_dtype_row_bytes(qdt, cols);
	pl->saved += it->src_bytes - it->bytes;
}

/* Appends tensor name, which must be [rows] (cols = 0) or [rows][cols]. An
 * absent optional tensor leaves *s not present. */
static int plan_tensor(struct plan *pl, const char *name, int64_t rows, int64_t cols, bool optional,
		       struct slot *s)
{
	const struct shmrt_tensor_info *t;
	int rc = shmrt_checkpoint_find(pl->ck, name, &t);
	if (rc == -ENOENT && optional) {
		shmrt_clear_error();
		return 0;
	}
	if (rc < 0)
		return rc;
	int ndim = cols ? 2 : 1;
	if (t->ndim != ndim || t->shape[0] != rows || (cols && t->shape[1] != cols))
		return shmrt_fail(EINVAL, "%s: tensor '%s' has shape [%lld%s%lld], its config wants [%lld%s%lld]",
				  t->file, name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
				  t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)rows, cols ? ", " : "",
				  (long long)cols);
	struct place it = {.t = t, .bytes = t->size, .off = pl->total};
	if (pl->shards) {
		const struct shmrt_shard *sh;
		int rc = shmrt_shard_plan_find(pl->shards, name, &sh);
		if (rc < 0)
			return rc;
		it.slice = sh->slice;
		it.bytes = sh->bytes;
	}
	plan_quantize(pl, &it, cols);
	enum shmrt_dtype dt = it.quantize ? it.qdt : t->dtype;
	if (s->present && s->dtype != dt)
		s->mixed = true;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 64;
		struct place *p = realloc(pl->items, cap * sizeof(*p));
		if (!p)
			return shmrt_fail(ENOMEM, "no memory for the weight table");
		pl->items = p;
		pl->cap = cap;
	}
	if (!s->present)
		*s = (struct slot){.off = pl->total, .dtype = dt, .present = true, .mixed = s->mixed};
	if (s->n_parts < SHMRT_MAX_PARTS) {
		uint64_t row = cols ? shmrt_dtype_row_bytes(dt, cols) : shmrt_dtype_size(dt);
		s->part_off[s->n_parts] = pl->total;
		s->part_dtype[s->n_parts] = dt;
		s->rows[s->n_parts++] = row ? (int)(it.bytes / row) : 0;
	}
	pl->items[pl->n++] = it;
	pl->total += it.bytes;
	return 0;
}

/* One weight (or the parts of a fused one, in order), starting aligned. */
static int plan_group(struct plan *pl, const char *const *names, int n, const int64_t *rows, int64_t cols,
		      bool optional, struct slot *s)
{
	plan_align(pl);
	*s = (struct slot){0};
	for (int i = 0; i < n; i++) {
		bool was = s->present;
		int rc = plan_tensor(pl, names[i], rows[i], cols, optional, s);
		if (rc < 0)
			return rc;
		/* optional parts come all or none (a q bias without a v bias) */
		if (optional && i > 0 && was != s->present)
			return shmrt_fail(EINVAL, "the checkpoint has '%s' but not all the tensors fused with it",
					  was ? names[0] : names[i]);
	}
	return 0;
}

static int plan_layer(struct plan *pl, const struct shmrt_model_config *c, int l, struct layer_slots *ls)
{
	char n[8][96];
	const char *parts[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
			       "mlp.up_proj"};
	int64_t H = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim,
		kvd = (int64_t)c->num_kv_heads * c->head_dim, I = c->intermediate_size;
	int64_t qkv_rows[3] = {qd, kvd, kvd}, gu_rows[2] = {I, I};
	const char *names[3];
	int rc;

#define NAME(i, fmt, ...) (snprintf(n[i], sizeof(n[i]), "model.layers.%d." fmt, l, __VA_ARGS__), n[i])
	names[0] = NAME(0, "%s", "input_layernorm.weight");
	if ((rc = plan_group(pl, names, 1, &H, 0, false, &ls->ln1)) < 0)
		return rc;
	for (int i = 0; i < 3; i++)
		names[i] = NAME(i, "%s.weight", parts[i]);
	if ((rc = plan_group(pl, names, 3, qkv_rows, H, false, &ls->qkv)) < 0)
		return rc;
	for (int i = 0; i < 3; i++)
		names[i] = NAME(i, "%s.bias", parts[i]);
	if ((rc = plan_group(pl, names, 3, qkv_rows, 0, !c->qkv_bias, &ls->qkv_bias)) < 0)
		return rc;
	names[0] = NAME(0, "%s", "self_attn.o_proj.weight");
	if ((rc = plan_group(pl, names, 1, &H, qd, false, &ls->o)) < 0)
		return rc;
	names[0] = NAME(0, "%s", "self_attn.o_proj.bias");
	if ((rc = plan_group(pl, names, 1, &H, 0, !c->o_bias, &ls->o_bias)) < 0)
		return rc;
	names[0] = NAME(0, "%s", "post_attention_layernorm.weight");
	if ((rc = plan_group(pl, names, 1, &H, 0, false, &ls->ln2)) < 0)
		return rc;
	for (int i = 0; i < 2; i++)
		names[i] = NAME(i, "%s.weight", parts[3 + i]);
	if ((rc = plan_group(pl, names, 2, gu_rows, H, false, &ls->gate_up)) < 0)
		return rc;
	names[0] = NAME(0, "%s", "mlp.down_proj.weight");
	if ((rc = plan_group(pl, names, 1, &H, I, false, &ls->down)) < 0)
		return rc;
#undef NAME
	/* A plain-dtype weight's bias shares its dtype (cuBLASLt's epilogue
	 * takes one); a block-format weight's bias is a plain vector (f32 in
	 * llama.cpp's files) and the kernels read it as its own dtype. */
	if (ls->qkv_bias.present && ls->qkv_bias.dtype != ls->qkv.dtype && !shmrt_dtype_is_quantized(ls->qkv.dtype))
		return shmrt_fail(ENOTSUP, "layer %d: q/k/v biases are %s but the weights %s (they must agree)", l,
				  shmrt_dtype_name(ls->qkv_bias.dtype), shmrt_dtype_name(ls->qkv.dtype));
	if (ls->o_bias.present && ls->o_bias.dtype != ls->o.dtype && !shmrt_dtype_is_quantized(ls->o.dtype))
		return shmrt_fail(ENOTSUP, "layer %d: o_proj's bias is %s but its weight %s (they must agree)", l,
				  shmrt_dtype_name(ls->o_bias.dtype), shmrt_dtype_name(ls->o.dtype));
	return 0;
}

/* Rows [r0, r1) of an item, read as they are at src, quantized into dst. */
struct quantize_part {
	const struct place *it;
	const uint8_t *src;
	uint8_t *dst;
	size_t r0, r1;
	int rc;
};

static void *quantize_rows(void *arg)
{
	struct quantize_part *q = arg;
	const struct place *it = q->it;
	size_t elem = shmrt_dtype_size(it->t->dtype), qrow = shmrt_dtype_row_bytes(it->qdt, it->cols);
	float *x = malloc((size_t)it->cols * sizeof(float));
	q->rc = x ? 0 : -ENOMEM;
	for (size_t r = q->r0; !q->rc && r < q->r1; r++) {
		const uint8_t *row = q->src + r * (size_t)it->cols * elem;
		for (int64_t i = 0; i < it->cols; i++)
			x[i] = shmrt_load(row, it->t->dtype, i);
		q->rc = shmrt_quantize_row(x, it->cols, it->qdt, q->dst + r * qrow);
	}
	free(x);
	return NULL;
}

/* Threads for n elements: the CPUs this process may use (a worker's
 * placement), one per 2^16 elements at least, at most QUANTIZE_THREADS. */
#define QUANTIZE_THREADS 64
static int quantize_threads(size_t n)
{
	cpu_set_t set;
	int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	size_t most = n >> 16;
	if ((size_t)cpus > most)
		cpus = most ? (int)most : 1;
	return cpus < QUANTIZE_THREADS ? cpus : QUANTIZE_THREADS;
}

/* Item it's rows, read as they are at src, quantized into dst, split over
 * threads by rows (K-quants' scale search costs ~100 ns a weight). */
static int quantize_item(const struct place *it, const uint8_t *src, uint8_t *dst)
{
	size_t rows = it->src_bytes / shmrt_dtype_size(it->t->dtype) / (size_t)it->cols;
	int n = quantize_threads(rows * (size_t)it->cols), started = 0, rc = 0;
	struct quantize_part parts[QUANTIZE_THREADS];
	pthread_t th[QUANTIZE_THREADS];
	for (int i = 0; i < n; i++)
		parts[i] = (struct quantize_part){.it = it, .src = src, .dst = dst, .r0 = rows * (size_t)i / (size_t)n,
						  .r1 = rows * (size_t)(i + 1) / (size_t)n};
	for (int i = 1; i < n && pthread_create(&th[i], NULL, quantize_rows, &parts[i]) == 0; i++)
		started = i;
	quantize_rows(&parts[0]);
	for (int i = started + 1; i < n; i++) /* threads that did not start: here */
		quantize_rows(&parts[i]);
	for (int i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n && !rc; i++)
		rc = parts[i].rc;
	if (rc)
		return shmrt_fail(-rc, "cannot quantize '%s' into %s", it->t->name, shmrt_dtype_name(it->qdt));
	return 0;
}

/* Item k (read at src) into its place on the device. */
static int place_item(struct shmrt_model *m, const struct place *it, const uint8_t *src)
{
	uint8_t *dst = (uint8_t *)m->weights + it->off;
	if (!it->quantize)
		return m->b->copy_to_device(NULL, dst, src, it->bytes);
	if (m->b->host_memory)
		return quantize_item(it, src, dst);
	uint8_t *q = malloc(it->bytes ? it->bytes : 1);
	int rc = q ? quantize_item(it, src, q) : shmrt_fail(ENOMEM, "no memory to quantize '%s'", it->t->name);
	if (!rc)
		rc = m->b->copy_to_device(NULL, dst, q, it->bytes);
	if (!rc)
		rc = m->b->synchronize(NULL); /* q is freed next */
	free(q);
	return rc;
}

/* Bytes an item is read as. */
static size_t read_bytes(const struct place *it)
{
	return it->quantize ? it->src_bytes : it->bytes;
}

/* Reads through host staging: for a backend whose memory the CPU cannot
 * write, and for weights quantized at load. */
static int load_staged(struct shmrt_model *m, struct shmrt_checkpoint *ck, const struct plan *pl,
		       const struct shmrt_load_options *lo)
{
	size_t cap = STAGING_BYTES;
	for (size_t i = 0; i < pl->n; i++)
		if (read_bytes(&pl->items[i]) > cap)
			cap = read_bytes(&pl->items[i]);
	uint8_t *stage = malloc(cap);
	struct shmrt_load_item *items = calloc(pl->n ? pl->n : 1, sizeof(*items));
	int rc = 0;
	if (!stage || !items)
		rc = shmrt_fail(ENOMEM, "no memory for %zu MiB of load staging", cap >> 20);
	for (size_t i = 0; !rc && i < pl->n;) {
		size_t j = i, used = 0;
		for (; j < pl->n && used + read_bytes(&pl->items[j]) <= cap; used += read_bytes(&pl->items[j++]))
			items[j - i] = (struct shmrt_load_item){.tensor = pl->items[j].t, .slice = pl->items[j].slice,
								.dst = stage + used};
		rc = shmrt_checkpoint_load(ck, items, j - i, lo, &m->load_stats);
		for (size_t k = i, at = 0; !rc && k < j; at += read_bytes(&pl->items[k++]))
			rc = place_item(m, &pl->items[k], stage + at);
		if (!rc)
			rc = m->b->synchronize(NULL);
		i = j;
	}
	free(items);
	free(stage);
	return rc;
}

static int load_weights(struct shmrt_model *m, struct shmrt_checkpoint *ck, const struct plan *pl,
			const struct shmrt_load_options *lo)
{
	int rc = m->b->alloc(&m->weights, pl->total ? pl->total : 1);
	if (rc < 0)
		return rc;
	/* the checkpoint is read straight into host-visible memory */
	if (!m->b->host_memory || pl->quantize_to)
		return load_staged(m, ck, pl, lo);
	struct shmrt_load_item *items = calloc(pl->n ? pl->n : 1, sizeof(*items));
	if (!items)
		return shmrt_fail(ENOMEM, "no memory for the load list");
	for (size_t i = 0; i < pl->n; i++)
		items[i] = (struct shmrt_load_item){.tensor = pl->items[i].t, .slice = pl->items[i].slice,
						    .dst = (uint8_t *)m->weights + pl->items[i].off};
	rc = shmrt_checkpoint_load(ck, items, pl->n, lo, &m->load_stats);
	free(items);
	return rc;
}

static struct shmrt_weight weight(const struct shmrt_model *m, const struct slot *s)
{
	if (!s->present)
		return (struct shmrt_weight){0};
	struct shmrt_weight w = {.p = (const uint8_t *)m->weights + s->off, .dtype = s->dtype};
	for (int i = 0; s->mixed && i < s->n_parts; i++) {
		w.part[i] = (const uint8_t *)m->weights + s->part_off[i];
		w.part_dtype[i] = s->part_dtype[i];
		w.rows[i] = s->rows[i];
	}
	w.n_parts = s->mixed ? s->n_parts : 0;
	return w;
}

static int place(struct shmrt_model *m, struct shmrt_checkpoint *ck, const struct shmrt_shard_plan *shards,
		 const struct shmrt_load_options *lo)
{
	const struct shmrt_model_config *c = &m->cfg;
	struct plan pl = {.ck = ck, .shards = shards, .quantize_to = m->quantize_to};
	struct slot embed, norm, lm_head = {0};
	struct layer_slots *ls = calloc((size_t)c->num_layers, sizeof(*ls));
	m->layers = calloc((size_t)c->num_layers, sizeof(*m->layers));
	int64_t H = c->hidden_size, V = c->vocab_size;
	const char *name;
	int rc = ls && m->layers ? 0 : shmrt_fail(ENOMEM, "no memory for the layer table");

	name = "model.embed_tokens.weight";
	if (!rc)
		rc = plan_group(&pl, &name, 1, &V, H, false, &embed);
	for (int l = 0; !rc && l < c->num_layers; l++)
		rc = plan_layer(&pl, c, l, &ls[l]);
	name = "model.norm.weight";
	if (!rc)
		rc = plan_group(&pl, &name, 1, &H, 0, false, &norm);
	/* Tied checkpoints may still carry lm_head.weight (a copy): unused. */
	name = "lm_head.weight";
	if (!rc && !c->tie_word_embeddings)
		rc = plan_group(&pl, &name, 1, &V, H, false, &lm_head);
	if (!rc)
		rc = load_weights(m, ck, &pl, lo);
	if (!rc) {
		m->embed = weight(m, &embed);
		m->norm = weight(m, &norm);
		m->lm_head = c->tie_word_embeddings ? m->embed : weight(m, &lm_head);
		/* split by vocabulary: an untied lm_head was loaded as this
		 * rank's rows; a tied one is those rows of the embedding */
		bool split = shmrt_shard_lm_head_split(c, m->world);
		m->vocab_local = split ? c->vocab_size / m->world : c->vocab_size;
		m->vocab_start = split ? m->rank * m->vocab_local : 0;
		if (split && c->tie_word_embeddings)
			m->lm_head.p = (const uint8_t *)m->embed.p +
				       (size_t)m->vocab_start * shmrt_dtype_row_bytes(embed.dtype, H);
		for (int l = 0; l < c->num_layers; l++) {
			const struct layer_slots *s = &ls[l];
			m->layers[l] = (struct shmrt_layer){
				.ln1 = weight(m, &s->ln1), .qkv = weight(m, &s->qkv),
				.qkv_bias = weight(m, &s->qkv_bias), .o = weight(m, &s->o),
				.o_bias = weight(m, &s->o_bias), .ln2 = weight(m, &s->ln2),
				.gate_up = weight(m, &s->gate_up), .down = weight(m, &s->down)};
			/* o_proj's bias goes into the partial sums of rank 0
			 * only, so that the all-reduce adds it once */
			if (m->rank)
				m->layers[l].o_bias = (struct shmrt_weight){0};
		}
		/* everything once but the embedding table, which decode only
		 * gathers a row of; this rank's lm_head rows once, tied or not */
		uint64_t embed_bytes = (uint64_t)V * shmrt_dtype_row_bytes(embed.dtype, H);
		m->step_weight_bytes = 0;
		for (size_t i = 0; i < pl.n; i++)
			m->step_weight_bytes += pl.items[i].bytes;
		m->step_weight_bytes -= embed_bytes;
		if (c->tie_word_embeddings)
			m->step_weight_bytes += (uint64_t)m->vocab_local * shmrt_dtype_row_bytes(embed.dtype, H);
		m->load_stats.weight_bytes = pl.total;
		m->load_stats.quantize_saved = pl.saved;
	}
	free(pl.items);
	free(ls);
	return rc;
}

/* The tensor-parallel fields of the options; the shard plan checks that
 * the heads and the MLP split evenly. */
static int tp_options(struct shmrt_model *m, const struct shmrt_model_options *opt)
{
	m->world = opt->world ? opt->world : 1;
	m->rank = opt->rank;
	m->xfer = opt->xfer;
	m->on_layer = opt->on_layer;
	m->on_layer_arg = opt->on_layer_arg;
	if (m->world < 1 || m->world > SHMRT_XFER_MAX_WORLD || m->rank < 0 || m->rank >= m->world)
		return shmrt_fail(EINVAL, "model: rank %d of world %d: need 0 <= rank < world <= %d", opt->rank,
				  opt->world, SHMRT_XFER_MAX_WORLD);
	if (m->world > 1 && !m->xfer)
		return shmrt_fail(EINVAL, "model: world %d needs a transport handle (options.xfer) for its all-reduces",
				  m->world);
	if (m->world > 1 && m->b->host_memory &&
	    shmrt_xfer_buffer(m->xfer, &m->xfer_buf, &m->xfer_buf_bytes) < 0) {
		shmrt_clear_error(); /* none: the all-reduces copy through the staging */
		m->xfer_buf = NULL;
		m->xfer_buf_bytes = 0;
	}
	return 0;
}

int shmrt_model_load(const char *dir, const struct shmrt_model_options *opt, struct shmrt_model **out)
{
	shmrt_clear_error();
	*out = NULL;
	static const struct shmrt_model_options defaults;
	if (!opt)
		opt = &defaults;
	struct shmrt_model *m = calloc(1, sizeof(*m));
	if (!m)
		return shmrt_fail(ENOMEM, "no memory for the model");
	int rc = shmrt_backend_get(opt->backend ? opt->backend : "cpu", &m->b);
	m->act = opt->activations;
	if (!rc && m->act != SHMRT_F32 && m->act != SHMRT_BF16)
		rc = shmrt_fail(EINVAL, "model: activations must be f32 or bf16, not %s", shmrt_dtype_name(m->act));
	m->quantize_to = opt->quantize_to;
	if (!rc && m->quantize_to && !shmrt_quantize_supported((enum shmrt_dtype)m->quantize_to))
		rc = shmrt_fail(EINVAL, "model: quantize_to must be 0 (none), q8_0, q4_0 or q4_k, not %s",
				shmrt_dtype_name((enum shmrt_dtype)m->quantize_to));
	if (!rc)
		rc = tp_options(m, opt);
	struct shmrt_checkpoint *ck = NULL;
	struct shmrt_shard_plan *shards = NULL;
	if (!rc)
		rc = shmrt_checkpoint_open(dir, &ck);
	if (!rc) {
		m->cfg = *shmrt_checkpoint_config(ck);
		if (m->world > 1)
			rc = shmrt_shard_plan_create(ck, m->rank, m->world, &shards);
	}
	if (!rc) {
		m->local = m->cfg;
		m->local.num_heads /= m->world;
		m->local.num_kv_heads /= m->world;
		m->local.intermediate_size /= m->world;
		rc = place(m, ck, shards, &opt->load);
	}
	shmrt_shard_plan_destroy(shards);
	shmrt_checkpoint_close(ck);
	if (rc < 0) {
		shmrt_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void shmrt_model_free(struct shmrt_model *m)
{
	if (!m)
		return;
	if (m->b) { /* none when the backend was not found: nothing allocated */
		shmrt_scratch_free(m);
		m->b->free(m->weights);
	}
	free(m->layers);
	free(m->host_meta);
	free(m);
}

const struct shmrt_model_config *shmrt_model_config(const struct shmrt_model *m)
{
	return &m->cfg;
}

const struct shmrt_backend *shmrt_model_backend(const struct shmrt_model *m)
{
	return m->b;
}

void shmrt_model_load_stats(const struct shmrt_model *m, struct shmrt_load_stats *out)
{
	*out = m->load_stats;
}

uint64_t shmrt_model_step_weight_bytes(const struct shmrt_model *m)
{
	return m->step_weight_bytes;
}
