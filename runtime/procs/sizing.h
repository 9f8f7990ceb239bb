/* Internal: the runtime's arena, region by region, from the model and the
 * serving limits; what `shmrt size` prints and what the supervisor creates,
 * so that the advice and the arena cannot disagree.
 *
 * Regions (docs/ARCHITECTURE.md, "Processes and the way a request flows"):
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
 *              is max_batch_tokens x hidden_size activations). The chunk
 *              is the one part that can shrink and grow with the shared
 *              memory given (shmrt_sizing_fit); the rings carry records
 *              whose sizes the serving limits set, so they do not.
 *   state      health, heartbeats and counters of every process.
 * A ring that carries one record at a time (step, tokens) gets room for two
 * of the largest, so that the writer can fill the next while readers read;
 * queues of small records get a floor that holds thousands of them. Ring
 * capacities are powers of two (ring.h). */
#ifndef SHMRT_SIZING_H
#define SHMRT_SIZING_H

#include <stdbool.h>
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
			       * sequences of max_model_len can hold (the
			       * arena's bound; the runtime's pool may be less:
			       * shmrt_sizing_kv_blocks_in_memory) */
	int max_clients;      /* response rings; 0: the default above */
	size_t xfer_chunk;    /* the shm transport's slice bytes (tp > 1): a power
			       * of two, SHMRT_SIZING_MIN_CHUNK .. SHMRT_SIZING_MAX_CHUNK;
			       * 0: the transport's default (SHMRT_XFER_CHUNK or 64 KiB) */
};

/* The chunks shmrt_sizing_fit chooses from. Below 4 KiB a chunk is less
 * than a page and the per-chunk synchronisation dominates; 16 MiB is the
 * transport's largest (ipc/xfer_layout.h). */
#define SHMRT_SIZING_MIN_CHUNK ((size_t)4 << 10)
#define SHMRT_SIZING_MAX_CHUNK ((size_t)16 << 20)

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
	uint64_t min_mib;        /* the smallest /dev/shm that starts: the arena
				  * in whole MiB (tmpfs counts pages; nothing else
				  * of ours is in it) */
	size_t xfer_chunk;       /* the chunk the xfer region holds (tp > 1), else 0 */
	uint64_t allreduce_bytes; /* the largest all-reduce (f32 activations) */
	uint64_t advised_mib;    /* the shared memory to give the container for
				  * the arena alone (shmrt_shm_advised_mib) */
};

/* Sizes the runtime's arena. -EINVAL (message naming the parameter) for
 * values out of range, -E2BIG for a ring record above the largest ring. */
int shmrt_sizing_compute(const struct shmrt_sizing_params *params, struct shmrt_sizing *out);

/* The regions as shmrt_arena_create takes them (names point into s). */
void shmrt_sizing_specs(const struct shmrt_sizing *s, struct shmrt_region_spec *specs);

/* The budget rule of `shmrt bench shm`: the sizing of params with the
 * largest power-of-two chunk (SHMRT_SIZING_MIN_CHUNK .. MAX) whose arena
 * fits in budget_bytes; with the smallest chunk when none fits (the
 * runtime then refuses to start, which is what a budget below the minimum
 * must show). tp 1 has no staging: the sizing of params as it is. */
int shmrt_sizing_fit(const struct shmrt_sizing_params *params, uint64_t budget_bytes, struct shmrt_sizing *out);

/* The chunk to format an xfer region of `size` bytes for `world` ranks
 * with, the one it was sized for: 0 (the transport's default) when that
 * footprint is exactly size, else the largest power of two that fits;
 * 0 also when none does (format then says why). */
size_t shmrt_sizing_chunk_of_region(int world, size_t size);

