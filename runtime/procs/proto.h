/* Internal: what the runtime's processes share (docs/ARCHITECTURE.md, "Processes and
 * the way a request flows"): the state region's layout and the records of
 * each ring. Native byte order and layout: every reader is on this machine
 * and runs this build (the arena's ABI version guards the rest).
 *
 * Rings (regions named as runtime/procs/sizing.h lays them out):
 *   submit     MPSC  clients -> tokenizer: struct rt_req + text or ids,
 *                    or a cancel (struct rt_req alone)
 *   tokens     SPSC  tokenizer -> scheduler: struct rt_req + ids, cancels,
 *                    rejections (status != 0)
 *   step       BCAST scheduler -> workers: step plans (step_plan.h)
 *   sampled    SPSC  worker 0 -> scheduler: struct rt_sampled + ids
 *   events     SPSC  scheduler -> tokenizer: struct rt_events + events
 *   responses  max_clients SPSC rings, tokenizer -> client slot i:
 *                    struct rt_resp + text
 *
 * Failure handling rests on the epoch: the supervisor increments it when a
 * child dies (and on stop). A request belongs to the epoch it was submitted
 * in; a client ends every pending request of an older epoch with an error,
 * and the tokenizer drops submissions of an older epoch, so nothing waits on
 * a pipeline that no longer exists. */
#ifndef SHMRT_RT_PROTO_H
#define SHMRT_RT_PROTO_H

#include <stdalign.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "shmrt/arena.h"
#include "shmrt/model_config.h"
#include "shmrt/ring.h"

#define RT_STATE_MAGIC 0x31545352u /* "RST1" */
#define RT_MAX_WORKERS 16
#define RT_MAX_CLIENTS 256
#define RT_MAX_STOP_IDS 16
#define RT_REASON_MAX 256

enum rt_role { RT_ROLE_TOKENIZER = 0, RT_ROLE_SCHEDULER = 1, RT_ROLE_WORKER = 2 };
/* A process's slot: tokenizer, scheduler, then worker ranks. */
#define RT_PROC_WORKER0 2
#define RT_MAX_PROCS (RT_PROC_WORKER0 + RT_MAX_WORKERS)

/* rt_proc.phase */
enum { RT_PHASE_NONE = 0, RT_PHASE_LOADING = 1, RT_PHASE_READY = 2 };

struct rt_proc {
	alignas(64) _Atomic int32_t pid;  /* 0: not running */
	_Atomic uint32_t phase;
	_Atomic uint32_t progress;        /* per mille while loading */
	_Atomic int64_t heartbeat_ns;     /* CLOCK_MONOTONIC of its last sign of life */
	_Atomic uint64_t work;            /* records or steps handled */
	_Atomic int64_t busy_ns;          /* time spent in its own work (workers: forward + sample) */
};

struct rt_client_slot {
	alignas(64) _Atomic uint64_t owner; /* pid of the attached client, 0: free */
	uint64_t owner_start;               /* its start time (proc.h) */
	_Atomic uint64_t next_seq;          /* request counter, kept across owners */
	/* Chunks the tokenizer dropped because the slot's ring stayed full
	 * (its client did not read for a second) or could not be opened (its
	 * header corrupt): the client then ends every request it has pending
	 * with -ENOBUFS (client.c). */
	_Atomic uint64_t dropped;
};

/* The scheduler's figures for `shmrt stat`. */
struct rt_sched_figures {
	alignas(64) _Atomic int32_t n_waiting, n_running, blocks_used, blocks_free;
	_Atomic uint64_t steps, tokens, preemptions, finished;
	_Atomic int64_t last_step_ns;   /* plan made .. its events sent: scheduling, rings, workers */
	_Atomic int64_t step_ns_sum;    /* over all steps, for the mean */
	/* Over the steps where every sequence decodes one token (no prefill):
	 * what `shmrt bench e2e --workers` reads. seqs: their batch sizes;
	 * the rest sums of struct rt_step_times. */
	_Atomic uint64_t decode_steps, decode_seqs;
	_Atomic int64_t decode_step_ns_sum, decode_worker_ns_sum;
	_Atomic int64_t decode_plan_ns_sum, decode_to_worker_ns_sum, decode_back_ns_sum, decode_post_ns_sum;
};

/* Where a step's time goes (CLOCK_MONOTONIC is one clock for all our
 * processes). step = plan + to_worker + worker + (the worker's own
 * parsing and bookkeeping) + back + post. */
struct rt_step_times {
	int64_t step;      /* the scheduler's: plan made .. its events sent */
	int64_t plan;      /* scheduling, serialising, committing to the step ring */
	int64_t to_worker; /* committed .. worker 0 has it: its wake-up */
	int64_t worker;    /* worker 0's forward + sampling */
	int64_t back;      /* worker 0 sends .. the scheduler has it: its wake-up */
	int64_t post;      /* applying the tokens, sending the events */
};

struct rt_state {
	uint32_t magic, n_workers, max_clients;
	int32_t max_seqs, max_batch_tokens, block_size, num_blocks, max_model_len;
	int32_t restart;
	int32_t log_refusals; /* 1: the tokenizer writes a line to stderr for each refused request */
	int64_t hang_timeout_ns; /* > 0: a READY child silent this long is killed; else never */
	char model_dir[4096];
	char backend[32];
	int32_t quantize_to; /* shmrt_model_options.quantize_to of the workers */
	struct shmrt_model_config model;

