/* The persistent thread pool of the fast CPU kernels (cpu_pool.h).
 *
 * A run bumps `generation`; workers waiting for a new generation spin a
 * while, then sleep on it as a futex. The caller makes the wake system
 * call only when a worker sleeps (the `sleepers` count, Dekker-style with
 * sequentially consistent atomics), and likewise waits for `pending` to
 * reach 0. */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu_pool.h"
#include "futex.h"
#include "clock.h"
#include "spin.h"

#define SPIN_NS 50000
#define MAX_THREADS 256

static struct {
	pthread_mutex_t lock; /* one run at a time; guards starting */
	int n_threads;        /* 0: not started in this process */
	void (*fn)(void *ctx, int tid, int n_threads);
	void *ctx;
	_Atomic uint32_t generation;
	_Atomic uint32_t sleepers;      /* workers asleep (or about to be) on generation */
	_Atomic uint32_t pending;       /* workers still inside this run's fn */
	_Atomic uint32_t caller_sleeps; /* the caller sleeps on pending */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int in_run; /* nested runs go inline */


/* Waits until *word != value: spins SPIN_NS, then sleeps, counting itself
 * in *sleepers meanwhile. */
static uint32_t wait_change(_Atomic uint32_t *word, uint32_t value, _Atomic uint32_t *sleepers)
{
	uint32_t now;
	int64_t start = shmrt_now_ns(), t = start;
	for (int i = 0; (now = atomic_load(word)) == value; i++) {
		if ((i & 255) || (t = shmrt_now_ns()) < start + SPIN_NS) {
			shmrt_spin_turn(t - start); /* t: as of the last clock read */
			continue;
		}
		atomic_fetch_add(sleepers, 1);
		shmrt_futex_wait(word, value, -1);
		atomic_fetch_sub(sleepers, 1);
	}
	return now;
}

static void *worker(void *arg)
{
	int tid = (int)(intptr_t)arg;
	uint32_t seen = 0; /* workers start before the first run */
	in_run = 1;
	for (;;) {
		seen = wait_change(&pool.generation, seen, &pool.sleepers);
		pool.fn(pool.ctx, tid, pool.n_threads);
		if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.caller_sleeps))
			shmrt_futex_wake(&pool.pending, 1);
	}
	return NULL;
}

static int wanted_threads(void)
{
	const char *env = getenv("SHMRT_CPU_THREADS");
	int n = env ? atoi(env) : 0;
	if (n <= 0) {
		cpu_set_t set;
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	}
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

/* A forked child has none of the parent's workers: start afresh. */
static void after_fork_child(void)
{
	pthread_mutex_init(&pool.lock, NULL);
	pool.n_threads = 0;
	atomic_store(&pool.generation, 0);
	atomic_store(&pool.sleepers, 0);
	atomic_store(&pool.pending, 0);
	atomic_store(&pool.caller_sleeps, 0);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/* With pool.lock held. Workers block all signals: the host program's
 * handlers run on its own threads. */
static void start(void)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	int want = wanted_threads(), n = 1;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; n < want; n++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, (void *)(intptr_t)n))
			break; /* run with the threads we have */
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pool.n_threads = n;
	pthread_once(&atfork_once, register_atfork);
}

int shmrt_pool_threads(void)
{
	pthread_mutex_lock(&pool.lock);
	if (!pool.n_threads)
		start();
	int n = pool.n_threads;
	pthread_mutex_unlock(&pool.lock);
	return n;
}

void shmrt_pool_run(void (*fn)(void *ctx, int tid, int n_threads), void *ctx)
{
	if (in_run) {
		fn(ctx, 0, 1);
		return;
	}
	pthread_mutex_lock(&pool.lock);
	if (!pool.n_threads)
		start();
	int n = pool.n_threads;
	if (n == 1) {
		pthread_mutex_unlock(&pool.lock);
		fn(ctx, 0, 1);
		return;
	}
	pool.fn = fn;
	pool.ctx = ctx;
	atomic_store(&pool.pending, (uint32_t)(n - 1));
	atomic_fetch_add(&pool.generation, 1);
	if (atomic_load(&pool.sleepers))
		shmrt_futex_wake(&pool.generation, INT_MAX);

	in_run = 1;
	fn(ctx, 0, n);
	in_run = 0;

	uint32_t left;
	while ((left = atomic_load(&pool.pending)))
		wait_change(&pool.pending, left, &pool.caller_sleeps);
	pthread_mutex_unlock(&pool.lock);
}
