/* NUMA binding through hwloc (see numa.h). */
#include <errno.h>

#include "shmrt_config.h"
#include "numa.h"
#include "fail.h"

#if SHMRT_HAVE_HWLOC
#include <hwloc.h>

static int bind_in(hwloc_topology_t topo, void *addr, size_t len, int node)
{
	int nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	if (nodes <= 1)
		return 0;
	hwloc_obj_t obj = hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node);
	if (!obj)
		return shmrt_fail(EINVAL, "NUMA node %d does not exist (this machine has %d)", node, nodes);
	/* For a MAP_SHARED tmpfs mapping, mbind sets the file's shared policy,
	 * which the later posix_fallocate allocates by: nothing to migrate.
	 * Without HWLOC_MEMBIND_STRICT, hwloc asks Linux to prefer the node
	 * (MPOL_PREFERRED): a full node spills over instead of failing. */
	if (hwloc_set_area_membind(topo, addr, len, obj->nodeset, HWLOC_MEMBIND_BIND,
				   HWLOC_MEMBIND_BYNODESET) == 0)
		return 0;
	/* Placement is an optimization: where the container forbids mbind
	 * (Docker's default seccomp profile gates mbind on CAP_SYS_NICE,
	 * moby/moby#37241), run unbound. */
	if (errno == EPERM || errno == ENOSYS)
		return 0;
	return shmrt_fail(errno, "binding %zu bytes to NUMA node %d: %m", len, node);
}

int shmrt_numa_bind(void *addr, size_t len, int node)
{
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0)
		return shmrt_fail(ENOMEM, "hwloc_topology_init: %m");
	int rc = hwloc_topology_load(topo) == 0 ? bind_in(topo, addr, len, node)
						: shmrt_fail(errno, "hwloc_topology_load: %m");
	hwloc_topology_destroy(topo);
	return rc;
}

#else

int shmrt_numa_bind(void *addr, size_t len, int node)
{
	(void)addr, (void)len, (void)node;
	return 0;
}

#endif
