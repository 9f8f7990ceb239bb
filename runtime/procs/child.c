/* The entry of a child process: `shmrt __child ROLE RANK NAME`. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/error.h"
#include "shmrt/runtime.h"
#include "arena_format.h"
#include "fail.h"
#include "child.h"

/* The arena's mapping, for on_sigbus. */
static uintptr_t arena_lo, arena_hi;

/* Someone truncated the arena file (only its owner can): the lost pages
 * fault with SIGBUS. A clear exit, which the supervisor names, rather
 * than a death by a signal. Any other SIGBUS takes its default course. */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	uintptr_t at = (uintptr_t)si->si_addr;
	if (at >= arena_lo && at < arena_hi) {
		static const char msg[] = "shmrt: the arena file was truncated under the runtime (SIGBUS)\n";
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(RT_EXIT_TRUNCATED);
	}
	signal(sig, SIG_DFL); /* the access faults again, now fatally */
}

static void guard_mapping(const struct shmrt_arena *a)
{
	const void *base;
	size_t size;
	shmrt_arena_mapping(a, &base, &size);
	arena_lo = (uintptr_t)base;
	arena_hi = arena_lo + size;
	struct sigaction sa = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

int shmrt_runtime_child_main(int argc, char **argv)
{
	shmrt_clear_error();
	if (argc != 4) {
		shmrt_fail(EINVAL, "usage: __child ROLE RANK NAME (started by the supervisor)");
		return 2;
	}
	int role = atoi(argv[1]), rank = atoi(argv[2]);
	struct shmrt_arena *a;
	struct rt_state *st;
	int rc = shmrt_arena_attach(&a, argv[3]);
	if (rc)
		return 1;
	guard_mapping(a);
	if ((rc = rt_state_get(a, &st)) == 0) {
		if (role == RT_ROLE_TOKENIZER)
			rc = rt_tokenizer_run(a, st);
		else if (role == RT_ROLE_SCHEDULER)
			rc = rt_scheduler_run(a, st);
		else if (role == RT_ROLE_WORKER && rank >= 0 && (unsigned)rank < st->n_workers)
			rc = rt_worker_run(a, st, rank);
		else
			rc = shmrt_fail(EINVAL, "no role %d rank %d", role, rank);
	}
	shmrt_arena_detach(a);
	return rc ? 1 : 0;
}
