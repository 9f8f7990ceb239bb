/* Internal: placing shared memory on a NUMA node. */
#ifndef SHMRT_NUMA_H
#define SHMRT_NUMA_H

#include <stddef.h>

/* Binds the pages of [addr, addr + len) (addr page-aligned) to NUMA node
 * `node` (its OS index): pages allocated afterwards come from that node
 * while it has room. A no-op returning 0 on a machine with one node, in a
 * build without hwloc, or where the system forbids binding; -EINVAL for a
 * node this machine lacks. */
int shmrt_numa_bind(void *addr, size_t len, int node);

#endif