	alignas(64) _Atomic uint32_t epoch;
	_Atomic uint32_t accepting; /* 1: READY and not stopping */
	_Atomic uint32_t restarts;
	_Atomic uint32_t crash_loop; /* restarts in a row that did not get READY (a crash loop) */
	_Atomic uint64_t requests_in, requests_out; /* submitted, ended (final response sent) */
	char reason[RT_REASON_MAX]; /* why the runtime is not healthy; written before the epoch moves */
	_Atomic int32_t supervisor_pid;

	struct rt_sched_figures sched;
	struct rt_proc procs[RT_MAX_PROCS];
	struct rt_client_slot clients[RT_MAX_CLIENTS];
};

/* The state's configuration: what the supervisor wrote before the first
 * family and nobody changes after (the fields before epoch). */
#define RT_STATE_CONFIG_BYTES offsetof(struct rt_state, epoch)

/* ---- records ----------------------------------------------------------- */

enum rt_req_kind { RT_REQ_TEXT = 1, RT_REQ_IDS = 2, RT_REQ_CANCEL = 3 };
enum { RT_REQ_ADD_SPECIAL = 1u << 0, RT_REQ_IGNORE_EOS = 1u << 1 };

/* A request: submit and tokens rings. payload bytes follow (text, or
 * int32 ids: payload_len / 4 of them). On the tokens ring, status < 0 is a
 * request the tokenizer refused (the scheduler reports it as an event);
 * its payload is then the reason, text for the client. */
struct rt_req {
	uint32_t kind, flags;
	uint32_t epoch;
	int32_t status;
	uint64_t id;
	int32_t max_tokens, top_k;
	float temperature, top_p;
	uint64_t seed;
	int32_t n_stop;
	uint32_t payload_len;
	int32_t stop_ids[RT_MAX_STOP_IDS];
};

/* Finish codes: scheduler.h's enum shmrt_finish, and one more. */
#define RT_FINISH_ERROR 4

struct rt_event {
	uint64_t id;
	int32_t token; /* -1: none */
	int32_t finish;
	int32_t status; /* 0 or -errno (finish RT_FINISH_ERROR) */
	int32_t n_prompt, n_generated, n_preempted;
	uint32_t reason_len; /* why it failed: text after the events, < RT_REASON_MAX */
};
_Static_assert(sizeof(struct rt_event) == 40, "event layout");

struct rt_events {
	uint32_t n, pad;
	/* struct rt_event [n], then each event's reason_len bytes in turn */
};

struct rt_sampled {
	uint64_t step;
	int32_t n, pad;
	/* worker 0's clock: the plan came, its forward + sampling took, sent */
	int64_t recv_ns, busy_ns, sent_ns;
	/* int32 tokens[n] */
};

/* One response chunk to a client: a token and the text it completed, or
 * the end of the request (finish != 0), with the rest of the text. */
struct rt_resp {
	uint64_t id;
	int32_t token; /* -1: none */
	int32_t finish;
	int32_t status;
	int32_t n_prompt, n_generated;
	uint32_t text_len;
	uint32_t reason_len; /* < RT_REASON_MAX: why it failed (finish RT_FINISH_ERROR) */
	/* char text[text_len], then char reason[reason_len] */
};

/* Producer processes of the submit ring: a client per slot and the
 * supervisor, which holds one open; at least the ring's default. */
static inline unsigned rt_submit_producers(unsigned max_clients)
{
	return max_clients + 1 > SHMRT_RING_MAX_PRODUCERS ? max_clients + 1 : SHMRT_RING_MAX_PRODUCERS;
}

/* Request ids: the client slot in the top 16 bits, its counter below. */
#define RT_ID_SLOT(id) ((unsigned)((id) >> 48))

/* ---- helpers (procs/regions.c) ------------------------------------------ */

struct shmrt_ring;

/* The state region of an attached arena, checked. */
int rt_state_get(const struct shmrt_arena *a, struct rt_state **out);

/* Opens a handle on ring `name` (responses: the i-th ring of the region). */
int rt_ring_open(const struct shmrt_arena *a, const char *name, unsigned index, int role, unsigned reader,
		 struct shmrt_ring **out);

/* Formats the rings that link the children (tokens, step, sampled, events)
 * and submit (its producers kept), for a new family after a failure; all
 * of them, responses too, when all is set (at creation). */
int rt_rings_format(struct shmrt_arena *a, const struct rt_state *st, int all);

/* Bytes queued and capacity of ring `name` (index as above), read from
 * shared memory without opening a handle (opening registers a peer). */
int rt_ring_usage(const struct shmrt_arena *a, const char *name, unsigned index, uint64_t *used, uint64_t *cap);

/* The pid of the live process that holds MPSC ring `name`'s claim lock
 * now, or 0 (a hold lasts a few stores: one seen twice is stuck). */
int rt_ring_lock_holder(const struct shmrt_arena *a, const char *name);

const char *rt_role_name(int proc_index);

#endif
