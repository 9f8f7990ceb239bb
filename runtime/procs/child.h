/* Internal: the runtime's child processes (runtime.h): their entries, and
 * what they share. Each returns 0 when told to stop, or -errno with the
 * message set (the process then exits non-zero; the supervisor sees it). */
#ifndef SHMRT_RT_CHILD_H
#define SHMRT_RT_CHILD_H

#include "clock.h"
#include "proto.h"

/* The exit status of a child that found the arena file truncated. */
#define RT_EXIT_TRUNCATED 3

/* How long a child waits on a ring before it beats its heart again. */
#define RT_BEAT_NS ((int64_t)100 * 1000000)

static inline void rt_beat(struct rt_proc *p)
{
	atomic_store_explicit(&p->heartbeat_ns, shmrt_now_ns(), memory_order_relaxed);
}

int rt_tokenizer_run(struct shmrt_arena *a, struct rt_state *st);
int rt_scheduler_run(struct shmrt_arena *a, struct rt_state *st);
int rt_worker_run(struct shmrt_arena *a, struct rt_state *st, int rank);

#endif
