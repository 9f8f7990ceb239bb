/* shmrt — the GPUs this process can see. */
#ifndef SHMRT_DEVICES_H
#define SHMRT_DEVICES_H

#include "common.h"

struct shmrt_device_info {
	char name[128];
	int sm_major, sm_minor; /* compute capability */
	uint64_t memory_bytes;
	char pci_bus_id[32];   /* "0000:3b:00.0" */
};

/* Number of CUDA devices visible (0 without CUDA, a driver, or a GPU);
 * never an error: a machine without a GPU is a normal machine. */
SHMRT_API int shmrt_device_count(void);

/* Facts about device i (0 .. count-1). 0 or -errno. */
SHMRT_API int shmrt_device_info(int i, struct shmrt_device_info *out);

#endif