/* NCCL's SHM transport, the other user of /dev/shm that counts on GPUs
 * without P2P (SERVING.md section 5). Sources: NVIDIA/nccl src/init.cc
 * computeBuffSizes (the per-protocol buffers of one connection: LL
 * DEFAULT_LL_BUFFSIZE = NCCL_LL_LINES_PER_THREAD 8 x NCCL_LL_MAX_NTHREADS
 * 512 x NCCL_STEPS 8 x sizeof(union ncclLLFifoLine) 16 = 512 KiB, LL128
 * NCCL_LL128_ELEMS_PER_THREAD 120 x NCCL_LL128_MAX_NTHREADS 640 x
 * NCCL_STEPS 8 x 8 B = 4,915,200 B, SIMPLE DEFAULT_BUFFSIZE 4 MiB; each
 * overridden by NCCL_LL_BUFFSIZE, NCCL_LL128_BUFFSIZE, NCCL_BUFFSIZE) and
 * src/transport/shm.cc (shmRecvSetup/shmSendSetup: one /dev/shm segment
 * per connection and channel holding the ncclRecvMem header and the sum
 * of the buffers, on the receiver by default, NCCL_SHM_LOCALITY=2, and a
 * small ncclSendMem segment on the sender; NCCL 2.7 logged 9,637,888 B for
 * one receiver segment with the defaults: the buffers plus one page). */
#define SHMRT_NCCL_DEFAULT_BUFFSIZE ((uint64_t)4 << 20)
#define SHMRT_NCCL_DEFAULT_LL_BUFFSIZE ((uint64_t)8 * 512 * 8 * 16)
#define SHMRT_NCCL_DEFAULT_LL128_BUFFSIZE ((uint64_t)120 * 640 * 8 * 8)
#define SHMRT_NCCL_SEGMENT_HEADER ((uint64_t)4096) /* ncclRecvMem, ncclSendMem: a page each */
/* Channels NCCL's topology search settles on between PCIe GPUs without
 * P2P is commonly 2 (NCCL_DEBUG=INFO prints "Channel 00/02"); the user
 * can give the figure of their logs or their NCCL_MAX_NCHANNELS. */
#define SHMRT_NCCL_DEFAULT_CHANNELS 2

struct shmrt_nccl_shm {
	int ranks, channels;
	uint64_t buffsize, ll_buffsize, ll128_buffsize; /* 0: NCCL's defaults */
	/* results */
	uint64_t connections;    /* SHM connections: per channel, the ring's
				  * `ranks` (each rank receives from its
				  * predecessor) and the intra-node tree's
				  * 2 x (ranks - 1) (a chain: up and down) */
	uint64_t per_connection; /* header pages and the three buffers */
	uint64_t bytes;
};

/* Fills n->connections, per_connection and bytes; -EINVAL for ranks < 2
 * or channels < 1. */
int shmrt_sizing_nccl_shm(struct shmrt_nccl_shm *n);

/* The knee of a measured curve (`shmrt bench shm`): the smallest budget
 * that started whose figures are all at least SHMRT_SIZING_KNEE_FRACTION
 * of the best budget's (each figure's own best; a figure <= 0 is not
 * measured and ignored); when none is, the budget whose worst figure
 * (as a fraction of its best) is the highest, the smallest of equals.
 * Rows are in any order. -ENOENT when no budget started. */
#define SHMRT_SIZING_KNEE_FRACTION 0.95
struct shmrt_sizing_point {
	uint64_t budget_mib;
	int started;
	double figures[3]; /* tokens/s at batch 1, at the large batch, all-reduce GB/s */
};
int shmrt_sizing_knee(const struct shmrt_sizing_point *pts, unsigned n, uint64_t *knee_mib);

/* KV blocks that a quarter of this machine's memory (or of its cgroup's
 * limit, if less) holds, all workers together, at 4 bytes an element (an
 * f32 cache; bf16 takes half): the runtime's pool when --kv-blocks is not
 * given and max_seqs full sequences would need more, as vLLM sizes its
 * cache by the memory it may use rather than by the longest context times
 * the batch (a model of 8192 positions x 256 sequences is tens of GB). */
int shmrt_sizing_kv_blocks_in_memory(const struct shmrt_model_config *m, int block_size);

#endif
