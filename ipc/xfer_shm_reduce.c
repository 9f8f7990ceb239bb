/* The shm transport's sum: W sources, element by element, in rank order.
 * Tiles of TILE elements are summed into an fp32 accumulator that stays in
 * L1, one source at a time, so that the loops are plain and vectorise, and
 * each source streams through once. */
#include <string.h>

#include "dtype_conv.h"
#include "xfer_shm.h"

#define TILE 1024

static void load_tile(float *acc, const void *src, size_t i, size_t n, enum shmrt_dtype dt)
{
	if (dt == SHMRT_F32) {
		memcpy(acc, (const float *)src + i, n * sizeof(float));
		return;
	}
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
	if (dt == SHMRT_F32) {
		const float *restrict s = (const float *)src + i;
		for (size_t j = 0; j < n; j++)
			acc[j] += s[j];
		return;
	}
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
	if (dt == SHMRT_F32) {
		memcpy((float *)dst + i, acc, n * sizeof(float));
		return;
	}
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
