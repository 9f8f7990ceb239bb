/* shmrt info: build features, GPUs seen, and the shared-memory directory. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
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

static json_t *json_bool(const char *features, const char *word)
{
	return json_boolean(strstr(features, word) != NULL);
}

/* One JSON document through jansson, so that device names and the
 * directory ($SHMRT_SHM_DIR may hold anything) are escaped. */
static int print_json(const char *feat, int ndev, bool have_space, uint64_t total, uint64_t avail)
{
	json_t *devices = json_array();
	for (int i = 0; i < ndev; i++) {
		struct shmrt_device_info d;
		if (shmrt_device_info(i, &d) != 0)
			continue;
		char sm[16];
		snprintf(sm, sizeof(sm), "%d.%d", d.sm_major, d.sm_minor);
		json_array_append_new(devices, json_pack("{s:i, s:s, s:s, s:I, s:s}", "index", i, "name", d.name,
							 "sm", sm, "memory_bytes", (json_int_t)d.memory_bytes,
							 "pci_bus_id", d.pci_bus_id));
	}
	json_t *shm = json_pack("{s:s, s:o, s:o}", "dir", shmrt_shm_dir(), "total_bytes",
				have_space ? json_integer((json_int_t)total) : json_null(), "free_bytes",
				have_space ? json_integer((json_int_t)avail) : json_null());
	json_t *doc = json_pack("{s:s, s:{s:o, s:s, s:o, s:o, s:o}, s:o, s:o}", "version", shmrt_version(),
				"features", "cuda", json_bool(feat, "cuda"), "cuda_archs", shmrt_cuda_archs(),
				"nccl", json_bool(feat, "nccl"), "liburing", json_bool(feat, "liburing"), "hwloc",
				json_bool(feat, "hwloc"), "devices", devices, "shm", shm);
	int rc = doc && json_dumpf(doc, stdout, JSON_PRESERVE_ORDER) == 0 ? 0 : 1;
	json_decref(doc);
	if (rc)
		fprintf(stderr, "shmrt info: cannot write the JSON document\n");
	else
		putchar('\n');
	return rc;
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

	if (json)
		return print_json(feat, ndev, space_rc == 0, total, avail);

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
