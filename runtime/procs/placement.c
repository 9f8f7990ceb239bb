/* Worker placement (see placement.h): hwloc gives the CPUs nearest a GPU
 * (the PCI device's local_cpus) and the NUMA node of a CPU set. */
#include <errno.h>
#include <string.h>

#include "shmrt_config.h"
#include "shmrt/devices.h"
#include "fail.h"
#include "placement.h"

#if SHMRT_HAVE_HWLOC
#include <hwloc.h>
#endif
#if SHMRT_HAVE_CUDA
#include <cuda_runtime_api.h>
#if SHMRT_HAVE_HWLOC
#include <hwloc/cudart.h>
#endif
#endif

void rt_placement_split(int n, int index, int count, int *lo, int *hi)
{
	if (n >= count) {
		*lo = (int)((long)n * index / count);
		*hi = (int)((long)n * (index + 1) / count);
	} else {
		*lo = index % n;
		*hi = *lo + 1;
	}
}

/* The [lo, hi) share of the CPUs in `from`, in order. */
static void take_share(const cpu_set_t *from, int index, int count, cpu_set_t *out)
{
	int lo, hi, k = 0;
	rt_placement_split(CPU_COUNT(from), index, count, &lo, &hi);
	CPU_ZERO(out);
	for (int c = 0; c < CPU_SETSIZE && k < hi; c++)
		if (CPU_ISSET(c, from) && k++ >= lo)
			CPU_SET(c, out);
}

#if SHMRT_HAVE_HWLOC
/* The one NUMA node holding every CPU of `cpus`, or -1. */
static int node_of(hwloc_topology_t topo, const cpu_set_t *cpus)
{
	hwloc_bitmap_t cs = hwloc_bitmap_alloc(), ns = hwloc_bitmap_alloc();
	int node = -1;
	if (cs && ns) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, cpus))
				hwloc_bitmap_set(cs, (unsigned)c);
		hwloc_cpuset_to_nodeset(topo, cs, ns);
		if (hwloc_bitmap_weight(ns) == 1)
			node = hwloc_bitmap_first(ns);
	}
	hwloc_bitmap_free(cs);
	hwloc_bitmap_free(ns);
	return node;
}

/* Narrows *cpus to those near CUDA device `device`; keeps *cpus when the
 * two do not meet (a container's affinity may exclude the GPU's socket). */
static void near_device(hwloc_topology_t topo, int device, cpu_set_t *cpus)
{
#if SHMRT_HAVE_CUDA
	hwloc_bitmap_t near = hwloc_bitmap_alloc();
	if (near && hwloc_cudart_get_device_cpuset(topo, device, near) == 0) {
		cpu_set_t both;
		CPU_ZERO(&both);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, cpus) && hwloc_bitmap_isset(near, (unsigned)c))
				CPU_SET(c, &both);
		if (CPU_COUNT(&both))
			*cpus = both;
	}
	hwloc_bitmap_free(near);
#else
	(void)topo, (void)device, (void)cpus;
#endif
}

/* Fills out->cpus (from `allowed`) and out->numa_node through hwloc. */
static int locate(const cpu_set_t *allowed, int index, int count, struct rt_placement *out)
{
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0)
		return shmrt_fail(ENOMEM, "hwloc_topology_init: %m");
	if (hwloc_topology_load(topo) != 0) {
		int e = errno;
		hwloc_topology_destroy(topo);
		return shmrt_fail(e, "hwloc_topology_load: %m");
	}
	cpu_set_t near = *allowed;
	if (out->device >= 0)
		near_device(topo, out->device, &near);
	take_share(&near, index, count, &out->cpus);
	out->numa_node = node_of(topo, &out->cpus);
	hwloc_topology_destroy(topo);
	return 0;
}
#else
static int locate(const cpu_set_t *allowed, int index, int count, struct rt_placement *out)
{
	take_share(allowed, index, count, &out->cpus);
	out->numa_node = -1;
	return 0;
}
#endif

int rt_placement_get(int rank, int world, int gpu, struct rt_placement *out)
{
	if (world < 1 || rank < 0 || rank >= world)
		return shmrt_fail(EINVAL, "placement: rank %d of %d workers", rank, world);
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return shmrt_fail(errno, "sched_getaffinity: %m");
	int index = rank, count = world;
	out->device = -1;
	if (gpu) {
		int n = shmrt_device_count();
		if (n < 1)
			return shmrt_fail(ENODEV, "placement: worker %d wants a GPU and none is visible", rank);
		/* ranks d, d + n, d + 2n, ... share device d */
		out->device = rank % n;
		index = rank / n;
		count = (world - 1 - out->device) / n + 1;
	}
	return locate(&allowed, index, count, out);
}

int rt_placement_common_node(int world, int gpu)
{
	int node = -1;
	for (int r = 0; r < world; r++) {
		struct rt_placement p;
		if (rt_placement_get(r, world, gpu, &p) || p.numa_node < 0 || (r > 0 && p.numa_node != node))
			return -1;
		node = p.numa_node;
	}
	return node;
}

int rt_placement_apply(const struct rt_placement *p)
{
	if (sched_setaffinity(0, sizeof(p->cpus), &p->cpus))
		return shmrt_fail(errno, "sched_setaffinity: %m");
	if (p->device < 0)
		return 0;
#if SHMRT_HAVE_CUDA
	cudaError_t e = cudaSetDevice(p->device);
	if (e != cudaSuccess)
		return shmrt_fail(ENODEV, "cudaSetDevice(%d): %s", p->device, cudaGetErrorString(e));
	return 0;
#else
	return shmrt_fail(ENODEV, "placement: device %d, but CUDA is not built in", p->device);
#endif
}
