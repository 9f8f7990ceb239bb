/* Internal: bf16 and fp16 <-> fp32 conversions, the one place they live.
 * Usable from C and from CUDA device code (hostdev.h). Storage is uint16_t.
 * Narrowing rounds to nearest, ties to even (as PyTorch, CUDA's __float2bfloat16
 * and F16C's _MM_FROUND_TO_NEAREST_INT do); NaN stays NaN. */
#ifndef SHMRT_DTYPE_CONV_H
#define SHMRT_DTYPE_CONV_H

#include <stdint.h>
#include <string.h>

#include "hostdev.h"
#include "shmrt/backend.h"

static SHMRT_HD float shmrt_f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static SHMRT_HD uint32_t shmrt_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static SHMRT_HD float shmrt_bf16_to_f32(uint16_t h)
{
	return shmrt_f32_from_bits((uint32_t)h << 16);
}

static SHMRT_HD uint16_t shmrt_f32_to_bf16(float f)
{
	uint32_t u = shmrt_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40); /* quiet NaN, sign kept */
	u += 0x7fffu + ((u >> 16) & 1);           /* round half to even */
	return (uint16_t)(u >> 16);
}

static SHMRT_HD float shmrt_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	if (exp == 0x1f) /* inf, NaN */
		return shmrt_f32_from_bits(sign | 0x7f800000u | (mant << 13));
	if (exp == 0) { /* zero, subnormal: mant * 2^-24, exact in fp32 */
		float f = (float)mant * 0x1p-24f;
		return sign ? -f : f;
	}
	return shmrt_f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

/* After Fabian Giesen's float_to_half_fast3_rtne (public domain). */
static SHMRT_HD uint16_t shmrt_f32_to_f16(float f)
{
	uint32_t u = shmrt_f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	u &= 0x7fffffffu;
	if (u > 0x7f800000u)
		return sign | 0x7e00; /* NaN */
	if (u >= 0x477ff000u)
		return sign | 0x7c00; /* >= 65520 rounds to inf */
	if (u < 0x38800000u) {
		/* Below 2^-14: the result is subnormal. Adding 0.5 lines the
		 * mantissa up with fp16's 2^-24 step; the FPU rounds. */
		float g = shmrt_f32_from_bits(u) + 0.5f;
		return sign | (uint16_t)(shmrt_f32_bits(g) - 0x3f000000u);
	}
	u += ((uint32_t)(15 - 127) << 23) + 0xfffu + ((u >> 13) & 1);
	return sign | (uint16_t)(u >> 13);
}

/* Element i of an array of any dtype, as fp32: the slow, obvious accessor
 * the reference kernels use. */
static SHMRT_HD float shmrt_load(const void *p, enum shmrt_dtype dt, int64_t i)
{
	switch (dt) {
	case SHMRT_BF16:
		return shmrt_bf16_to_f32(((const uint16_t *)p)[i]);
	case SHMRT_F16:
		return shmrt_f16_to_f32(((const uint16_t *)p)[i]);
	default:
		return ((const float *)p)[i];
	}
}

/* Stores v into element i, rounding to the dtype. */
static SHMRT_HD void shmrt_store(void *p, enum shmrt_dtype dt, int64_t i, float v)
{
	switch (dt) {
	case SHMRT_BF16:
		((uint16_t *)p)[i] = shmrt_f32_to_bf16(v);
		break;
	case SHMRT_F16:
		((uint16_t *)p)[i] = shmrt_f32_to_f16(v);
		break;
	default:
		((float *)p)[i] = v;
	}
}

#endif
