/* Internal: SIMD helpers for the fast CPU kernels, written with GCC/clang
 * vector extensions so one source serves every x86 level: a v16f is one
 * AVX-512 register, two AVX2 registers or four SSE registers, whatever the
 * function's target. kernels/cpu is built with -Wno-psabi: these vectors
 * never cross a call (VEC_INLINE, and the callers' own tile helpers). */
#ifndef SHMRT_VEC_H
#define SHMRT_VEC_H

#include <stdint.h>
#include <string.h>

/* Always inlined: a vector passed by value to a function compiled for
 * another target level would change ABI under our feet. */
#define VEC_INLINE static inline __attribute__((always_inline))

typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef uint16_t v4h __attribute__((vector_size(8)));
typedef uint16_t v8h __attribute__((vector_size(16)));
typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

/* Unaligned loads and stores (memcpy compiles to one move). */
#define VLOAD(type, p) ({ type v_; memcpy(&v_, (p), sizeof(v_)); v_; })
#define VSTORE(p, v) ({ __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof(v_)); })

VEC_INLINE v16f v16_splat(float x)
{
	return (v16f){0} + x;
}

VEC_INLINE float v16_sum(v16f v)
{
	v8f h = (v8f){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]} +
		(v8f){v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
	v4f q = (v4f){h[0], h[1], h[2], h[3]} + (v4f){h[4], h[5], h[6], h[7]};
	return (q[0] + q[2]) + (q[1] + q[3]);
}

VEC_INLINE float v16_max(v16f v)
{
	float m = v[0];
	for (int i = 1; i < 16; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* 16 bf16 values as fp32: the bf16 bits are the high half of the fp32. */
VEC_INLINE v16f v16_load_bf16(const uint16_t *p)
{
	return (v16f)(__builtin_convertvector(VLOAD(v16h, p), v16u) << 16);
}

/* a where mask is all ones, b where it is zero (a vector ?:, which C lacks). */
VEC_INLINE v16f v16_select(v16i mask, v16f a, v16f b)
{
	return (v16f)(((v16u)a & (v16u)mask) | ((v16u)b & ~(v16u)mask));
}

/* e^x, about 2 ulp, for x <= 88; below -87.3 the result is 0. Range
 * reduction x = n ln2 + r with ln2 split in two (Cody-Waite), then Cephes'
 * expf polynomial on |r| <= ln2/2, and 2^n put into the exponent bits. */
VEC_INLINE v16f v16_exp(v16f x)
{
	const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
	v16i keep = x > -87.33f;
	x = v16_select(x < 88.0f, x, v16_splat(88.0f));
	v16f t = x * 1.44269504088896341f + magic;
	v16f n = t - magic;
	v16f r = x - n * 0.693359375f + n * 2.12194440e-4f;
	v16f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	v16u scale = ((v16u)t << 23) + 0x3f800000u; /* t's low mantissa bits hold n */
	return (v16f)((v16u)(p * (v16f)scale) & (v16u)keep);
}

#endif
