/* The entry of a child process: `shmrt __child ROLE RANK NAME`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/error.h"
#include "shmrt/runtime.h"
#include "fail.h"
#include "rt_child.h"

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
