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

#define TABLE(prefix, label)                                                                      \
	{                                                                                         \
		.name = label, .alloc = host_alloc, .free = free, .copy_to_device = host_copy,    \
		.copy_from_device = host_copy, .copy_2d = host_copy_2d,                           \
		.synchronize = host_synchronize,                                                  \
		.matmul = prefix##matmul, .kv_write = prefix##kv_write,                           \
		.attention = prefix##attention, .rmsnorm = prefix##rmsnorm, .rope = prefix##rope, \
		.swiglu = prefix##swiglu, .add = prefix##add, .embedding = prefix##embedding,     \
		.sample = prefix##sample,                                                         \
	}

const struct shmrt_backend shmrt_backend_cpu_ref = TABLE(shmrt_ref_, "cpu-ref");
const struct shmrt_backend shmrt_backend_cpu = TABLE(shmrt_cpu_, "cpu");
