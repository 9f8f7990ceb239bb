/* Internal: the spinning part of our waits (rings, the transport, the CPU
 * kernels' thread pool), before they sleep on a futex.
 *
 * A wait spins first because a handoff between two running threads takes
 * well under a microsecond, against tens for a futex wake-up. But where
 * the CPUs are all taken (CPU workers with a thread per core, beside the
 * scheduler, the tokenizer and the clients), a spinner that only pauses
 * holds the CPU that the very thread it waits for needs, until the kernel
 * preempts it. So a spin pauses while the wait is young, then yields:
 * sched_yield costs a fraction of a microsecond when nobody else wants the
 * CPU, and hands it over when someone does (EEVDF and CFS both put the
 * yielder behind the other runnable tasks). */
#ifndef SHMRT_SPIN_H
#define SHMRT_SPIN_H

#include <sched.h>
#include <stdint.h>

/* How long a wait spins with pause alone before it yields. */
#define SHMRT_SPIN_PAUSE_NS 4000

static inline void shmrt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* One turn of a spin that has been waiting waited_ns. */
static inline void shmrt_spin_turn(int64_t waited_ns)
{
	if (waited_ns < SHMRT_SPIN_PAUSE_NS)
		shmrt_cpu_relax();
	else
		sched_yield();
}

#endif
