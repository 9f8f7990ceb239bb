/* The shm transport with device buffers: the staging is registered with
 * cudaHostRegister (pinned, so cudaMemcpyAsync runs as DMA), and each
 * chunk crosses PCIe with cudaMemcpyAsync on the caller's stream. Kept
 * small: a stream synchronisation ends each step of a block (before the
 * step's publish, so that peers never read a slot the DMA is still
 * filling, and before done, so that no slot is reused while a copy still
 * reads it), so copies do not overlap the host's work. Compiled with CUDA;
 * it has not been run on a GPU (this project's CI machine has none). */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdlib.h>

#include "fail.h"
#include "xfer_shm.h"

struct shm_cuda {
	void *registered; /* the staging, when this handle registered it */
};

_Static_assert((int)SHM_D2H == (int)cudaMemcpyDeviceToHost && (int)SHM_H2D == (int)cudaMemcpyHostToDevice &&
		       (int)SHM_D2D == (int)cudaMemcpyDeviceToDevice,
	       "xfer_shm.h's copy kinds are cudaMemcpyKind's");

static int cuda_fail(cudaError_t e, const char *what)
{
	cudaGetLastError(); /* clear the non-sticky error */
	return shmrt_fail(EIO, "xfer shm: %s: %s", what, cudaGetErrorString(e));
}

int shm_cuda_init(struct shm_state *st, const struct shmrt_xfer_config *cfg)
{
	cudaError_t e = cudaSetDevice(cfg->device);
	if (e != cudaSuccess)
		return shmrt_fail(ENODEV, "xfer shm: device %d: %s", cfg->device, cudaGetErrorString(e));
	struct shm_cuda *c = calloc(1, sizeof(*c));
	if (!c)
		return shmrt_fail(ENOMEM, "xfer shm: out of memory");
	size_t bytes = (size_t)st->r.world * xfer_staging_per_rank(st->r.world, st->r.chunk);
	e = cudaHostRegister(st->r.staging, bytes, cudaHostRegisterPortable);
	if (e == cudaSuccess)
		c->registered = st->r.staging;
	else if (e != cudaErrorHostMemoryAlreadyRegistered) /* another handle of this process did */
		goto fail;
	else
		cudaGetLastError();
	void *bounce;
	if ((e = cudaMallocHost(&bounce, (size_t)st->r.world * st->r.chunk)) != cudaSuccess)
		goto fail;
	st->bounce = bounce;
	st->cuda = c;
	return 0;
fail:
	if (c->registered)
		cudaHostUnregister(c->registered);
	free(c);
	return cuda_fail(e, "pinning the staging");
}

void shm_cuda_destroy(struct shm_state *st)
{
	struct shm_cuda *c = st->cuda;
	if (!c)
		return;
	cudaFreeHost(st->bounce);
	st->bounce = NULL;
	if (c->registered)
		cudaHostUnregister(c->registered);
	free(c);
	st->cuda = NULL;
}

int shm_cuda_copy(struct shm_state *st, void *dst, const void *src, size_t n, int kind, void *stream)
{
	(void)st;
	cudaError_t e = cudaMemcpyAsync(dst, src, n, (enum cudaMemcpyKind)kind, (cudaStream_t)stream);
	return e == cudaSuccess ? 0 : cuda_fail(e, "cudaMemcpyAsync");
}

int shm_cuda_sync(struct shm_state *st, void *stream)
{
	(void)st;
	cudaError_t e = cudaStreamSynchronize((cudaStream_t)stream);
	return e == cudaSuccess ? 0 : cuda_fail(e, "cudaStreamSynchronize");
}

int shm_cuda_own_slice(struct shm_state *st, const void **src, const void *dev, size_t n, void *stream)
{
	int rc = shm_cuda_copy(st, st->bounce, dev, n, SHM_D2H, stream);
	if (rc == 0)
		rc = shm_cuda_sync(st, stream);
	*src = st->bounce;
	return rc;
}
