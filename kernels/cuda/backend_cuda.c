/* The "cuda" backend: its table, device memory and copies, the probe that
 * decides whether it is usable, and the state each device keeps
 * (workspaces, cuBLASLt, the matmul plan cache). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shmrt_config.h"
#include "cuda_internal.h"
#include "backends.h"
#include "fail.h"

#define MAX_DEVICES 64
#define ATTN_WS_BYTES ((size_t)64 << 20)
#define LT_WS_BYTES ((size_t)32 << 20) /* cuBLAS guide: 32 MiB suits Hopper */

/* ---- per-device state ---- */

static struct shmrt_cuda_dev *devs[MAX_DEVICES];
static pthread_mutex_t devs_lock = PTHREAD_MUTEX_INITIALIZER;

static void dev_free(struct shmrt_cuda_dev *d)
{
	if (d->lt)
		cublasLtDestroy(d->lt);
	cudaFree(d->lt_ws);
	cudaFree(d->attn_ws);
	shmrt_cuda_mm_cache_free(d->mm_cache);
	free(d);
}

static int dev_make(int device, struct shmrt_cuda_dev **out)
{
	struct shmrt_cuda_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return shmrt_fail(ENOMEM, "cuda: no memory for device state");
	d->device = device;
	int major = 0, n_sm = 0, optin = 0;
	cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
	cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, device);
	cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
	if (major < 8) {
		free(d);
		return shmrt_fail(ENODEV, "cuda: device %d has compute capability %d.x; the kernels need 8.0 or newer",
				  device, major);
	}
	d->n_sm = n_sm > 0 ? n_sm : 1;
	d->smem_optin = (size_t)optin;
	d->mm_cache = shmrt_cuda_mm_cache_new();
	cudaError_t e = cudaMalloc(&d->attn_ws, ATTN_WS_BYTES);
	if (e == cudaSuccess)
		e = cudaMalloc(&d->lt_ws, LT_WS_BYTES);
	if (!d->mm_cache || e != cudaSuccess) {
		dev_free(d);
		return shmrt_fail(ENOMEM, "cuda: device %d: cannot allocate the %zu MiB of workspaces", device,
				  (ATTN_WS_BYTES + LT_WS_BYTES) >> 20);
	}
	d->attn_ws_bytes = ATTN_WS_BYTES;
	d->lt_ws_bytes = LT_WS_BYTES;
	if (cublasLtCreate(&d->lt) != CUBLAS_STATUS_SUCCESS)
		d->lt = NULL; /* our own kernels still run */
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

int shmrt_cuda_dev_get(struct shmrt_cuda_dev **out)
{
	int device = 0;
	cudaError_t e = cudaGetDevice(&device);
	if (e != cudaSuccess)
		return shmrt_fail(EIO, "cuda: no current device: %s", cudaGetErrorString(e));
	if (device < 0 || device >= MAX_DEVICES)
		return shmrt_fail(ENODEV, "cuda: device %d: at most %d devices are supported", device, MAX_DEVICES);
	int rc = 0;
	pthread_mutex_lock(&devs_lock);
	if (!devs[device])
		rc = dev_make(device, &devs[device]);
	*out = devs[device];
	pthread_mutex_unlock(&devs_lock);
	return rc;
}

/* ---- memory ---- */

static int cuda_alloc(void **ptr, size_t bytes)
{
	cudaError_t e = cudaMalloc(ptr, bytes);
	if (e != cudaSuccess) {
		*ptr = NULL;
		return shmrt_fail(e == cudaErrorMemoryAllocation ? ENOMEM : EIO, "cuda alloc of %zu bytes: %s", bytes,
				  cudaGetErrorString(e));
	}
	return 0;
}

static void cuda_free(void *ptr)
{
	cudaFree(ptr);
}

static int copy_status(cudaError_t e, const char *what, size_t bytes)
{
	if (e == cudaSuccess)
		return 0;
	return shmrt_fail(EIO, "cuda %s of %zu bytes: %s", what, bytes, cudaGetErrorString(e));
}

