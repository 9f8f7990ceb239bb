/* NUMA binding of arena regions (ipc/numa.c): a no-op on a one-node
 * machine; on two nodes (a real machine, or hwloc's synthetic topology over
 * this one) the pages' policy names the node, and a missing node is -EINVAL.
 * The policy is read back with get_mempolicy, independently of hwloc. */
#include <dirent.h>
#include <errno.h>
#include <linux/mempolicy.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shmrt_config.h"
#include "shmrt/error.h"
#include "check.h"
#include "numa.h"

#define LEN (64 * 1024)

/* NUMA nodes the kernel has, from sysfs. */
static int count_nodes(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += !strncmp(e->d_name, "node", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9';
	if (d)
		closedir(d);
	return n ? n : 1;
}

/* The policy of the page at p: its mode and node mask; false if the
 * system will not say (seccomp). */
static bool policy_of(void *p, int *mode, unsigned long *mask)
{
	*mask = 0;
	return syscall(SYS_get_mempolicy, mode, mask, 8 * sizeof(*mask), p, MPOL_F_ADDR) == 0;
}

int main(void)
{
	/* A shared anonymous mapping is shmem, like a tmpfs arena file. */
	void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap");
	int mode, nodes = count_nodes();
	unsigned long mask;
	if (nodes == 1) {
		CHECK_OK(shmrt_numa_bind(p, LEN, 0));
		CHECK_OK(shmrt_numa_bind(p, LEN, 3)); /* a config from a bigger machine */
		CHECK(!policy_of(p, &mode, &mask) || mode == MPOL_DEFAULT, "one node, yet policy %d", mode);
	}
#if SHMRT_HAVE_HWLOC
	if (nodes == 1) {
		/* Make hwloc see two nodes; the binding itself is real. */
		setenv("HWLOC_SYNTHETIC", "numa:2 core:1 pu:1", 1);
		setenv("HWLOC_THISSYSTEM", "1", 1);
	}
	CHECK_OK(shmrt_numa_bind(p, LEN, 0));
	if (!policy_of(p, &mode, &mask))
		SKIP("get_mempolicy is not permitted here");
	CHECK(mode != MPOL_DEFAULT && mask == 1, "bound to node 0: policy %d mask %#lx", mode, mask);
	int rc = shmrt_numa_bind(p, LEN, 9);
	CHECK(rc == -EINVAL && strstr(shmrt_last_error(), "node 9"), "node 9: %d %s", rc, shmrt_last_error());
	if (nodes >= 2) {
		CHECK_OK(shmrt_numa_bind(p, LEN, 1));
		CHECK(policy_of(p, &mode, &mask) && mask == 2, "bound to node 1: mask %#lx", mask);
	}
#else
	CHECK_OK(shmrt_numa_bind(p, LEN, 1));
	SKIP("built without hwloc: binding is a no-op");
#endif
	munmap(p, LEN);
	return 0;
}
