/* Internal to scheduler*.c: sequences and the scheduler's state. */
#ifndef SHMRT_SCHEDULER_IMPL_H
#define SHMRT_SCHEDULER_IMPL_H

#include "kv_blocks.h"
#include "scheduler.h"

struct sched_seq {
	uint64_t id;
	uint64_t arrival;               /* submit order: the FCFS priority */
	struct sched_seq *prev, *next;  /* the waiting queue's links */
	int slot;                       /* its block table while running; -1 waiting */
	int q_len;                      /* tokens in this step's plan; 0: not in it */
	bool sample;                    /* the plan's chunk ends at its last token */
	bool cancelled;                 /* cancelled while in flight */
	bool done;                      /* finished in apply; freed after */
	int prompt_len, max_tokens;
	int n_tokens;                   /* prompt + generated */
	int n_computed;                 /* tokens in the KV cache */
	int n_preempted;
	struct shmrt_sched_request req; /* stop ids and sampling; prompt = NULL */
	int32_t tokens[];               /* [prompt_len + max_tokens] */
};

struct sched_entry {
	struct sched_seq *seq;
	int q_len;
};

struct shmrt_sched {
	struct shmrt_sched_config cfg;
	struct shmrt_kvb *kv;
	struct sched_seq *wait_head, *wait_tail;
	int n_waiting;
	struct sched_seq **running; /* [max_seqs], in arrival order */
	int n_running;
	int *free_slots; /* [max_seqs] block tables not in use */
	int n_free_slots;
	struct sched_entry *plan; /* [max_seqs]: the step in flight, plan order */
	int n_plan, n_plan_samples;
	bool in_flight;
	uint64_t next_arrival, steps, preemptions, finished;
};

/* Queue and state changes shared by scheduler.c and scheduler_step.c. */
void sched_wait_insert(struct shmrt_sched *s, struct sched_seq *q); /* by arrival */
void sched_wait_remove(struct shmrt_sched *s, struct sched_seq *q);
void sched_run_insert(struct shmrt_sched *s, struct sched_seq *q); /* by arrival */
void sched_run_remove_at(struct shmrt_sched *s, int i);
/* Gives a running sequence's blocks and table back (it stays listed). */
void sched_release_blocks(struct shmrt_sched *s, struct sched_seq *q);
void sched_event(const struct sched_seq *q, int32_t token, enum shmrt_finish f, struct shmrt_sched_event *ev);

#endif
