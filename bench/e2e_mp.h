/* shmrt bench e2e, the multi-process part: decode steps through the
 * runtime (runtime.h) and what they cost outside the kernels. */
#ifndef SHMRT_BENCH_E2E_MP_H
#define SHMRT_BENCH_E2E_MP_H

#include <stddef.h>

struct e2e_mp_result {
	int workers, batch, steps; /* decode steps measured: every sequence decodes */
	double mean_batch;  /* sequences per decode step (a request that came a
			     * step late decodes a step longer, alone or with fewer) */
	double step_ns;     /* per decode step, as the scheduler sees it: plan made
			     * .. its events sent (scheduling, rings, the workers) */
	double worker_ns;   /* per step, worker 0's forward + sampling */
	double overhead_ns; /* step_ns - worker_ns: outside the kernels */
	/* where overhead_ns goes, per step (proto.h, struct rt_step_times);
	 * the rest is worker 0's own parsing and bookkeeping */
	double plan_ns, to_worker_ns, back_ns, post_ns;
	double tokens_per_s; /* decode tokens/s the client saw */
};

/* Starts the runtime on model_dir with `workers` workers (exe: the shmrt
 * program), submits `batch` requests of `prompt` token ids that decode
 * `steps` tokens each, and measures the decode steps (steps without a
 * prefill; nearly all have the whole batch: mean_batch says); quantize_to
 * as shmrt_runtime_options.quantize_to (0: none). 0, or -errno with why
 * in note. */
int e2e_mp_measure(const char *model_dir, const char *exe, int workers, int quantize_to, int batch, int prompt,
		   int steps, struct e2e_mp_result *out, char *note, size_t note_cap);

/* The measure of e2e_mp_measure on a runtime already READY, through its
 * client c and state st (proto.h), whose limits hold `batch` sequences
 * of prompt + steps + 1 tokens: 0 or -errno. */
struct shmrt_client;
struct rt_state;
int e2e_mp_run(struct shmrt_client *c, const struct rt_state *st, int batch, int prompt, int steps,
	       struct e2e_mp_result *out);

/* `shmrt bench e2e --workers W ...`: the multi-process path against the
 * single-process one, batch by batch (bench_e2e hands over when --workers
 * is given). Returns the exit status. */
int e2e_mp_wanted(int argc, char **argv);
int bench_e2e_mp(int argc, char **argv);

#endif
