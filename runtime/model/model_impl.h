/* Internal: the model's weights on the backend, its step scratch, the KV
 * pool (model.c, kv_pool.c, forward.c, sampler.c). */
#ifndef SHMRT_MODEL_IMPL_H
#define SHMRT_MODEL_IMPL_H

#include <stdbool.h>

#include "shmrt/model.h"
#include "block_stack.h"

#define SHMRT_MAX_PARTS 3

/* A weight in device memory (NULL when absent, as an optional bias).
 * A fused weight whose parts differ in dtype (llama.cpp's Q4_K_M files keep
 * attn_v and ffn_down in Q6_K beside Q4_K q, k, gate and up) is still
 * stored as its parts back to back, but each part is its own matmul:
 * n_parts > 0, part i at part[i], rows[i] rows of part_dtype[i]. */
struct shmrt_weight {
	const void *p;
	enum shmrt_dtype dtype;
	int n_parts;
	const void *part[SHMRT_MAX_PARTS];
	enum shmrt_dtype part_dtype[SHMRT_MAX_PARTS];
	int rows[SHMRT_MAX_PARTS];
};

/* One decoder layer. Q, K and V are one matrix [(H + 2 KV) D][hidden]
 * (their rows back to back, as loaded), and gate/up one [2 I][hidden]:
 * one matmul each instead of three and two. */
struct shmrt_layer {
	struct shmrt_weight ln1, qkv, qkv_bias, o, o_bias, ln2, gate_up, down;
};

/* Device buffers of a step, sized for cap_tokens new tokens. */
struct shmrt_scratch {
	int cap_tokens;
	void *x, *h, *qkv, *attn, *gu, *act, *rows; /* activations (model.act) */
	void *logits;                                 /* f32 [tokens][vocab] */
	/* lm_head split by vocabulary (model.vocab_local < vocab): this rank's
	 * logits [tokens][vocab_local], and every rank's after the all-gather
	 * [world][tokens][vocab_local]; NULL otherwise */
	void *logits_part, *logits_gather;
	int32_t *meta;                                        /* tokens, positions, ... (forward.c) */
	size_t meta_cap;                                      /* int32 entries */
	struct shmrt_sample_params *params;
	int32_t *sampled;
};

struct shmrt_model {
	struct shmrt_model_config cfg;   /* the checkpoint's */
	/* This rank's part, what the step and the KV pool use: cfg with the
	 * heads, KV heads and intermediate size divided by world. */
	struct shmrt_model_config local;
	int rank, world;
	struct shmrt_xfer *xfer; /* world > 1: the all-reduces of the step */
	/* The rank's shared buffer of the transport (shmrt_xfer_buffer), when
	 * there is one and the backend's memory is host memory: partial sums
	 * that fit are made there and reduced in place, without copies. */
	void *xfer_buf;
	size_t xfer_buf_bytes;
	const struct shmrt_backend *b;
	enum shmrt_dtype act; /* of activations and the KV cache */
	void *weights; /* one device allocation holding every tensor */
	struct shmrt_weight embed, norm, lm_head;
	/* lm_head's rows on this rank: the vocabulary [vocab_start,
	 * vocab_start + vocab_local) (shard_plan.h; all of it unless split) */
	int vocab_start, vocab_local;
	void (*on_layer)(void *arg); /* options.on_layer */
	void *on_layer_arg;
	struct shmrt_layer *layers;
	uint64_t step_weight_bytes;
	struct shmrt_load_stats load_stats;
	int quantize_to; /* shmrt_model_options.quantize_to */

	struct shmrt_scratch s;
	int32_t *host_meta; /* host copy of s.meta */
	size_t host_meta_cap;
	int logit_rows; /* of the last forward */
};

struct shmrt_kv_pool {
	struct shmrt_model *m;
	int num_blocks, block_size;
	void *mem;          /* [layer][k, v][block][kv_head][slot][head_dim], model.act */
	size_t layer_bytes; /* of one layer's K (or V) array */
	struct block_stack free; /* the free block ids (block_stack.h) */
};

/* The layer's K/V cache view, as the kernels take it. */
struct shmrt_kv_cache shmrt_kv_pool_layer(const struct shmrt_kv_pool *p, int layer);

/* Makes the scratch hold n_tokens new tokens and meta_entries int32s. */
int shmrt_scratch_reserve(struct shmrt_model *m, int n_tokens, size_t meta_entries);
void shmrt_scratch_free(struct shmrt_model *m);

#endif
