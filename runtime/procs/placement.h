/* Internal: where a worker runs — its GPU, its CPUs and its NUMA node. */
#ifndef SHMRT_PLACEMENT_H
#define SHMRT_PLACEMENT_H

#include <sched.h>

struct rt_placement {
	int device;    /* CUDA device; -1: a CPU worker */
	int numa_node; /* OS index of the one node holding `cpus`; -1: several or unknown */
	cpu_set_t cpus;
};

/* Pure: the share of n ordered CPUs (n >= 1) that worker `index` of
 * `count` (0 <= index < count) takes, as [*lo, *hi). With n >= count the
 * shares are disjoint, non-empty and cover all n; with fewer CPUs each
 * worker takes one CPU, round robin, so no CPU has more than one worker
 * more than another. */
void rt_placement_split(int n, int index, int count, int *lo, int *hi);

/* Where worker `rank` of `world` should run. gpu != 0: device rank %
 * (devices visible); its CPUs are those nearest the device (hwloc), split
 * among the workers sharing it. gpu == 0: the rank's share of the CPUs this
 * process may use. Either way within sched_getaffinity's set. 0 or -errno
 * (-ENODEV: gpu asked and none visible). */
int rt_placement_get(int rank, int world, int gpu, struct rt_placement *out);

/* The NUMA node every one of `world` workers would run on (their CPUs as
 * rt_placement_get gives them, from this process's affinity), or -1 when
 * they span several nodes, hwloc does not know, or placement fails:
 * binding is an optimization, never a reason not to start. */
int rt_placement_common_node(int world, int gpu);

/* Pins the calling process to p->cpus and makes p->device its current CUDA
 * device. 0 or -errno. */
int rt_placement_apply(const struct rt_placement *p);

#endif
