/* shmrt — a Llama-family model on a compute backend: weights, the paged KV
 * cache, the batched forward step, sampling and generation.
 *
 * Objects:
 *   struct shmrt_model     the weights of one checkpoint placed on a backend
 *                          ("cpu", "cpu-ref", "cuda"; backend.h), plus the
 *                          scratch space of a step. Used by one thread at a
 *                          time.
 *   struct shmrt_kv_pool   the paged KV cache of every layer on that backend
 *                          (num_blocks blocks of block_size tokens, the HND
 *                          layout of backend.h) and a host-side allocator of
 *                          its blocks.
 *   struct shmrt_kv_seq    one sequence's block table and length: plain host
 *                          memory the caller owns (zero it to start).
 *
 * A step (shmrt_model_forward) runs a ragged batch: each sequence brings
 * q_len new tokens (a whole prompt, a chunk of one continuing after the
 * tokens already cached, or one decode token) and the model writes their
 * K/V into the cache and computes the logits of the rows asked for. The
 * low-level form takes block tables as the scheduler keeps them; the
 * shmrt_model_step() form takes shmrt_kv_seq's and grows them itself.
 *
 * Numerics: weights stay in the checkpoint's dtype (f32, bf16 or f16; each
 * tensor its own). By default every activation, the KV cache and the
 * logits are f32, so a bf16 checkpoint computes what transformers computes
 * on the same weights upcast to float32: logits match transformers' float32
 * forward within about 1e-4 relative (tests/test_model_reference.c). With
 * bf16 activations (an option) each kernel rounds its output to bf16, as a
 * bf16 forward of transformers does; reductions still accumulate in fp32.
 *
 * Architectures: those of model_config.h: Llama 2/3 (GQA, Llama 3 rope
 * scaling, tied embeddings), Mistral (within its window), Qwen2 (q/k/v
 * biases).
 *
 * Errors: 0 or -errno with shmrt_last_error() set: -EINVAL for bad
 * arguments, -ENOSPC when the pool has no free block, -ENOMEM, the
 * checkpoint's and backend's errors as they come. */
#ifndef SHMRT_MODEL_H
#define SHMRT_MODEL_H

#include "common.h"
#include "backend.h"
#include "checkpoint.h"
#include "model_config.h"
#include "transport.h"

struct shmrt_model;
struct shmrt_kv_pool;

/* Zeroed fields take the defaults. */
struct shmrt_model_options {
	const char *backend;             /* NULL: "cpu" */
	struct shmrt_load_options load;  /* how the weights are read (checkpoint.h) */
	/* Activations and KV cache: SHMRT_F32 (0, the default; what the "cpu"
	 * backend runs) or SHMRT_BF16 (half the cache, and the tensor-core
	 * kernels of "cuda"; "cpu-ref" runs it too). Logits are f32 either way. */
	enum shmrt_dtype activations;
	/* Tensor parallelism: this process is rank `rank` of `world` (0 or 1:
	 * one rank, the whole model). Rank r loads only its shard of each
	 * weight (shard_plan.h: its heads of q/k/v and o_proj, its columns of
	 * the MLP, its rows of lm_head when world divides vocab_size; the rest
	 * replicated), its KV pool holds its KV heads only, and every step
	 * all-reduces the attention output projection and the MLP down
	 * projection (and all-gathers a split lm_head's logits) through xfer, a handle on the group's transport
	 * (transport.h) that the caller opened as this rank and keeps open
	 * while the model is used. num_attention_heads, num_key_value_heads and
	 * intermediate_size must be multiples of world (-EINVAL otherwise).
	 * Every rank runs the same steps with the same inputs (the calls are
	 * collective) and gets the whole logits. Logits differ from one rank's by rounding
	 * only: the sums are made in another order. When the group's region
	 * has shared buffers (shmrt_xfer_format_buffers) and the backend is a
	 * CPU one, partial sums that fit are made in the rank's buffer and
	 * reduced in place there (no staging copies). */
	int rank, world;
	struct shmrt_xfer *xfer;
	/* Called with on_layer_arg after each layer of a step has been issued
	 * (computed, on the CPU backends): a sign of life within a long step
	 * (the runtime's workers beat their heart there, so that a prefill of
	 * minutes on a CPU is not taken for a hang). NULL: none. */
	void (*on_layer)(void *arg);
	void *on_layer_arg;
	/* Weight-only quantization at load: 0 (the default) loads the weights
	 * as they are; SHMRT_Q8_0, SHMRT_Q4_0 or SHMRT_Q4_K (an enum
	 * shmrt_dtype value: none of them is 0, which is SHMRT_F32, hence an
	 * int where 0 means none) quantizes every 2-D f32/bf16/f16 weight
	 * (q/k/v/o, the MLP, the embedding, lm_head) as it is loaded
	 * (runtime/core/quantize.h); norms and biases stay. A row that is not
	 * whole blocks of the type falls back to Q8_0 (as llama.cpp does for
	 * the K-quants), else stays as it is. Tensors already quantized (a
	 * GGUF file) stay as they are. The load stats say what it saved. */
	int quantize_to;
};

