/* Enumerating CUDA devices through the runtime API (see devices.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmrt_config.h"
#include "shmrt/devices.h"
#include "fail.h"

#if SHMRT_HAVE_CUDA
#include <cuda_runtime_api.h>

int shmrt_device_count(void)
{
	int n = 0;
	/* cudaErrorNoDevice / cudaErrorInsufficientDriver: no GPU to use. */
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError(); /* clear the sticky-free error state */
		return 0;
	}
	return n;
}

int shmrt_device_info(int i, struct shmrt_device_info *out)
{
	struct cudaDeviceProp p;
	cudaError_t e = cudaGetDeviceProperties(&p, i);
	if (e != cudaSuccess)
		return shmrt_fail(ENODEV, "device %d: %s", i, cudaGetErrorString(e));
	memset(out, 0, sizeof(*out));
	/* cudaDeviceProp.name is 256 bytes; ours is shorter (names are ~30) */
	snprintf(out->name, sizeof(out->name), "%.*s", (int)sizeof(out->name) - 1, p.name);
	out->sm_major = p.major;
	out->sm_minor = p.minor;
	out->memory_bytes = p.totalGlobalMem;
	if (cudaDeviceGetPCIBusId(out->pci_bus_id, (int)sizeof(out->pci_bus_id), i) != cudaSuccess)
		out->pci_bus_id[0] = '\0';
	return 0;
}

#else

int shmrt_device_count(void)
{
	return 0;
}

int shmrt_device_info(int i, struct shmrt_device_info *out)
{
	(void)out;
	return shmrt_fail(ENODEV, "device %d: shmrt was built without CUDA", i);
}

#endif
