/* shmrt — compute backends: the kernels of a Llama-family decoder step.
 *
 * A backend is a table of function pointers (as NCCL's transports are):
 * "cpu-ref" (plain reference kernels, the readable truth), "cpu" (threaded,
 * vectorised; used at run time on a machine without a GPU) and "cuda".
 * shmrt_backend_get() hands out the table; callers never branch on the name:
 * what differs between backends that a caller must know (where the memory
 * is, which device) is a capability in the table.
 *
 * Memory. Every pointer passed to a kernel, including the int32 metadata
 * arrays (token ids, positions, block tables, ...), is *device memory* of
 * that backend: allocated with b->alloc and filled with b->copy_to_device.
 * On the CPU backends device memory is plain host memory (64-byte aligned).
 * Host scalars (counts, maxima, scales) are fields of the argument structs,
 * so that a GPU launch never has to read device memory to size its grid.
 *
 * Streams. Every entry takes `void *stream`: a cudaStream_t for "cuda"
 * (NULL: the legacy default stream), ignored (pass NULL) on the CPU. Kernels
 * are asynchronous on the GPU and synchronous on the CPU; copy_to_device
 * may return before the copy lands but src may be reused at once;
 * copy_from_device returns when dst is filled; synchronize waits for all
 * work queued on the stream.
 *
 * Arguments. Kernels with more than a handful of arguments take a struct.
 * Initialise argument structs with designated initialisers (or zero them):
 * fields added later default to 0 meaning "off", so old callers keep
 * working. Dimensions are int, strides int64_t counted in *elements* (not
 * bytes), byte sizes size_t. All matrices are row-major.
 *
 * Errors: 0 or -errno with shmrt_last_error() set. -EINVAL for bad shapes,
 * -ENOTSUP for a dtype combination a backend does not implement (the
 * reference implements them all), a CUDA error maps to -EIO. On the GPU
 * errors inside a kernel surface at the next synchronize.
 *
 * Numerics: every reduction accumulates in fp32 whatever the storage dtype;
 * results are rounded to the output dtype once, at the end (round to
 * nearest even for bf16 and fp16).
 *
 * ---- Paged KV cache layout ------------------------------------------------
 *
 * Per layer, two arrays (K and V) of num_blocks blocks of block_size
 * tokens. Inside a block, heads are major ("HND", one of FlashInfer's two
 * layouts):
 *
 *     k[block][kv_head][slot_in_block][head_dim]      (v the same)
 *
 * element (token t of a sequence, kv head h, dim d) of that sequence lives
 * at block = block_table[t / block_size], slot = t % block_size:
 *
 *     k[((block * n_kv_heads + h) * block_size + slot) * head_dim + d]
 *
 * Why heads-major: attention works on one (sequence, kv head) at a time and
 * streams that head's keys; with HND the keys of one head in one block are
 * one contiguous block_size*head_dim run (4 KiB for 16 x 128 bf16), which
 * the CPU prefetchers and GPU bulk loads (cp.async/TMA) read at full
 * bandwidth, where token-major ("NHD", vLLM's flash-attn layout) would give
 * head_dim-sized pieces strided by n_kv_heads*head_dim. The price is paid
 * by the cache write, which touches n_kv_heads separate runs per token and
 * is small next to the reads.
 *
 * A slot of the whole cache is block * block_size + slot_in_block (vLLM's
 * slot_mapping); kv_write takes one per new token, -1 meaning "skip"
 * (padding). The block table of sequence s is the row
 * block_tables[s * block_table_stride .. + ceil(ctx_len/block_size)).
 *
 * ---- Ragged batches ---------------------------------------------------------
 *
 * A batch mixes sequences of different lengths, prefills and decodes in one
 * call (as FlashAttention's varlen API): sequence s owns the new tokens
 * cu_q_lens[s] .. cu_q_lens[s+1]-1 of the token-major q/out tensors
 * (cu_q_lens[0] = 0, cu_q_lens[n_seqs] = n_tokens), q_len = the
 * difference, and has ctx_len[s] >= q_len tokens in the cache *including*
 * the new ones (write them with kv_write first). New token j (0 <= j <
 * q_len) sits at position ctx_len - q_len + j and attends causally to cache
 * positions 0 .. ctx_len - q_len + j. Decode is q_len = 1; a fresh prefill
 * is q_len = ctx_len; chunked prefill (a prompt continuing after cached
 * tokens, or prefix caching) is 1 < q_len < ctx_len. q_len = 0 is allowed
 * (nothing to do for that sequence).
 *
 * GQA: query head hq uses kv head hq / (n_heads / n_kv_heads); n_kv_heads
 * divides n_heads. Activation rows: q is [n_tokens][n_heads][head_dim] with
 * rows q_stride elements apart (so Q can be a slice of a fused QKV matmul
 * output); out is [n_tokens][n_heads * head_dim], contiguous.
 */
#ifndef SHMRT_BACKEND_H
#define SHMRT_BACKEND_H

#include <stdbool.h>

#include "common.h"
#include "dtype.h"