/* Opens the checkpoint in dir (config.json, model.safetensors or an index
 * and its shards), checks every tensor the architecture needs (name, dtype,
 * shape: an error names the tensor) and loads them onto the backend. */
SHMRT_API int shmrt_model_load(const char *dir, const struct shmrt_model_options *opt, struct shmrt_model **out);
SHMRT_API void shmrt_model_free(struct shmrt_model *m);

SHMRT_API const struct shmrt_model_config *shmrt_model_config(const struct shmrt_model *m);
SHMRT_API const struct shmrt_backend *shmrt_model_backend(const struct shmrt_model *m);

/* What the load read (bytes, seconds, io method). */
SHMRT_API void shmrt_model_load_stats(const struct shmrt_model *m, struct shmrt_load_stats *out);

/* Bytes of weights one decode step reads: every matrix and norm once
 * (lm_head once even when tied; the embedding rows are not counted), of
 * this rank's shard with tensor parallelism. The numerator of the
 * memory-bandwidth ceiling of decode. */
SHMRT_API uint64_t shmrt_model_step_weight_bytes(const struct shmrt_model *m);

/* Bytes of a whole model's weights (every tensor of the config, lm_head
 * once, one rank), in the checkpoint's dtype (quantize_to 0) or with its
 * 2-D weights quantized at load (shmrt_model_options.quantize_to, its
 * Q8_0 fallback included): what `shmrt size` prints. */
SHMRT_API uint64_t shmrt_model_weight_bytes(const struct shmrt_model_config *cfg, int quantize_to);

/* ---- The paged KV cache ----------------------------------------------------
 *
 * block_size: tokens per block (0: 16). The pool allocates num_blocks
 * blocks of K and V for each layer on the model's backend; the model must
 * outlive it. */
SHMRT_API int shmrt_kv_pool_new(struct shmrt_model *m, int num_blocks, int block_size, struct shmrt_kv_pool **out);
SHMRT_API void shmrt_kv_pool_free(struct shmrt_kv_pool *p);

/* Device bytes of one block across all layers (K and V), for sizing: of
 * an f32 cache (the default), and of the model's own cache dtype and its
 * rank's KV heads (1/world of them). */
SHMRT_API size_t shmrt_kv_block_bytes(const struct shmrt_model_config *cfg, int block_size);
SHMRT_API size_t shmrt_model_kv_block_bytes(const struct shmrt_model *m, int block_size);

SHMRT_API int shmrt_kv_pool_block_size(const struct shmrt_kv_pool *p);
SHMRT_API int shmrt_kv_pool_num_blocks(const struct shmrt_kv_pool *p);
SHMRT_API int shmrt_kv_pool_free_blocks(const struct shmrt_kv_pool *p);

/* Block-level allocation for a caller that keeps its own tables (a
 * scheduler): n block ids into ids[], all or none (-ENOSPC); and back. */
SHMRT_API int shmrt_kv_pool_alloc(struct shmrt_kv_pool *p, int n, int32_t *ids);
SHMRT_API void shmrt_kv_pool_release(struct shmrt_kv_pool *p, const int32_t *ids, int n);

/* One sequence's cache: len tokens are cached in blocks[0 .. n_blocks).
 * Zero it before first use; shmrt_kv_seq_reset() gives its blocks back and
 * frees the table (it may be used again afterwards). */
struct shmrt_kv_seq {
	int len;         /* tokens in the cache */
	int n_blocks;    /* blocks held: >= ceil(len / block_size) */
	int cap;         /* capacity of blocks[] */
	int32_t *blocks; /* block table (malloc'ed) */
};

