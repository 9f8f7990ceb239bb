/* shmrt — the multi-process runtime: a supervisor that creates the arena
 * and runs the tokenizer, the scheduler and the workers as processes
 * (docs/ARCHITECTURE.md, "Processes and the way a request flows").
 *
 * shmrt_runtime_start creates arena `name` (sized by runtime/procs/sizing.c, as
 * `shmrt size` advises), spawns the children and returns; a thread of the
 * caller's process then watches them. The health word goes STARTING ->
 * LOADING (progress: the workers' loads) -> READY once every worker has
 * loaded its weights and run a warm-up step. When a child dies the runtime
 * is DEGRADED (restart on: the whole family is started again and returns
 * to READY; a family that keeps dying before READY is restarted after a
 * growing pause, then given up: FAILED) or FAILED (restart off); either
 * way every request in flight
 * ends with an error and new ones are refused until READY.
 *
 * Children are the shmrt program (options.exe) run with a hidden role
 * command: exec rather than fork alone, so that a child holds nothing of
 * the embedding program (its threads' locks, its open arena handle, whose
 * lock would keep the arena alive after the supervisor's death) and runs
 * under its own name. Children die with the thread that started them
 * (PR_SET_PDEATHSIG), which is the watching thread: the supervisor's death
 * takes them along, and the arena is then stale and removed by the next
 * start or `shmrt clean`.
 *
 * Clients attach by name (client.h). Functions return 0 or -errno;
 * shmrt_last_error() says more. */
#ifndef SHMRT_RUNTIME_H
#define SHMRT_RUNTIME_H

#include "common.h"

struct shmrt_runtime_options {
	const char *model_dir; /* a checkpoint directory with tokenizer.json */
	const char *name;      /* the arena's name */
	int workers;           /* 0: 1 */
	const char *exe;       /* the shmrt program; NULL: $SHMRT_EXE, else "shmrt" in PATH */
	const char *backend;   /* NULL: "cpu" */
	int restart;           /* 1: start a new family when a child dies */
	/* Restarts in a row whose family does not get READY before the
	 * runtime gives up (FAILED, the reason says so): a crash loop. They
	 * back off: the first at once, then 0.5 s doubling to 30 s.
	 * 0: SHMRT_MAX_RESTARTS_DEFAULT; < 0: never give up. */
	int max_restarts;
	/* A READY child whose heartbeat is older than this is hung: killed
	 * (then handled as any death). Children beat at least every 100 ms
	 * when idle and between steps, so this bounds one step's time.
	 * 0: SHMRT_HANG_TIMEOUT_DEFAULT_NS; < 0: never. */
	int64_t hang_timeout_ns;
	/* Serving limits (0: runtime/procs/sizing.h's defaults, kv_blocks: enough
	 * for max_seqs sequences of max_model_len, at most what a quarter of the
	 * machine's memory holds). */
	int max_seqs, max_batch_tokens, max_model_len, block_size, kv_blocks, max_clients;
	/* Called from the watching thread with a line about each event (a
	 * child started, died, the health changed); NULL: silent. When set,
	 * the tokenizer process also writes to its stderr (inherited from
	 * the caller) a line about each request that failed, with why. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	/* The shm transport's chunk (workers > 1): a power of two, 4 KiB ..
	 * 16 MiB; 0: the transport's default. `shmrt size` and `shmrt bench
	 * shm` say what each costs in shared memory. Last, so that the fields
	 * above keep their places. */
	size_t xfer_chunk;
	/* Weight-only quantization at load in every worker
	 * (shmrt_model_options.quantize_to): 0 none, else SHMRT_Q8_0,
	 * SHMRT_Q4_0 or SHMRT_Q4_K. */
	int quantize_to;
};

#define SHMRT_MAX_RESTARTS_DEFAULT 5

/* 60 s: vLLM's default for one engine iteration (VLLM_ENGINE_ITERATION_TIMEOUT_S). */
#define SHMRT_HANG_TIMEOUT_DEFAULT_NS ((int64_t)60 * 1000000000)

struct shmrt_runtime;

/* Creates the arena and spawns the children (does not wait for READY). */
SHMRT_API int shmrt_runtime_start(struct shmrt_runtime **out, const struct shmrt_runtime_options *opt);

/* Waits until READY: 0; -ETIMEDOUT; -EPIPE when the runtime FAILED. */
SHMRT_API int shmrt_runtime_wait_ready(struct shmrt_runtime *rt, int64_t timeout_ns);

/* The health word (enum shmrt_health, arena.h) and its progress. */
SHMRT_API int shmrt_runtime_health(const struct shmrt_runtime *rt, unsigned *progress);

/* Process id of the child in slot i (0 tokenizer, 1 scheduler, 2 + r
 * worker r), or -ENOENT. For tests and `shmrt stat`. */
SHMRT_API int shmrt_runtime_child_pid(const struct shmrt_runtime *rt, int i);

/* Stops: refuses new requests, lets those in flight finish for up to
 * drain_ns, ends the rest with an error, stops the children, removes the
 * arena and frees rt. */
SHMRT_API int shmrt_runtime_stop(struct shmrt_runtime *rt, int64_t drain_ns);

/* The entry of a child process: what the shmrt program runs for its
 * hidden command `shmrt __child ROLE RANK NAME` (argv as main gets it,
 * from "__child" on). Returns the exit status. */
SHMRT_API int shmrt_runtime_child_main(int argc, char **argv);

#endif
