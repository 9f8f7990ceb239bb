/* Forked tensor-parallel ranks over the shm transport (tp_group.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/backend.h"
#include "tp_group.h"

static int open_rank(const char *cmd, struct tp_group *g)
{
	struct shmrt_xfer_config xc = {.rank = g->rank, .world = g->world, .region = g->region,
				       .region_size = g->region_size, .device = -1};
	int rc = shmrt_xfer_open(&g->xfer, "shm", &xc);
	if (rc < 0)
		fprintf(stderr, "shmrt %s: rank %d of %d: %s\n", cmd, g->rank, g->world, shmrt_last_error());
	return rc;
}

int tp_group_start(const char *cmd, int world, const char *backend, struct tp_group *g)
{
	*g = (struct tp_group){.world = world};
	if (world == 1)
		return 0;
	if (shmrt_backend_device(backend) != SHMRT_DEVICE_CPU) {
		fprintf(stderr, "shmrt %s: --workers %d runs CPU ranks (host memory); not with --backend %s\n", cmd,
			world, backend);
		return -ENOTSUP;
	}
	/* anonymous shared memory: the forked ranks inherit it, and it goes
	 * with the last of them */
	g->region_size = shmrt_xfer_footprint(world, 0);
	g->region = g->region_size ? mmap(NULL, g->region_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
					  -1, 0)
				   : MAP_FAILED;
	if (g->region == MAP_FAILED) {
		fprintf(stderr, "shmrt %s: no shared memory for %d workers: %s\n", cmd, world, strerror(errno));
		return -ENOMEM;
	}
	int rc = shmrt_xfer_format(g->region, g->region_size, world, 0);
	if (rc < 0) {
		fprintf(stderr, "shmrt %s: %s\n", cmd, shmrt_last_error());
		return rc;
	}
	fflush(NULL);
	for (int r = 1; r < world; r++) {
		pid_t pid = fork();
		if (pid < 0) {
			rc = -errno;
			fprintf(stderr, "shmrt %s: fork: %s\n", cmd, strerror(errno));
			/* those forked would wait for the rest to join */
			for (int q = 1; q < r; q++)
				kill(g->pids[q], SIGKILL);
			g->world = r;
			tp_group_finish(g, 1);
			return rc;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			g->rank = r;
			if (open_rank(cmd, g) < 0)
				_exit(1);
			return 0;
		}
		g->pids[r] = pid;
	}
	if ((rc = open_rank(cmd, g)) < 0)
		tp_group_finish(g, 1);
	return rc;
}

void tp_group_options(const struct tp_group *g, struct shmrt_model_options *mo)
{
	mo->rank = g->rank;
	mo->world = g->world;
	mo->xfer = g->xfer;
}

int tp_group_finish(struct tp_group *g, int status)
{
	/* a rank that failed leaves: the peers' waits on it end with -EPIPE */
	shmrt_xfer_close(g->xfer);
	g->xfer = NULL;
	if (g->rank > 0) {
		fflush(NULL);
		_exit(status);
	}
	for (int r = 1; r < g->world; r++) {
		int st;
		if (waitpid(g->pids[r], &st, 0) != g->pids[r] || !WIFEXITED(st) || WEXITSTATUS(st)) {
			if (!status)
				fprintf(stderr, "shmrt: worker %d failed\n", r);
			status = status ? status : 1;
		}
	}
	if (g->region)
		munmap(g->region, g->region_size);
	g->region = NULL;
	return status;
}
