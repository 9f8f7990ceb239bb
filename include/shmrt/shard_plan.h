/* shmrt — which part of each weight a tensor-parallel rank loads.
 *
 * Megatron-style tensor parallelism over T ranks, in Hugging Face's
 * [out_features][in_features] weight layout (W[N][K], row-major):
 *
 *   column-parallel, split along N (each rank owns N/T output rows):
 *       q_proj, k_proj, v_proj (and their Qwen2 biases), gate_proj, up_proj;
 *   row-parallel, split along K (each rank owns K/T input columns; the
 *   partial outputs are summed by an all-reduce):
 *       o_proj, down_proj;
 *   split by vocabulary (each rank owns vocab_size/T rows, its logits;
 *   an all-gather puts them together for sampling), when vocab_size is a
 *   multiple of T: lm_head (with tied embeddings, the same rows of
 *   embed_tokens: no tensor of its own to load);
 *   replicated (every rank holds the whole tensor):
 *       embed_tokens (any rank may look up any token), the RMSNorm
 *       weights, model.norm, o_proj's bias (added once, after the
 *       all-reduce), lm_head when vocab_size is not a multiple of T.
 *
 * Split, lm_head costs each rank 1/T of its bytes per step (Llama 3's is
 * 1 GiB in bf16, read by every decode step) against a gather of
 * [rows x vocab] f32 logits, as vLLM's ParallelLMHead does.
 *
 * Splits are head-aligned: num_attention_heads and num_key_value_heads
 * (and intermediate_size) must be multiples of T, else planning fails with
 * a message saying which. Rank r owns heads [r*H/T, (r+1)*H/T).
 *
 * A column-parallel shard is one contiguous byte range of the file. A
 * row-parallel shard is N runs of K/T elements, a row apart: a strided
 * slice (checkpoint.h). The loader reads such a slice through whole rows,
 * several rows per read, and keeps the slice: for o_proj and down_proj a
 * rank reads T times its share of bytes, but in large sequential reads; a
 * read per run (a few KiB each for K/T of a real model) would turn a cold
 * load into random I/O. Runs of a quarter of the read size or more are read
 * one by one into place. */
#ifndef SHMRT_SHARD_PLAN_H
#define SHMRT_SHARD_PLAN_H

#include "common.h"
#include "checkpoint.h"

enum shmrt_shard_kind {
	SHMRT_SHARD_REPLICATED = 0,
	SHMRT_SHARD_COLUMN = 1, /* split along dimension 0 (N, output features) */
	SHMRT_SHARD_ROW = 2,    /* split along dimension 1 (K, input features) */
};

/* One tensor's part on this rank. */
struct shmrt_shard {
	const struct shmrt_tensor_info *tensor;
	enum shmrt_shard_kind kind;
	int ndim;                             /* as the tensor: 1 or 2 */
	int64_t shape[2];                     /* of this rank's part */
	int64_t start;                        /* first row (COLUMN) or column (ROW) held; 0 if REPLICATED */
	uint64_t bytes;                       /* of this rank's part, in memory (row-major) */
	struct shmrt_tensor_slice slice;      /* the file bytes: tensor->offset + slice.offset + i * slice.stride */
};

struct shmrt_shard_plan;

/* Plans rank `rank` of `world` for the model of ck (its config.json names
 * the tensors). Every tensor the model needs must be in the checkpoint with
 * the shape the config implies; tensors the model does not use (such as a
 * tied lm_head) are left out. */
SHMRT_API int shmrt_shard_plan_create(const struct shmrt_checkpoint *ck, int rank, int world,
				      struct shmrt_shard_plan **out);
SHMRT_API void shmrt_shard_plan_destroy(struct shmrt_shard_plan *plan);

/* The shards, in checkpoint name order: i in [0, count). */
SHMRT_API size_t shmrt_shard_plan_count(const struct shmrt_shard_plan *plan);
SHMRT_API const struct shmrt_shard *shmrt_shard_plan_get(const struct shmrt_shard_plan *plan, size_t i);
SHMRT_API int shmrt_shard_plan_find(const struct shmrt_shard_plan *plan, const char *name,
				    const struct shmrt_shard **out);

/* Whether lm_head is split by vocabulary over world ranks: world > 1 and
 * vocab_size a multiple of world. */
SHMRT_API bool shmrt_shard_lm_head_split(const struct shmrt_model_config *c, int world);

/* Bytes this rank holds: the sum of the shards' bytes. */
SHMRT_API uint64_t shmrt_shard_plan_bytes(const struct shmrt_shard_plan *plan);

/* Loads every shard i into dst[i] (plan count entries, dst[i] of
 * shard bytes; NULL skips that shard). */
SHMRT_API int shmrt_shard_plan_load(struct shmrt_checkpoint *ck, const struct shmrt_shard_plan *plan, void *const *dst,
				    const struct shmrt_load_options *opt, struct shmrt_load_stats *stats);

#endif