/* Y[m][n] = sum_k X[m][k] * W[n][k] (+ bias[n]). W is a PyTorch nn.Linear
 * weight, [out_features][in_features]. Small m (decode) is bound by reading
 * W; large m (prefill) by arithmetic. W may be a block format (dtype.h:
 * Q8_0 ... Q6_K) when k is a whole number of its blocks; its rows are then
 * shmrt_dtype_row_bytes(w_dtype, k) apart.
 * cpu: x f32, w f32|bf16|f16 or a block format, bias f32|bf16|f16, y f32.
 * cuda: x f32|bf16, w f32|bf16|f16 with bias = w dtype, or a block format
 * with bias f32|bf16|f16; y f32|bf16. */
struct shmrt_matmul_args {
	int m, n, k;
	const void *x;
	enum shmrt_dtype x_dtype;
	const void *w;
	enum shmrt_dtype w_dtype;
	const void *bias; /* [n] in bias_dtype, or NULL (Qwen2's q/k/v biases) */
	enum shmrt_dtype bias_dtype; /* f32|bf16|f16 (a block format is refused) */
	void *y;
	enum shmrt_dtype y_dtype;
};

/* One layer's paged KV cache (layout above). */
struct shmrt_kv_cache {
	void *k, *v;
	enum shmrt_dtype dtype; /* cpu: f32; cuda: bf16 (f32 for tests) */
	int num_blocks, block_size, n_kv_heads, head_dim;
};

/* Writes the K/V rows of n_tokens new tokens into their cache slots (vLLM's
 * reshape_and_cache). k, v: [n_tokens][n_kv_heads][head_dim] rows of
 * k_stride / v_stride elements, dtype `dtype` (converted to cache.dtype). */
struct shmrt_kv_write_args {
	int n_tokens;
	const void *k, *v;
	int64_t k_stride, v_stride;
	enum shmrt_dtype dtype;
	const int32_t *slots; /* [n_tokens]: block * block_size + offset, or -1 */
	struct shmrt_kv_cache cache;
};

/* Causal attention of a ragged batch over the paged cache (layout and
 * ragged-batch conventions above):
 * out = softmax(scale * q k^T, causal) v, per query head. */
struct shmrt_attention_args {
	int n_seqs;
	int n_tokens;    /* = cu_q_lens[n_seqs] */
	int max_q_len;   /* max over sequences of q_len (an upper bound is fine) */
	int max_ctx_len; /* max over sequences of ctx_len (an upper bound is fine) */
	int n_heads;
	float scale; /* usually 1/sqrt(head_dim) */
	const int32_t *cu_q_lens;    /* [n_seqs + 1] */
	const int32_t *ctx_lens;     /* [n_seqs] */
	const int32_t *block_tables; /* [n_seqs][block_table_stride] */
	int block_table_stride;
	const void *q;
	int64_t q_stride;
	enum shmrt_dtype dtype; /* of q and out (cpu: f32) */
	void *out;
	struct shmrt_kv_cache cache; /* gives n_kv_heads, head_dim (64 or 128), block_size */
};

/* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, rows of dim elements
 * (contiguous). out may equal x. */
struct shmrt_rmsnorm_args {
	int rows, dim;
	float eps;
	const void *x;
	enum shmrt_dtype dtype; /* of x and out (cpu: f32) */
	const void *weight;     /* [dim] */
	enum shmrt_dtype w_dtype;
	void *out;
};

enum shmrt_rope_scaling {
	SHMRT_ROPE_DEFAULT = 0,
	SHMRT_ROPE_LLAMA3 = 1, /* Llama 3.1+: rope_scaling.rope_type "llama3" */
};

/* config.json's rope_theta and rope_scaling. */
struct shmrt_rope_config {
	float theta;
	enum shmrt_rope_scaling scaling;
	float factor, low_freq_factor, high_freq_factor; /* LLAMA3 only */
	int original_max_position;                       /* LLAMA3 only */
};

/* Rotary embedding in place on q (and k), Hugging Face's rotate_half
 * pairing: dims i and i + head_dim/2 rotate together by angle
 * pos * inv_freq[i] (the weights of HF checkpoints are laid out for this,
 * not for Meta's interleaved pairs). inv_freq per kernels/rope_freq.h;
 * the angle is computed in fp32 as HF does. */
struct shmrt_rope_args {
	int n_tokens, n_heads, n_kv_heads, head_dim;
	void *q; /* [n_tokens][n_heads][head_dim], rows q_stride apart */
	int64_t q_stride;
	void *k; /* [n_tokens][n_kv_heads][head_dim], or NULL */
	int64_t k_stride;
	enum shmrt_dtype dtype;    /* cpu: f32 */
	const int32_t *positions;  /* [n_tokens] */
	struct shmrt_rope_config cfg;
};

/* out[r][i] = silu(gate[r][i]) * up[r][i], silu(x) = x / (1 + e^-x).
 * gate and up rows are in_stride apart (2*dim for a fused gate_up output,
 * up = gate + dim); out is [rows][dim], contiguous. */
