/* Worker placement (runtime/procs/placement.c): the CPU split against fake CPU
 * counts (W = 1..8 workers over 1..8 CPUs: disjoint, non-empty, covering,
 * or balanced when CPUs are fewer), then the real placement on this
 * machine's CPUs, checked against sched_getaffinity and sysfs (also the
 * node the arena is bound to). The GPU path runs only where a GPU is
 * visible. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/devices.h"
#include "shmrt/error.h"
#include "check.h"
#include "placement.h"

#define MAX_CPUS 8
#define MAX_WORKERS 8

static void check_split(int n, int world)
{
	int users[MAX_CPUS] = {0};
	for (int r = 0; r < world; r++) {
		int lo, hi;
		rt_placement_split(n, r, world, &lo, &hi);
		CHECK(0 <= lo && lo < hi && hi <= n, "n %d W %d rank %d: [%d, %d)", n, world, r, lo, hi);
		for (int c = lo; c < hi; c++)
			users[c]++;
	}
	int lo_use = world, hi_use = 0;
	for (int c = 0; c < n; c++) {
		lo_use = users[c] < lo_use ? users[c] : lo_use;
		hi_use = users[c] > hi_use ? users[c] : hi_use;
	}
	if (n >= world) /* each CPU exactly once: disjoint and covering */
		CHECK(lo_use == 1 && hi_use == 1, "n %d W %d: CPUs used %d..%d times", n, world, lo_use, hi_use);
	else /* shared, but no CPU has two workers more than another */
		CHECK(lo_use >= 1 && hi_use - lo_use <= 1, "n %d W %d: CPUs used %d..%d times", n, world, lo_use,
		      hi_use);
}

/* The NUMA node of CPU c from sysfs (/sys/devices/system/cpu/cpuN/nodeM),
 * -1 if unknown. */
static int sysfs_node(int c)
{
	char path[96];
	for (int n = 0; n < 64; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/node%d", c, n);
		if (access(path, F_OK) == 0)
			return n;
	}
	return -1;
}

static void check_cpu_workers(void)
{
	cpu_set_t allowed;
	CHECK(sched_getaffinity(0, sizeof(allowed), &allowed) == 0, "sched_getaffinity");
	int n = CPU_COUNT(&allowed);
	for (int world = 1; world <= MAX_WORKERS; world++) {
		cpu_set_t seen;
		CPU_ZERO(&seen);
		for (int r = 0; r < world; r++) {
			struct rt_placement p;
			CHECK_OK(rt_placement_get(r, world, 0, &p));
			CHECK(p.device == -1, "W %d rank %d: device %d", world, r, p.device);
			cpu_set_t outside;
			CPU_AND(&outside, &p.cpus, &allowed);
			CHECK(CPU_COUNT(&p.cpus) >= 1 && CPU_EQUAL(&outside, &p.cpus), "W %d rank %d: %d CPUs, not all allowed",
			      world, r, CPU_COUNT(&p.cpus));
			cpu_set_t both;
			CPU_AND(&both, &seen, &p.cpus);
			if (world <= n)
				CHECK(CPU_COUNT(&both) == 0, "W %d rank %d shares a CPU with a lower rank", world, r);
			CPU_OR(&seen, &seen, &p.cpus);
			int first = -1;
			for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
				first = CPU_ISSET(c, &p.cpus) ? c : -1;
			int want = sysfs_node(first);
			/* hwloc may see no node where sysfs has none */
			CHECK(p.numa_node == want || (want < 0 && p.numa_node <= 0), "W %d rank %d: node %d, sysfs %d",
			      world, r, p.numa_node, want);
		}
		if (world <= n)
			CHECK(CPU_COUNT(&seen) == n, "W %d: %d of %d CPUs used", world, CPU_COUNT(&seen), n);
	}
	/* the node the arena is bound to: the allowed CPUs' one node, or -1 */
	int common = -2;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			common = common == -2 || common == sysfs_node(c) ? sysfs_node(c) : -1;
	for (int world = 1; world <= MAX_WORKERS; world++) {
		int node = rt_placement_common_node(world, 0);
		CHECK(node == common || (common < 0 && node == -1), "W %d: common node %d, sysfs %d", world, node,
		      common);
	}
	struct rt_placement p;
	CHECK(rt_placement_get(2, 2, 0, &p) == -EINVAL, "rank 2 of 2 accepted");
	CHECK(strstr(shmrt_last_error(), "rank 2 of 2"), "message: %s", shmrt_last_error());
}

/* Ranks go round the devices; each gets a device and some CPUs. */
static void check_gpu_workers(int devices)
{
	for (int world = 1; world <= 2 * devices; world++)
		for (int r = 0; r < world; r++) {
			struct rt_placement p;
			CHECK_OK(rt_placement_get(r, world, 1, &p));
			CHECK(p.device == r % devices, "W %d rank %d: device %d", world, r, p.device);
			CHECK(CPU_COUNT(&p.cpus) >= 1, "W %d rank %d: no CPUs", world, r);
		}
	struct rt_placement p;
	CHECK_OK(rt_placement_get(0, 1, 1, &p));
	CHECK_OK(rt_placement_apply(&p));
}

int main(void)
{
	for (int n = 1; n <= MAX_CPUS; n++)
		for (int world = 1; world <= MAX_WORKERS; world++)
			check_split(n, world);
	check_cpu_workers();
	int devices = shmrt_device_count();
	if (devices > 0) {
		check_gpu_workers(devices);
	} else {
		struct rt_placement p;
		CHECK(rt_placement_get(0, 1, 1, &p) == -ENODEV, "a GPU placement without a GPU");
		CHECK(rt_placement_common_node(1, 1) == -1, "a GPU node without a GPU");
	}
	printf("placement: split W 1..%d over 1..%d CPUs; %d GPU(s)\n", MAX_WORKERS, MAX_CPUS, devices);
	return 0;
}
