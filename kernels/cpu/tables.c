/* The two CPU backend tables and their "device" memory, which is plain
 * host memory: 64-byte aligned (a cache line, an AVX-512 register). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends.h"
#include "cpu_kernels.h"
#include "fail.h"

static int host_alloc(void **ptr, size_t bytes)
{
	size_t rounded = (bytes + 63) & ~(size_t)63;
	*ptr = aligned_alloc(64, rounded ? rounded : 64);
	if (!*ptr)
		return shmrt_fail(ENOMEM, "cannot allocate %zu bytes", bytes);
	return 0;
}

static int host_copy(void *stream, void *dst, const void *src, size_t bytes)
{
	(void)stream;
	if (bytes)
		memmove(dst, src, bytes);
	return 0;
}

static int host_copy_2d(void *stream, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
			size_t row_bytes, size_t rows)
{
	(void)stream;
	for (size_t i = 0; i < rows; i++)
		memmove((char *)dst + i * dst_pitch, (const char *)src + i * src_pitch, row_bytes);
	return 0;
}

static int host_synchronize(void *stream)
{
	(void)stream;
	return 0;
}

const struct shmrt_backend shmrt_backend_cpu_ref = {
	.name = "cpu-ref",
	.device = SHMRT_DEVICE_CPU,
	.host_memory = true,
	.alloc = host_alloc,
	.free = free,
	.copy_to_device = host_copy,
	.copy_from_device = host_copy,
	.copy_2d = host_copy_2d,
	.synchronize = host_synchronize,
	.matmul = shmrt_ref_matmul,
	.kv_write = shmrt_ref_kv_write,
	.attention = shmrt_ref_attention,
	.rmsnorm = shmrt_ref_rmsnorm,
	.rope = shmrt_ref_rope,
	.swiglu = shmrt_ref_swiglu,
	.add = shmrt_ref_add,
	.embedding = shmrt_ref_embedding,
	.sample = shmrt_ref_sample,
};

const struct shmrt_backend shmrt_backend_cpu = {
	.name = "cpu",
	.device = SHMRT_DEVICE_CPU,
	.host_memory = true,
	.alloc = host_alloc,
	.free = free,
	.copy_to_device = host_copy,
	.copy_from_device = host_copy,
	.copy_2d = host_copy_2d,
	.synchronize = host_synchronize,
	.matmul = shmrt_cpu_matmul,
	.kv_write = shmrt_cpu_kv_write,
	.attention = shmrt_cpu_attention,
	.rmsnorm = shmrt_cpu_rmsnorm,
	.rope = shmrt_cpu_rope,
	.swiglu = shmrt_cpu_swiglu,
	.add = shmrt_cpu_add,
	.embedding = shmrt_cpu_embedding,
	.sample = shmrt_cpu_sample,
};
