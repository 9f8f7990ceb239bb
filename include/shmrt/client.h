/* shmrt — the client API of a running runtime (runtime.h, `shmrt start`),
 * for a model server: attach by name, submit requests (text or token ids,
 * sampling, max tokens, stop ids), read each one's stream of tokens and
 * text and its final status, cancel.
 *
 * Thread-safe: one client handle serves any number of threads, each with
 * its own requests in flight. A client takes one of the runtime's client
 * slots (a response ring; -EBUSY when none is free) and a thread of its
 * own that reads the ring and hands chunks to the request they belong to.
 *
 * Failures: every request ends with a final chunk. When a process of the
 * runtime dies (or it stops) the requests in flight end with status
 * -ECONNRESET (the reason in shmrt_last_error() after shmrt_client_next),
 * -EPIPE when the supervisor itself is gone; submit refuses with -EAGAIN
 * while the runtime is not READY. A request the runtime refuses (a prompt
 * longer than the context, an id outside the vocabulary...) ends likewise
 * with finish ERROR, and shmrt_last_error() after that chunk says why, as
 * the runtime put it ("a prompt of 3391 tokens leaves no room in the
 * model's context of 512"). */
#ifndef SHMRT_CLIENT_H
#define SHMRT_CLIENT_H

#include "common.h"

#define SHMRT_CLIENT_MAX_STOP_IDS 16

struct shmrt_request {
	/* The prompt: text (encoded by the runtime's tokenizer; special tokens
	 * written in it stay plain text, as for untrusted input: send ids to
	 * use them) or ids. */
	const char *text;
	size_t text_len;
	const int32_t *tokens;
	int n_tokens;
	int add_special;     /* text: add the tokenizer's BOS (as shmrt generate) */
	int max_tokens;      /* >= 1 */
	float temperature;   /* <= 0: greedy */
	float top_p;         /* 0 or >= 1: off */
	int top_k;           /* <= 0: off */
	uint64_t seed;
	int ignore_eos;
	int n_stop_ids;      /* up to SHMRT_CLIENT_MAX_STOP_IDS */
	const int32_t *stop_ids;
};

enum shmrt_client_finish {
	SHMRT_CLIENT_RUNNING = 0,
	SHMRT_CLIENT_LENGTH = 1,    /* max_tokens generated */
	SHMRT_CLIENT_STOP = 2,      /* EOS or a stop id */
	SHMRT_CLIENT_CANCELLED = 3,
	SHMRT_CLIENT_ERROR = 4,     /* status says why */
};

/* One chunk of a request's stream. */
struct shmrt_response {
	uint64_t id;
	int32_t token;        /* the new token, -1 if none (an end without one) */
	const char *text;     /* text this chunk completes (UTF-8), valid until
			       * this thread's next shmrt_client_next (or detach) */
	size_t text_len;
	enum shmrt_client_finish finish; /* != RUNNING: the last chunk */
	int status;           /* 0, or -errno with finish ERROR */
	int n_prompt, n_generated;
	double first_token_s, total_s; /* since submit; in the last chunk */
};

struct shmrt_client;

/* -ENOENT when no runtime of that name runs, -EBUSY when every client
 * slot is taken. */
SHMRT_API int shmrt_client_attach(struct shmrt_client **out, const char *name);

/* Ends the client's pending requests (-ECANCELED) and frees it. No other
 * thread may be inside a call on it. */
SHMRT_API void shmrt_client_detach(struct shmrt_client *c);

/* Queues a request; *id names it. -EINVAL for bad fields, -E2BIG for a
 * prompt larger than the submit ring's records, -EAGAIN when the runtime
 * is not READY. */
SHMRT_API int shmrt_client_submit(struct shmrt_client *c, const struct shmrt_request *r, uint64_t *id);

/* The next chunk of request id (waits up to timeout_ns): 0; -ETIMEDOUT;
 * -ENOENT for an unknown id (or one whose last chunk was read). */
SHMRT_API int shmrt_client_next(struct shmrt_client *c, uint64_t id, struct shmrt_response *out,
				int64_t timeout_ns);

/* Asks for request id to end; its last chunk says CANCELLED (or how it
 * ended, if it ended first). -ENOENT for an unknown id. */
SHMRT_API int shmrt_client_cancel(struct shmrt_client *c, uint64_t id);

/* The runtime's health (enum shmrt_health) and progress; -EPIPE when the
 * runtime is gone (its supervisor stopped or died: attach anew). */
SHMRT_API int shmrt_client_health(const struct shmrt_client *c, unsigned *progress);

/* What a runtime serves: fixed while it runs (a restart keeps it). */
struct shmrt_runtime_info {
	char model_dir[4096];
	char backend[32];
	int workers, max_seqs, max_batch_tokens, max_model_len, block_size, kv_blocks, max_clients;
	int vocab_size;
	uint64_t arena_bytes; /* the arena file's size: shared memory reserved */
};

SHMRT_API int shmrt_client_info(const struct shmrt_client *c, struct shmrt_runtime_info *out);

/* A ring's bytes queued and its capacity. */
struct shmrt_ring_usage {
	uint64_t used, capacity;
};

/* Live figures of the runtime, read from its arena: a snapshot, each field
 * read once (the runtime changes them while this reads). */
struct shmrt_runtime_stats {
	int health;               /* enum shmrt_health */
	unsigned progress;
	int waiting, running;     /* sequences in the scheduler */
	int kv_blocks_used, kv_blocks_free;
	uint64_t steps, tokens, preemptions, finished;
	uint64_t requests_in, requests_out;
	unsigned restarts;
	/* the rings; responses: this client's */
	struct {
		struct shmrt_ring_usage submit, tokens, step, sampled, events, responses;
	} rings;
};

SHMRT_API int shmrt_client_stats(const struct shmrt_client *c, struct shmrt_runtime_stats *out);

#endif
