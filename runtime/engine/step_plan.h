/* Internal: a step plan, what the scheduler asks the workers to run in one
 * iteration, and its record format on the step ring (broadcast, scheduler
 * -> workers).
 *
 * A plan is a ragged batch as the kernels take it (include/shmrt/backend.h,
 * "Ragged batches"): per sequence, q_len new tokens (a decode: 1; a prefill
 * chunk: more) at positions ctx_len - q_len .. ctx_len - 1, written into the
 * cache through its block table, which covers ctx_len tokens. A sequence
 * whose chunk ends at its last known token samples the next one, with its
 * shmrt_sample_params (seq_id = the request id, step = the index of the
 * token being sampled, so that a recomputed sequence draws the same u).
 *
 * Record format (native byte order: the readers are on the same machine):
 *
 *   header   32 bytes  u32 magic "SPL1", u16 version, u16 0, u64 step,
 *                      u32 block_size, n_seqs, n_tokens, n_blocks
 *   seqs     48 bytes each: u64 seq_id, u32 q_len, u32 ctx_len, u32 flags
 *                      (bit 0: samples), i32 top_k, f32 temperature,
 *                      f32 top_p, u64 seed, u64 sample step
 *   tokens   i32 [n_tokens], the sequences' tokens one after the other
 *   blocks   i32 [n_blocks], the block tables one after the other, each of
 *                      ceil(ctx_len / block_size) ids
 *
 * Positions, offsets and per-sequence block counts are derived, not sent.
 * The parser takes the record as hostile input (a bad peer, or shared
 * memory changed under it): it reads every field once, into the plan, and
 * checks it there. */
#ifndef SHMRT_STEP_PLAN_H
#define SHMRT_STEP_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "shmrt/backend.h" /* struct shmrt_sample_params */

#define SHMRT_STEP_PLAN_MAGIC 0x314c5053u /* "SPL1" */
#define SHMRT_STEP_PLAN_VERSION 1
#define SHMRT_STEP_PLAN_HEADER_BYTES 32
#define SHMRT_STEP_PLAN_SEQ_BYTES 48

struct shmrt_step_seq {
	uint64_t seq_id;
	int32_t q_start;  /* its first token in tokens[] and positions[] */
	int32_t q_len;    /* tokens to process this step, >= 1 */
	int32_t ctx_len;  /* tokens in the cache once they are written */
	int32_t bt_start; /* its first block id in block_ids[] */
	int32_t n_blocks; /* ceil(ctx_len / block_size) */
	int32_t sample;   /* 1: sample a token after its last position */
	struct shmrt_sample_params params; /* when sample; seq_id as above */
};

struct shmrt_step_plan {
	uint64_t step; /* the scheduler's step counter */
	int32_t block_size;
	int32_t n_seqs, n_tokens, n_blocks, n_samples;
	struct shmrt_step_seq *seqs; /* [n_seqs] */
	int32_t *tokens;             /* [n_tokens] */
	int32_t *positions;          /* [n_tokens] */
	int32_t *block_ids;          /* [n_blocks] */
	/* Capacities (set by init). Block ids are < num_blocks, and a plan
	 * never holds more ids than that: no block is in two tables. */
	int32_t cap_seqs, cap_tokens, num_blocks;
	uint8_t *seen; /* parse's scratch: one byte per block */
};

/* Arrays for up to cap_seqs sequences and cap_tokens tokens over a cache of
 * num_blocks blocks. -EINVAL, -ENOMEM. */
int shmrt_step_plan_init(struct shmrt_step_plan *p, int cap_seqs, int cap_tokens, int num_blocks);
void shmrt_step_plan_free(struct shmrt_step_plan *p);

/* Bytes of the record of p, and the largest record of any plan with these
 * capacities (what the step ring must accept). */
size_t shmrt_step_plan_record_size(const struct shmrt_step_plan *p);
size_t shmrt_step_plan_max_record_size(int cap_seqs, int cap_tokens, int num_blocks);

/* Writes p's record into buf[0 .. cap) (a ring reservation); *len gets its
 * size. -EMSGSIZE when cap is too small. */
int shmrt_step_plan_serialize(const struct shmrt_step_plan *p, void *buf, size_t cap, size_t *len);

/* What a reader accepts beyond its plan's capacities. */
struct shmrt_step_plan_limits {
	int32_t block_size; /* must equal the record's */
	int32_t vocab;      /* token ids in [0, vocab); 0: any id >= 0 */
	int32_t max_ctx;    /* ctx_len <= max_ctx; 0: no limit */
};

/* Parses a record into p (its arrays, from init). -EBADMSG, with a message
 * naming the field, for anything malformed or beyond p's capacities or the
 * limits: a bad magic or version, a length that does not match the counts,
 * q_len < 1 or > ctx_len, counts that do not add up, a block id outside the
 * cache or in two tables, a token outside the vocabulary, unknown flags,
 * NaN sampling parameters. On error p holds no plan (n_seqs = 0). */
int shmrt_step_plan_parse(const void *buf, size_t len, const struct shmrt_step_plan_limits *lim,
			  struct shmrt_step_plan *p);

/* The plan as the kernels (backend.h) and shmrt_model_forward (model.h)
 * take it: q_lens[n_seqs], ctx_lens[n_seqs] and block_tables[n_seqs][stride]
 * (row s holds sequence s's n_blocks ids; the rest of the row is left
 * as it was). -EINVAL when stride is below p's longest table
 * (shmrt_step_plan_max_blocks). */
int shmrt_step_plan_tables(const struct shmrt_step_plan *p, int32_t *q_lens, int32_t *ctx_lens,
			   int32_t *block_tables, int stride);
int shmrt_step_plan_max_blocks(const struct shmrt_step_plan *p);

/* The cache slot of each of p's tokens, block * block_size + offset (the
 * kernels' kv_write slots): slots[n_tokens]. */
void shmrt_step_plan_slots(const struct shmrt_step_plan *p, int32_t *slots);

#endif
