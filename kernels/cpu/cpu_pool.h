/* Internal: the persistent thread pool the fast CPU kernels run on.
 *
 * Our own rather than OpenMP: clang's OpenMP runtime (libomp) is a
 * separate package from gcc's libgomp, libgomp is not fork-safe (a child
 * forked after a parallel region hangs in its next one) and its idle
 * threads spin for a long time by default, which on a small machine steals
 * the cores the scheduler and tokenizer processes need. This pool spins
 * 50 us between kernels (a decode step issues them back to back), then
 * sleeps on a futex; it is rebuilt lazily in a forked child. */
#ifndef SHMRT_CPU_POOL_H
#define SHMRT_CPU_POOL_H

#include <stdint.h>

/* Threads a run uses: $SHMRT_CPU_THREADS, else the CPUs this process may
 * run on (sched_getaffinity). Starts the pool on first use. */
int shmrt_pool_threads(void);

/* Calls fn(ctx, tid, n_threads) once for each tid in 0 .. n_threads-1, on
 * the pool's threads (the caller is tid 0), and returns when all calls
 * have returned. Runs are serialised; a run started from inside a run (or
 * before the pool could start any thread) calls fn(ctx, 0, 1) inline. */
void shmrt_pool_run(void (*fn)(void *ctx, int tid, int n_threads), void *ctx);

/* shmrt_pool_run, or fn(ctx, 0, 1) inline when the job touches fewer
 * than SHMRT_POOL_MIN_WORK elements: waking the pool costs microseconds. */
#define SHMRT_POOL_MIN_WORK 32768
static inline void shmrt_pool_run_sized(int64_t work, void (*fn)(void *ctx, int tid, int n_threads), void *ctx)
{
	if (work < SHMRT_POOL_MIN_WORK)
		fn(ctx, 0, 1);
	else
		shmrt_pool_run(fn, ctx);
}

/* The tid-th of n_threads near-equal contiguous parts of [0, n). */
static inline void shmrt_pool_part(int64_t n, int tid, int n_threads, int64_t *begin, int64_t *end)
{
	*begin = n * tid / n_threads;
	*end = n * (tid + 1) / n_threads;
}

#endif
