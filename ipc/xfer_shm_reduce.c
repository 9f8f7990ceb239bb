/* The shm transport's sum: W sources, element by element, in rank order.
 * fp32: 16 elements at a time in four SSE vectors (x86-64's baseline; the
 * sum is bound by memory, not arithmetic), every source read in turn for
 * them, stored once: each source and each output streams through once.
 * bf16/f16: tiles of TILE elements summed into an fp32 accumulator that
 * stays in L1, one source at a time, so that the conversion loops are
 * plain and vectorise. */
#include <string.h>

#include "dtype_conv.h"
#include "xfer_shm.h"

#define TILE 1024

typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
	v4f v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store4(float *p, v4f v)
{
	memcpy(p, &v, sizeof(v));
}

/* Loads of a group come before its stores: dst may be a source. */
static void reduce_f32(float *dst, float *dst2, const float *const *src, int n_src, size_t n)
{
	size_t j = 0;
	for (; j + 16 <= n; j += 16) {
		const float *s = src[0] + j;
		v4f x0 = load4(s), x1 = load4(s + 4), x2 = load4(s + 8), x3 = load4(s + 12);
		for (int q = 1; q < n_src; q++) {
			s = src[q] + j;
			x0 += load4(s);
			x1 += load4(s + 4);
			x2 += load4(s + 8);
			x3 += load4(s + 12);
		}
		store4(dst + j, x0);
		store4(dst + j + 4, x1);
		store4(dst + j + 8, x2);
		store4(dst + j + 12, x3);
		if (dst2) {
			store4(dst2 + j, x0);
			store4(dst2 + j + 4, x1);
			store4(dst2 + j + 8, x2);
			store4(dst2 + j + 12, x3);
		}
	}
	for (; j < n; j++) {
		float x = src[0][j];
		for (int q = 1; q < n_src; q++)
			x += src[q][j];
		dst[j] = x;
		if (dst2)
			dst2[j] = x;
	}
}

static void load_tile(float *acc, const void *src, size_t i, size_t n, enum shmrt_dtype dt)
{
	const uint16_t *s = (const uint16_t *)src + i;
	if (dt == SHMRT_BF16)
		for (size_t j = 0; j < n; j++)
			acc[j] = shmrt_bf16_to_f32(s[j]);
	else
		for (size_t j = 0; j < n; j++)
			acc[j] = shmrt_f16_to_f32(s[j]);
}

static void add_tile(float *restrict acc, const void *src, size_t i, size_t n, enum shmrt_dtype dt)
{
	const uint16_t *restrict s = (const uint16_t *)src + i;
	if (dt == SHMRT_BF16)
		for (size_t j = 0; j < n; j++)
			acc[j] += shmrt_bf16_to_f32(s[j]);
	else
		for (size_t j = 0; j < n; j++)
			acc[j] += shmrt_f16_to_f32(s[j]);
}

static void store_tile(void *dst, size_t i, const float *acc, size_t n, enum shmrt_dtype dt)
{
	uint16_t *d = (uint16_t *)dst + i;
	if (dt == SHMRT_BF16)
		for (size_t j = 0; j < n; j++)
			d[j] = shmrt_f32_to_bf16(acc[j]);
	else
		for (size_t j = 0; j < n; j++)
			d[j] = shmrt_f32_to_f16(acc[j]);
}

void xfer_reduce(void *dst, void *dst2, const void *const *src, int n_src, size_t n, enum shmrt_dtype dtype)
{
	if (dtype == SHMRT_F32) {
		reduce_f32(dst, dst2, (const float *const *)src, n_src, n);
		return;
	}
	float acc[TILE];
	for (size_t i = 0; i < n; i += TILE) {
		size_t m = n - i < TILE ? n - i : TILE;
		load_tile(acc, src[0], i, m, dtype);
		for (int q = 1; q < n_src; q++)
			add_tile(acc, src[q], i, m, dtype);
		/* After every source is read: dst may be one of them. */
		store_tile(dst, i, acc, m, dtype);
		if (dst2)
			store_tile(dst2, i, acc, m, dtype);
	}
}
