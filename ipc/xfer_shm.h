/* Internal: the shm transport's state and its copies between the caller's
 * buffers and the staging (memcpy for host buffers, xfer_shm_cuda.c for
 * device ones). */
#ifndef SHMRT_XFER_SHM_H
#define SHMRT_XFER_SHM_H

#include <errno.h>
#include <string.h>

#include "shmrt_config.h"
#include "fail.h"
#include "xfer_layout.h"

struct shm_cuda; /* xfer_shm_cuda.c */

struct shm_state {
	struct xfer_region r;
	uint32_t in_step, out_step, barrier_step; /* next steps, the same on every rank */
	int device;                               /* -1: host buffers */
	struct shm_cuda *cuda;
	unsigned char *bounce; /* device buffers: pinned, world * chunk bytes, private */
};

/* One call's arguments. */
struct shm_op {
	const unsigned char *send;
	unsigned char *recv;
	size_t count, es;
	enum shmrt_dtype dtype;
	void *stream;
	uint32_t in0, out0; /* the call's first in-step and out-step */
	/* Two-step all-reduce: send/recv in this rank's shared buffer, and
	 * where the peers' are (NULL: in their slots), known from the first
	 * reduce on. */
	bool zc_in, zc_out, resolved;
	const unsigned char *peer_in[SHMRT_XFER_MAX_WORLD], *peer_out[SHMRT_XFER_MAX_WORLD];
};

/* dst[i] = src[0][i] + src[1][i] + ... + src[n_src - 1][i], in that order,
 * for i < n elements (bf16, f16: summed in fp32, rounded once); also into
 * dst2 unless NULL. dst may be one of the sources. */
void xfer_reduce(void *dst, void *dst2, const void *const *src, int n_src, size_t n, enum shmrt_dtype dtype);

#if SHMRT_HAVE_CUDA
int shm_cuda_init(struct shm_state *st, const struct shmrt_xfer_config *cfg);
void shm_cuda_destroy(struct shm_state *st);
int shm_cuda_copy(struct shm_state *st, void *dst, const void *src, size_t n, int kind, void *stream);
int shm_cuda_sync(struct shm_state *st, void *stream);
int shm_cuda_own_slice(struct shm_state *st, const void **src, const void *dev, size_t n, void *stream);
/* cudaMemcpyKind's values, without its header here. */
enum { SHM_D2H = 2, SHM_H2D = 1, SHM_D2D = 3 };
#else
static inline int shm_cuda_init(struct shm_state *st, const struct shmrt_xfer_config *cfg)
{
	(void)st;
	return shmrt_fail(ENOTSUP, "xfer shm: device %d: shmrt was built without CUDA", cfg->device);
}
static inline void shm_cuda_destroy(struct shm_state *st)
{
	(void)st;
}
/* Never reached: no state has a device without CUDA. */
static inline int shm_cuda_copy(struct shm_state *st, void *dst, const void *src, size_t n, int kind,
				void *stream)
{
	(void)st, (void)dst, (void)src, (void)n, (void)kind, (void)stream;
	return -ENOTSUP;
}
static inline int shm_cuda_sync(struct shm_state *st, void *stream)
{
	(void)st, (void)stream;
	return -ENOTSUP;
}
static inline int shm_cuda_own_slice(struct shm_state *st, const void **src, const void *dev, size_t n,
				     void *stream)
{
	(void)st, (void)src, (void)dev, (void)n, (void)stream;
	return -ENOTSUP;
}
enum { SHM_D2H = 2, SHM_H2D = 1, SHM_D2D = 3 };
#endif

/* The caller's buffer (src) into the staging (dst). */
static inline int shm_to_host(struct shm_state *st, void *dst, const void *src, size_t n, void *stream)
{
	if (st->device < 0) {
		memcpy(dst, src, n);
		return 0;
	}
	return shm_cuda_copy(st, dst, src, n, SHM_D2H, stream);
}

/* The staging (src) into the caller's buffer (dst). */
static inline int shm_from_host(struct shm_state *st, void *dst, const void *src, size_t n, void *stream)
{
	if (st->device < 0) {
		memcpy(dst, src, n);
		return 0;
	}
	return shm_cuda_copy(st, dst, src, n, SHM_H2D, stream);
}

/* Within the caller's buffers (all-gather's own part). */
static inline int shm_copy_own(struct shm_state *st, void *dst, const void *src, size_t n, void *stream)
{
	if (st->device < 0) {
		memmove(dst, src, n);
		return 0;
	}
	return shm_cuda_copy(st, dst, src, n, SHM_D2D, stream);
}

/* Waits for the copies issued so far (device buffers). */
static inline int shm_flush(struct shm_state *st, void *stream)
{
	return st->device < 0 ? 0 : shm_cuda_sync(st, stream);
}

/* This rank's own slice as host memory for the reduction: the buffer
 * itself, or a device slice copied to the pinned bounce buffer. */
static inline int shm_own_slice(struct shm_state *st, const void **src, const void *buf, size_t n, void *stream)
{
	if (st->device < 0) {
		*src = buf;
		return 0;
	}
	return shm_cuda_own_slice(st, src, buf, n, stream);
}

#endif
