/* Internal: the scheduler's logic, iteration-level continuous batching over
 * a paged KV cache (as vLLM's), as a library that the scheduler process
 * drives: requests come in (submit, cancel), each step yields a plan for
 * the workers (step), and the tokens they sample go back in (apply).
 *
 * A sequence is its tokens (the prompt, then what was generated) and how
 * many of them are in the KV cache ("computed"). Each step fills a budget
 * of max_batch_tokens tokens and max_seqs sequences:
 *   1. decodes: every running sequence with one token left to compute
 *      (its last sampled one), one token each, oldest first;
 *   2. running sequences part-way through their prompt, oldest first,
 *      as many tokens as the budget and the free blocks allow;
 *   3. admissions from the waiting queue in arrival order (FCFS), each with
 *      a chunk of its prompt: only while the free blocks cover the chunk
 *      (plus watermark_blocks) and fewer than max_seqs sequences run. The
 *      queue's head is never overtaken: when it does not fit, no younger
 *      request is admitted either.
 * A sequence samples when its chunk reaches its last token.
 *
 * Preemption by recompute: when a running sequence needs a block and none
 * is free, the youngest running sequence not yet in this step's plan (the
 * most recently admitted, counting a re-admitted one at its arrival) gives
 * its blocks back and returns to the front of the waiting queue, its
 * generated tokens now part of what it must prefill again. A decode may so
 * preempt itself; a prompt chunk only preempts younger sequences (it waits
 * instead). The oldest running sequence is therefore never preempted
 * (submit refuses a request that could not run alone), so every request
 * finishes, and no step admits after preempting.
 *
 * Stops: max_tokens generated (LENGTH), a token among the configuration's
 * EOS ids (unless the request ignores EOS) or the request's stop ids (STOP;
 * the stop token is counted and reported). Cancel ends a request wherever
 * it is; one in the plan in flight ends when that step is applied.
 *
 * One plan is in flight at a time: step, then apply, then step again.
 * Not thread-safe: the scheduler process alone drives it. */
#ifndef SHMRT_SCHEDULER_H
#define SHMRT_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "step_plan.h"

#define SHMRT_SCHED_MAX_EOS 8
#define SHMRT_SCHED_MAX_STOP_IDS 16

struct shmrt_sched_config {
	int num_blocks, block_size;  /* the KV cache */
	int max_batch_tokens;        /* tokens per step, >= max_seqs */
	int max_seqs;                /* running sequences (and sequences per step) */
	int max_seq_len;             /* prompt + max_tokens; 0: the cache's size */
	int watermark_blocks;        /* free blocks admission leaves over, >= 0 */
	int vocab;                   /* sampled ids must be < vocab; 0: unchecked */
	int n_eos;
	int32_t eos_ids[SHMRT_SCHED_MAX_EOS];
};

struct shmrt_sched_request {
	uint64_t id; /* unique among live requests (the caller's duty) */
	const int32_t *prompt;
	int prompt_len; /* >= 1 */
	int max_tokens; /* >= 1 */
	bool ignore_eos;
	int n_stop_ids;
	int32_t stop_ids[SHMRT_SCHED_MAX_STOP_IDS];
	float temperature, top_p;
	int32_t top_k;
	uint64_t seed;
};

enum shmrt_finish {
	SHMRT_FINISH_NONE = 0,      /* still running */
	SHMRT_FINISH_LENGTH = 1,    /* max_tokens generated */
	SHMRT_FINISH_STOP = 2,      /* EOS or a stop id (the event's token) */
	SHMRT_FINISH_CANCELLED = 3,
};

/* What apply and cancel report: a sampled token (token >= 0), or the end
 * of a request (finish != NONE), or both. */
struct shmrt_sched_event {
	uint64_t id;
	int32_t token;        /* -1: none (a cancellation) */
	enum shmrt_finish finish;
	int32_t n_prompt;     /* the request's prompt length */
	int32_t n_generated;  /* tokens generated so far, this one included */
	int32_t n_preempted;  /* times this request was preempted */
};

struct shmrt_sched_stats {
	int n_waiting, n_running;
	int blocks_used, blocks_free;
	uint64_t steps, preemptions, finished;
};

struct shmrt_sched;

/* -EINVAL for a bad configuration (the message names the field), -ENOMEM. */
int shmrt_sched_create(struct shmrt_sched **out, const struct shmrt_sched_config *cfg);
void shmrt_sched_destroy(struct shmrt_sched *s);

/* Queues a request (its prompt is copied). -EINVAL for bad fields, -E2BIG
 * when prompt + max_tokens exceeds max_seq_len or could not fit in the
 * cache even alone. */
int shmrt_sched_submit(struct shmrt_sched *s, const struct shmrt_sched_request *r);

/* Builds the next plan into p (its capacities at least max_seqs sequences,
 * max_batch_tokens tokens and num_blocks blocks). Returns the number of
 * sequences in it: 0 when there is nothing to run (no plan in flight then);
 * -EBUSY while the previous plan has not been applied, -EINVAL for a plan
 * too small. */
int shmrt_sched_step(struct shmrt_sched *s, struct shmrt_step_plan *p);

/* Applies the plan in flight: tokens[0 .. n) are the sampled tokens of its
 * sampling sequences, in plan order (n = the plan's n_samples). Writes up
 * to one event per plan sequence into ev (cap_ev >= the plan's n_seqs) and
 * returns how many; finished requests are forgotten. -EINVAL when no plan
 * is in flight or n or cap_ev is wrong, -EBADMSG for a token outside the
 * vocabulary: then nothing is applied. */
int shmrt_sched_apply(struct shmrt_sched *s, const int32_t *tokens, int n, struct shmrt_sched_event *ev,
		      int cap_ev);

/* Cancels request id: 1 when it ended now (*ev says so), 0 when it is in
 * the plan in flight (its event comes from apply), -ENOENT if unknown. */
int shmrt_sched_cancel(struct shmrt_sched *s, uint64_t id, struct shmrt_sched_event *ev);

void shmrt_sched_get_stats(const struct shmrt_sched *s, struct shmrt_sched_stats *st);

/* Checks the invariants: the block manager's, a block table per running
 * sequence covering exactly its computed tokens (plus its chunk in
 * flight), both queues in arrival order, the counts. 0 or -EFAULT. */
int shmrt_sched_check(const struct shmrt_sched *s);

#endif