/* The interface lets the caller reuse src at once. From pageable memory
 * cudaMemcpyAsync returns once src has been staged; from page-locked
 * memory it returns at once, so that case waits for the copy (CUDA
 * Runtime API, "API synchronization behavior"). */
static int cuda_copy_to_device(void *stream, void *dst, const void *src, size_t bytes)
{
	cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)stream);
	if (e != cudaSuccess)
		return copy_status(e, "copy to device", bytes);
	struct cudaPointerAttributes at;
	if (cudaPointerGetAttributes(&at, src) != cudaSuccess) {
		cudaGetLastError(); /* an unknown pointer is pageable memory */
		return 0;
	}
	if (at.type == cudaMemoryTypeHost || at.type == cudaMemoryTypeManaged)
		return copy_status(cudaStreamSynchronize((cudaStream_t)stream), "copy to device", bytes);
	return 0;
}

static int cuda_copy_from_device(void *stream, void *dst, const void *src, size_t bytes)
{
	cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)stream);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize((cudaStream_t)stream);
	return copy_status(e, "copy from device", bytes);
}

static int cuda_copy_2d(void *stream, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
			size_t row_bytes, size_t rows)
{
	if (!rows || !row_bytes)
		return 0;
	cudaError_t e = cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyDefault,
					  (cudaStream_t)stream);
	return e == cudaSuccess ? 0 : copy_status(e, "2-D copy", row_bytes * rows);
}

static int cuda_synchronize(void *stream)
{
	cudaError_t e = cudaStreamSynchronize((cudaStream_t)stream);
	if (e == cudaSuccess)
		return 0;
	return shmrt_fail(EIO, "cuda: a kernel or copy on this stream failed: %s", cudaGetErrorString(e));
}

static const struct shmrt_backend cuda_table = {
	.name = "cuda",
	.device = SHMRT_DEVICE_CUDA,
	.host_memory = false,
	.alloc = cuda_alloc,
	.free = cuda_free,
	.copy_to_device = cuda_copy_to_device,
	.copy_from_device = cuda_copy_from_device,
	.copy_2d = cuda_copy_2d,
	.synchronize = cuda_synchronize,
	.matmul = shmrt_cuda_matmul,
	.kv_write = shmrt_cuda_kv_write,
	.attention = shmrt_cuda_attention,
	.rmsnorm = shmrt_cuda_rmsnorm,
	.rope = shmrt_cuda_rope,
	.swiglu = shmrt_cuda_swiglu,
	.add = shmrt_cuda_add,
	.embedding = shmrt_cuda_embedding,
	.sample = shmrt_cuda_sample,
};

/* ---- the probe: a device, new enough, and kernels built for it ---- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_err;
static char probe_msg[256];

static void probe(void)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0) {
		cudaGetLastError();
		probe_err = ENODEV;
		snprintf(probe_msg, sizeof(probe_msg), "backend 'cuda': no usable GPU (%s)",
			 e != cudaSuccess ? cudaGetErrorString(e) : "no device");
		return;
	}
	int major = 0, minor = 0;
	cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
	cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
	if (major < 8) {
		probe_err = ENODEV;
		snprintf(probe_msg, sizeof(probe_msg), "backend 'cuda': GPU 0 is sm_%d%d; the kernels need sm_80 or newer",
			 major, minor);
		return;
	}
	if ((e = shmrt_cuda_probe_kernels()) != cudaSuccess) {
		cudaGetLastError();
		probe_err = ENODEV;
		snprintf(probe_msg, sizeof(probe_msg),
			 "backend 'cuda': GPU 0 (sm_%d%d) cannot run this build's kernels (built for %s): %s; "
			 "rebuild with -Dgpu_archs=%d%d",
			 major, minor, SHMRT_CUDA_ARCHS, cudaGetErrorString(e), major, minor);
	}
}

int shmrt_backend_cuda_open(const struct shmrt_backend **out)
{
	pthread_once(&probe_once, probe);
	if (probe_err)
		return shmrt_fail(probe_err, "%s", probe_msg);
	*out = &cuda_table;
	return 0;
}
