/* Internal: the runtime's arena, region by region, from the model and the
 * serving limits; what `shmrt size` prints and what the supervisor creates,
 * so that the advice and the arena cannot disagree.
 *
 * Regions (DESIGN.md, "Processes and the way a request flows"):
 *   submit     MPSC ring, clients -> tokenizer. A record holds a request:
 *              a header and its prompt, as token ids (4 bytes each) or text
 *              (budgeted at SHMRT_SIZING_TEXT_BYTES_PER_TOKEN a token; longer
 *              text goes in several records).
 *   tokens     SPSC ring, tokenizer -> scheduler: a request as token ids.
 *   step       broadcast ring, scheduler -> the tp workers: step plans
 *              (step_plan.h; the largest holds max_seqs sequences,
 *              max_batch_tokens tokens and every KV block id).
 *   sampled    SPSC ring, worker 0 -> scheduler: one token a sequence.
 *   events     SPSC ring, scheduler -> tokenizer: sampled tokens and ends
 *              of requests, to detokenize.
 *   responses  max_clients SPSC rings, tokenizer -> each client: text.
 *   xfer       the shm transport between tp > 1 workers (transport.h):
 *              pipelined staging in chunks, so its size depends on tp and
 *              the chunk only, not on the message (the largest all-reduce
 *              is max_batch_tokens x hidden_size activations).
 *   state      health, heartbeats and counters of every process.
 * A ring that carries one record at a time (step, tokens) gets room for two
 * of the largest, so that the writer can fill the next while readers read;
 * queues of small records get a floor that holds thousands of them. Ring
 * capacities are powers of two (ring.h). */
#ifndef SHMRT_SIZING_H
#define SHMRT_SIZING_H

#include <stddef.h>
#include <stdint.h>

#include "shmrt/arena.h"
#include "shmrt/model_config.h"

/* vLLM's defaults for an OpenAI-compatible server (its engine arguments
 * max_num_batched_tokens and max_num_seqs). */
#define SHMRT_SIZING_DEFAULT_MAX_BATCH_TOKENS 2048
#define SHMRT_SIZING_DEFAULT_MAX_SEQS 256
#define SHMRT_SIZING_DEFAULT_BLOCK_SIZE 16
#define SHMRT_SIZING_DEFAULT_MAX_CLIENTS 64
#define SHMRT_SIZING_TEXT_BYTES_PER_TOKEN 8
/* Bytes of a request's header on the submit and tokens rings (id, lengths,
 * sampling parameters, stop ids). */
#define SHMRT_SIZING_REQUEST_HEADER 256
/* One client's response ring: about 2,000 streamed tokens of slack for a
 * client slow to read. */
#define SHMRT_SIZING_RESPONSE_RING ((size_t)256 << 10)
#define SHMRT_SIZING_STATE_BYTES ((size_t)64 << 10)
/* Bytes per sequence of the sampled and events records. */
#define SHMRT_SIZING_SAMPLED_PER_SEQ 8
#define SHMRT_SIZING_EVENT_BYTES 32

#define SHMRT_SIZING_MAX_REGIONS 8

struct shmrt_sizing_params {
	const struct shmrt_model_config *model;
	int tp;               /* workers (tensor-parallel ranks); 0: 1 */
	int max_batch_tokens; /* 0: the default above */
	int max_seqs;         /* 0: the default above */
	int max_model_len;    /* prompt + output; 0: the model's max_context */
	int block_size;       /* KV block tokens; 0: 16 */
	int kv_blocks;        /* the KV cache's blocks; 0: the most max_seqs
			       * sequences of max_model_len can hold */
	int max_clients;      /* response rings; 0: the default above */
};

struct shmrt_sizing_region {
	char name[SHMRT_REGION_NAME_MAX + 1];
	uint64_t bytes;      /* its size in the arena */
	uint64_t capacity;   /* ring capacity (one ring of responses); 0 for others */
	uint64_t max_record; /* the largest record it must carry; 0 for others */
};

struct shmrt_sizing {
	struct shmrt_sizing_params p; /* with the defaults filled in */
	struct shmrt_sizing_region regions[SHMRT_SIZING_MAX_REGIONS];
	unsigned n_regions;
	uint64_t arena_bytes;    /* the file, header and alignment included */
	uint64_t allreduce_bytes; /* the largest all-reduce (f32 activations) */
	uint64_t advised_mib;    /* the shared memory to give the container */
};

/* Sizes the runtime's arena. -EINVAL (message naming the parameter) for
 * values out of range, -E2BIG for a ring record above the largest ring. */
int shmrt_sizing_compute(const struct shmrt_sizing_params *params, struct shmrt_sizing *out);

/* The regions as shmrt_arena_create takes them (names point into s). */
void shmrt_sizing_specs(const struct shmrt_sizing *s, struct shmrt_region_spec *specs);

#endif