/* Makes s hold blocks for at least len tokens (s->len is unchanged). */
SHMRT_API int shmrt_kv_seq_reserve(struct shmrt_kv_pool *p, struct shmrt_kv_seq *s, int len);
SHMRT_API void shmrt_kv_seq_reset(struct shmrt_kv_pool *p, struct shmrt_kv_seq *s);

/* ---- The forward step ------------------------------------------------------ */

/* Which rows get logits. */
enum shmrt_logits_mode {
	SHMRT_LOGITS_LAST = 0, /* one row per sequence: its last new token (none if q_len = 0) */
	SHMRT_LOGITS_ALL = 1,  /* one row per new token, in token order */
	SHMRT_LOGITS_NONE = 2, /* fill the cache only (a prefill chunk) */
};

/* A ragged batch, host memory (the model copies it to the device).
 * Sequence s brings q_lens[s] new tokens, tokens[cu .. cu + q_lens[s]) with
 * cu the sum of the q_lens before it, at positions ctx_lens[s] - q_lens[s]
 * .. ctx_lens[s] - 1: ctx_lens[s] counts the tokens cached after the step,
 * new ones included. Its block table is block_tables[s * block_table_stride
 * ..], holding at least ceil(ctx_lens[s] / block_size) blocks of the pool. */
struct shmrt_step {
	int n_seqs;
	int n_tokens; /* sum of q_lens */
	const int32_t *tokens;
	const int32_t *q_lens;
	const int32_t *ctx_lens;
	const int32_t *block_tables;
	int block_table_stride;
	enum shmrt_logits_mode logits;
};

/* Runs the step. On return the logits (f32, one row of vocab_size per row
 * asked for, in sequence / token order) are in device memory, ready for
 * shmrt_model_sample(); logits_out (host, may be NULL) gets a copy. Returns
 * the number of logit rows. Token ids outside the vocabulary are -EINVAL. */
SHMRT_API int shmrt_model_forward(struct shmrt_model *m, struct shmrt_kv_pool *p, const struct shmrt_step *s,
				  float *logits_out);

/* One sequence of a shmrt_model_step(): n new tokens after those cached. */
struct shmrt_seq_input {
	struct shmrt_kv_seq *seq;
	const int32_t *tokens;
	int n;
};

/* shmrt_model_forward over shmrt_kv_seq's: reserves the blocks the new
 * tokens need (-ENOSPC leaves every sequence as it was), runs the step and
 * advances each seq->len by its n. */
SHMRT_API int shmrt_model_step(struct shmrt_model *m, struct shmrt_kv_pool *p, const struct shmrt_seq_input *in,
			       int n_seqs, enum shmrt_logits_mode logits, float *logits_out);

/* Samples one token per logit row of the last step (backend.h's sample
 * kernel; params[row] per row, host memory) into tokens[] (host). */
SHMRT_API int shmrt_model_sample(struct shmrt_model *m, const struct shmrt_sample_params *params, int n_rows,
				 int32_t *tokens);

/* ---- Generation (one sequence) ---------------------------------------------- */

struct shmrt_gen_options {
	int max_tokens;    /* new tokens at most (0: 16) */
	float temperature; /* <= 0: greedy */
	float top_p;       /* 0 or >= 1: off */
	int top_k;         /* <= 0: off */
	uint64_t seed;
	int ignore_eos;    /* keep going past the config's eos ids */
	int prefill_chunk; /* prompt tokens per step (0: the whole prompt at once) */
	/* Called with each new token: return 0 to go on, > 0 to stop, < 0
	 * (-errno) to fail the call with that value. */
	int (*on_token)(void *ctx, int32_t token);
	void *ctx;
};

struct shmrt_gen_stats {
	int prompt_tokens, new_tokens;
	int stopped_by_eos;
	double prefill_seconds, decode_seconds;
};

/* Generates after prompt[0..n_prompt) into out[0..cap) using a kv pool of
 * its own sized for n_prompt + max_tokens (capped at the model's
 * max_context); returns the number of new tokens (eos included when it
 * ended the run). */
SHMRT_API int shmrt_generate(struct shmrt_model *m, const int32_t *prompt, int n_prompt,
			     const struct shmrt_gen_options *opt, int32_t *out, int cap, struct shmrt_gen_stats *stats);

#endif