struct shmrt_swiglu_args {
	int rows, dim;
	const void *gate, *up;
	int64_t in_stride;
	enum shmrt_dtype dtype; /* cpu: f32 */
	void *out;
};

/* out[i] = a[i] + b[i] (the residual add); out may alias a or b. */
struct shmrt_add_args {
	int64_t n;
	const void *a, *b;
	enum shmrt_dtype dtype; /* cpu: f32 */
	void *out;
};

/* out[t] = table[tokens[t]], rows of dim; an id outside [0, vocab) gives a
 * row of zeros (ids are checked upstream; this keeps a bad one harmless). */
struct shmrt_embedding_args {
	int n_tokens, dim, vocab;
	const int32_t *tokens;
	const void *table; /* [vocab][dim]; rows of row_bytes(table_dtype, dim) */
	enum shmrt_dtype table_dtype; /* a block format when dim is whole blocks */
	void *out; /* [n_tokens][dim] */
	enum shmrt_dtype out_dtype; /* cpu: f32 */
};

/* Per-sequence sampling parameters (device memory, one per row). */
struct shmrt_sample_params {
	float temperature; /* <= 0: greedy (argmax, lowest id on ties) */
	float top_p;       /* keep the smallest top set with mass >= top_p; >= 1: off */
	int32_t top_k;     /* keep the k most probable; <= 0: off */
	uint32_t reserved; /* 0 */
	uint64_t seed;     /* with seq_id and step: the RNG key (kernels/philox.h) */
	uint64_t seq_id;   /* a stable id of the request, not its batch row */
	uint64_t step;     /* index of the token being sampled in that request */
};

/* One token per row of logits. The result depends only on the row and its
 * params, never on the batch: with p = softmax((logit - max) / T), the
 * kept set is the top_k most probable tokens (ties broken by lower id),
 * cut to the shortest prefix of that order whose mass reaches top_p of the
 * kept mass; u = shmrt_rng_uniform(seed, seq_id, step); the token is the
 * first, in *vocabulary order*, whose running sum of kept p exceeds u times
 * the kept mass. Walking in id order (not probability order) lets a GPU
 * sample with a threshold and a prefix scan instead of a full sort; the CPU
 * and GPU draw the same u and so agree token for token, except where u
 * lands within rounding of a boundary. */
struct shmrt_sample_args {
	int n_seqs, vocab;
	const void *logits; /* [n_seqs] rows of vocab, logits_stride apart */
	int64_t logits_stride;
	enum shmrt_dtype dtype; /* cpu: f32 */
	const struct shmrt_sample_params *params; /* [n_seqs] */
	int32_t *tokens;                          /* [n_seqs], out */
};

/* The kind of device a backend computes on. */
enum shmrt_device_kind {
	SHMRT_DEVICE_CPU = 0,
	SHMRT_DEVICE_CUDA = 1,
};

struct shmrt_backend {
	const char *name; /* "cpu-ref", "cpu", "cuda": for options and messages */

	/* Capabilities: what callers branch on. */
	enum shmrt_device_kind device;
	/* Its device memory is host memory that the CPU reads and writes
	 * directly (weights need no staging; the transport's host path). */
	bool host_memory;

	/* Device memory: alloc gives uninitialised bytes aligned to at least
	 * 64; free(NULL) does nothing. */
	int (*alloc)(void **ptr, size_t bytes);
	void (*free)(void *ptr);
	int (*copy_to_device)(void *stream, void *dst, const void *src, size_t bytes);
	int (*copy_from_device)(void *stream, void *dst, const void *src, size_t bytes);
	/* Device to device: rows of row_bytes, dst_pitch / src_pitch bytes
	 * apart (cudaMemcpy2D's shape). */
	int (*copy_2d)(void *stream, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
		       size_t row_bytes, size_t rows);
	int (*synchronize)(void *stream);

	/* Kernels: one entry per family, argument structs above. */
	int (*matmul)(void *stream, const struct shmrt_matmul_args *a);
	int (*kv_write)(void *stream, const struct shmrt_kv_write_args *a);
	int (*attention)(void *stream, const struct shmrt_attention_args *a);
	int (*rmsnorm)(void *stream, const struct shmrt_rmsnorm_args *a);
	int (*rope)(void *stream, const struct shmrt_rope_args *a);
	int (*swiglu)(void *stream, const struct shmrt_swiglu_args *a);
	int (*add)(void *stream, const struct shmrt_add_args *a);
	int (*embedding)(void *stream, const struct shmrt_embedding_args *a);
	int (*sample)(void *stream, const struct shmrt_sample_args *a);
};

/* The backend called name ("cpu-ref", "cpu", "cuda"). 0, or -ENOENT for an
 * unknown name, -ENODEV for one not built in or without a usable device
 * (no GPU, no driver). The table is static: never freed. */
SHMRT_API int shmrt_backend_get(const char *name, const struct shmrt_backend **out);

/* The device kind (enum shmrt_device_kind) of the backend called name,
 * without opening it: no driver call, so a process may ask before it forks
 * children. -ENOENT for an unknown name (no message set). */
SHMRT_API int shmrt_backend_device(const char *name);

#endif
