/* shmrt info: build features, GPUs seen, and the shared-memory directory. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "cmd.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt info [--json]\n\n"
		   "Prints the version, build features (CUDA architectures, NCCL, liburing,\n"
		   "hwloc), the GPUs this process sees, and the shared-memory directory\n"
		   "($SHMRT_SHM_DIR, default /dev/shm) with its size and free space.\n");
}

static const char *yes_no(const char *features, const char *word)
{
	return strstr(features, word) ? "yes" : "no";
}

int cmd_info(int argc, char **argv)
{
	int json = 0;
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0}};
	for (int c; (c = getopt_long(argc, argv, "jh", opts, NULL)) != -1;) {
		if (c == 'j')
			json = 1;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	const char *feat = shmrt_build_features();
	uint64_t total = 0, avail = 0;
	int space_rc = shmrt_shm_space(&total, &avail);
	int ndev = shmrt_device_count();

	if (json) {
		printf("{\"version\": \"%s\", \"features\": {\"cuda\": %s, \"cuda_archs\": \"%s\", "
		       "\"nccl\": %s, \"liburing\": %s, \"hwloc\": %s}, \"devices\": [",
		       shmrt_version(), strstr(feat, "cuda") ? "true" : "false", shmrt_cuda_archs(),
		       strstr(feat, "nccl") ? "true" : "false", strstr(feat, "liburing") ? "true" : "false",
		       strstr(feat, "hwloc") ? "true" : "false");
		for (int i = 0; i < ndev; i++) {
			struct shmrt_device_info d;
			if (shmrt_device_info(i, &d) == 0)
				printf("%s{\"index\": %d, \"name\": \"%s\", \"sm\": \"%d.%d\", \"memory_bytes\": %llu, "
				       "\"pci_bus_id\": \"%s\"}",
				       i ? ", " : "", i, d.name, d.sm_major, d.sm_minor,
				       (unsigned long long)d.memory_bytes, d.pci_bus_id);
		}
		printf("], \"shm\": {\"dir\": \"%s\", ", shmrt_shm_dir());
		if (space_rc == 0)
			printf("\"total_bytes\": %llu, \"free_bytes\": %llu}}\n", (unsigned long long)total,
			       (unsigned long long)avail);
		else
			printf("\"total_bytes\": null, \"free_bytes\": null}}\n");
		return 0;
	}

	printf("shmrt %s\n", shmrt_version());
	printf("features:\n");
	printf("  cuda      %s%s%s%s\n", yes_no(feat, "cuda"), *shmrt_cuda_archs() ? " (sm " : "",
	       shmrt_cuda_archs(), *shmrt_cuda_archs() ? ")" : "");
	printf("  nccl      %s\n", yes_no(feat, "nccl"));
	printf("  liburing  %s\n", yes_no(feat, "liburing"));
	printf("  hwloc     %s\n", yes_no(feat, "hwloc"));
	printf("gpus:       %d\n", ndev);
	for (int i = 0; i < ndev; i++) {
		struct shmrt_device_info d;
		if (shmrt_device_info(i, &d) == 0)
			printf("  [%d] %s, sm_%d%d, %.1f GiB, %s\n", i, d.name, d.sm_major, d.sm_minor,
			       d.memory_bytes / 1073741824.0, d.pci_bus_id);
	}
	printf("shm dir:    %s\n", shmrt_shm_dir());
	if (space_rc == 0)
		printf("  size %.0f MiB, free %.0f MiB\n", total / 1048576.0, avail / 1048576.0);
	else
		printf("  unavailable: %s\n", shmrt_last_error());
	return 0;
}
