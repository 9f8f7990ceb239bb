/* A tensor-parallel group of this process and world - 1 forked copies
 * over a fresh shm transport region, for `--workers N` of the commands
 * that run a model in one invocation (logits, generate). */
#ifndef SHMRT_TOOLS_TP_GROUP_H
#define SHMRT_TOOLS_TP_GROUP_H

#include <sys/types.h>

#include "shmrt/shmrt.h"

struct tp_group {
	int rank, world;
	struct shmrt_xfer *xfer; /* NULL when world == 1 */
	void *region;
	size_t region_size;
	pid_t pids[SHMRT_XFER_MAX_WORLD];
};

/* Forks ranks 1 .. world - 1; returns 0 in every process, with g->rank set
 * (the caller is rank 0) and g->xfer open, else prints why (as cmd) and
 * returns -errno. The ranks' buffers are host memory: backend must be a
 * CPU one when world > 1. */
int tp_group_start(const char *cmd, int world, const char *backend, struct tp_group *g);

/* Sets the tensor-parallel fields of mo for this rank. */
void tp_group_options(const struct tp_group *g, struct shmrt_model_options *mo);

/* Ends the group with this rank's exit status: a rank > 0 exits with it
 * (never returns); rank 0 waits for the others and returns its status, or
 * 1 when a rank failed. */
int tp_group_finish(struct tp_group *g, int status);

#endif
