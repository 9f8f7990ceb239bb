/* Device memory for shmrt bench xfer's GPU rows. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt_config.h"
#include "shmrt/devices.h"
#include "xfer.h"

#if SHMRT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

int xfer_gpu_count(void)
{
	/* CUDA does not survive fork(): ask in a child, which exits with it. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int n = shmrt_device_count();
		_exit(n < 0 ? 0 : n > 100 ? 100 : n);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 0;
	return WEXITSTATUS(status);
}

#if SHMRT_HAVE_CUDA
int xfer_gpu_alloc(int device, size_t bytes, void **send, void **recv)
{
	*send = *recv = NULL;
	if (cudaSetDevice(device) != cudaSuccess || cudaMalloc(send, bytes) != cudaSuccess ||
	    cudaMalloc(recv, bytes) != cudaSuccess || cudaMemset(*send, 0, bytes) != cudaSuccess ||
	    cudaMemset(*recv, 0, bytes) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
		xfer_gpu_free(*send, *recv);
		*send = *recv = NULL;
		return -ENOMEM;
	}
	return 0;
}

void xfer_gpu_free(void *send, void *recv)
{
	cudaFree(send);
	cudaFree(recv);
}
#else
int xfer_gpu_alloc(int device, size_t bytes, void **send, void **recv)
{
	(void)device, (void)bytes;
	*send = *recv = NULL;
	return -ENODEV;
}

void xfer_gpu_free(void *send, void *recv)
{
	(void)send, (void)recv;
}
#endif
