/* Internal: reading llama.cpp's block formats (runtime/core/quant_blocks.h)
 * inside CUDA kernels, 8 elements at a time.
 *
 * Every format is read in units of 32 elements: a whole Q8_0 / Q4_0 / Q4_1
 * block, or one of the 8 units of a 256-element K-quant super-block (a
 * 32-element sub-block of Q4_K / Q5_K, two 16-element sub-blocks of
 * Q6_K). deq8<DT>(row, g, q, v) writes elements 32 g + 8 q .. + 7 of a row
 * (q in 0..3) into v, so four consecutive threads read one unit and a warp
 * reads eight consecutive units: the same split of a block among threads
 * as ggml-cuda's dequantize / mmvq kernels (dequantize.cuh, vecdotq.cuh),
 * written here from quant_blocks.h's layouts.
 *
 * The values are those of quant_blocks.h's reference dequantization, bit
 * for bit: the products and sums are rounded one at a time (__fmul_rn,
 * __fadd_rn) where nvcc would otherwise fuse them into an fma.
 *
 * Loads are as wide as the format's alignment allows: a row of Q8_0, Q4_0
 * or Q6_K is only 2-byte aligned (34-, 18-, 210-byte blocks), Q4_1 4-byte,
 * Q4_K and Q5_K 16-byte (144- and 176-byte blocks); quant_row_align() is
 * what the first row's start must be aligned to. */
#ifndef SHMRT_CUDA_QUANT_CUH
#define SHMRT_CUDA_QUANT_CUH

#include "cuda_common.cuh"
#include "quant_blocks.h"

/* Byte alignment deq8<dt> needs of a row's start (and of every row: row
 * lengths are whole blocks, which keep it); 0 for a plain dtype. */
static inline unsigned quant_row_align(enum shmrt_dtype dt)
{
	switch (dt) {
	case SHMRT_Q8_0:
	case SHMRT_Q4_0:
	case SHMRT_Q6_K:
		return 2;
	case SHMRT_Q4_1:
		return 4;
	case SHMRT_Q4_K:
	case SHMRT_Q5_K:
		return 16;
	default:
		return 0;
	}
}

__device__ __forceinline__ float quant_f16(uint16_t h)
{
	return __half2float(__ushort_as_half(h));
}

/* 8 bytes from a 2-byte aligned address, as two little-endian words. */
__device__ __forceinline__ uint2 quant_ld8_a2(const uint8_t *p)
{
	const uint16_t *h = (const uint16_t *)p;
	uint2 r;
	r.x = (uint32_t)h[0] | (uint32_t)h[1] << 16;
	r.y = (uint32_t)h[2] | (uint32_t)h[3] << 16;
	return r;
}

__device__ __forceinline__ uint2 quant_ld8_a4(const uint8_t *p)
{
	const uint32_t *w = (const uint32_t *)p;
	return make_uint2(w[0], w[1]);
}

__device__ __forceinline__ uint2 quant_ld8_a8(const uint8_t *p)
{
	return *(const uint2 *)p;
}

/* Byte i (0..7) of 8 bytes held as two words. */
__device__ __forceinline__ uint32_t quant_byte(uint2 b, int i)
{
	return ((i < 4 ? b.x : b.y) >> (8 * (i & 3))) & 0xFFu;
}

template <enum shmrt_dtype DT> __device__ __forceinline__ void deq8(const uint8_t *row, int g, int q, float v[8]);

/* Q8_0: block g, x = d * q. */
template <> __device__ __forceinline__ void deq8<SHMRT_Q8_0>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)g * sizeof(struct shmrt_block_q8_0);
	float d = quant_f16(*(const uint16_t *)b);
	uint2 qs = quant_ld8_a2(b + 2 + 8 * q);
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = __fmul_rn(d, (float)(int8_t)quant_byte(qs, i));
}

/* Q4_0: elements 0..15 are the low nibbles of qs[0..15], 16..31 the high
 * ones; x = d * (q - 8). */
template <> __device__ __forceinline__ void deq8<SHMRT_Q4_0>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)g * sizeof(struct shmrt_block_q4_0);
	float d = quant_f16(*(const uint16_t *)b);
	uint2 qs = quant_ld8_a2(b + 2 + 8 * (q & 1));
	int shift = q >= 2 ? 4 : 0;
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = __fmul_rn(d, (float)((int)((quant_byte(qs, i) >> shift) & 0xF) - 8));
}

/* Q4_1: as Q4_0 with x = d * q + m. */
template <> __device__ __forceinline__ void deq8<SHMRT_Q4_1>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)g * sizeof(struct shmrt_block_q4_1);
	uint32_t dm = *(const uint32_t *)b;
	float d = quant_f16((uint16_t)dm), m = quant_f16((uint16_t)(dm >> 16));
	uint2 qs = quant_ld8_a4(b + 4 + 8 * (q & 1));
	int shift = q >= 2 ? 4 : 0;
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = __fadd_rn(__fmul_rn(d, (float)((quant_byte(qs, i) >> shift) & 0xF)), m);
}

/* Scale and min of sub-block u of a Q4_K / Q5_K super-block whose first
 * 16 bytes (d, dmin, scales[12]) are h: d * sc and dmin * m. */
__device__ __forceinline__ void quant_k4_scale(const uint8_t *h, int u, float *dsc, float *dmn)
{
	uint4 w = *(const uint4 *)h;
	uint8_t s[12];
#pragma unroll
	for (int i = 0; i < 4; i++) {
		s[i] = (uint8_t)(w.y >> (8 * i));
		s[4 + i] = (uint8_t)(w.z >> (8 * i));
		s[8 + i] = (uint8_t)(w.w >> (8 * i));
	}
	int sc, m;
	shmrt_q4k_scale_min(u, s, &sc, &m);
	*dsc = __fmul_rn(quant_f16((uint16_t)w.x), (float)sc);
	*dmn = __fmul_rn(quant_f16((uint16_t)(w.x >> 16)), (float)m);
}

/* Q4_K: unit u = g % 8 of super-block g / 8 is sub-block u: the low (u
 * even) or high nibbles of qs[32 (u / 2) ..]; x = d sc q - dmin m. */
template <> __device__ __forceinline__ void deq8<SHMRT_Q4_K>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)(g >> 3) * sizeof(struct shmrt_block_q4_k);
	int u = g & 7;
	float dsc, dmn;
	quant_k4_scale(b, u, &dsc, &dmn);
	uint2 qs = quant_ld8_a8(b + 16 + 32 * (u >> 1) + 8 * q);
	int shift = (u & 1) * 4;
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = __fsub_rn(__fmul_rn(dsc, (float)((quant_byte(qs, i) >> shift) & 0xF)), dmn);
}

/* Q5_K: as Q4_K with bit u of qh[l] the fifth bit of element l. */
template <> __device__ __forceinline__ void deq8<SHMRT_Q5_K>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)(g >> 3) * sizeof(struct shmrt_block_q5_k);
	int u = g & 7;
	float dsc, dmn;
	quant_k4_scale(b, u, &dsc, &dmn);
	uint2 qh = quant_ld8_a8(b + 16 + 8 * q);
	uint2 qs = quant_ld8_a8(b + 48 + 32 * (u >> 1) + 8 * q);
	int shift = (u & 1) * 4;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		uint32_t x = ((quant_byte(qs, i) >> shift) & 0xF) | (((quant_byte(qh, i) >> u) & 1) << 4);
		v[i] = __fsub_rn(__fmul_rn(dsc, (float)x), dmn);
	}
}

/* Q6_K: unit u = g % 8 is the quarter t = u % 4 of the half h = u / 4 of
 * the super-block: element l (0..31) takes the low (t < 2) or high nibble
 * of ql[64 h + 32 (t & 1) + l] and bits 2t, 2t+1 of qh[32 h + l], with the
 * scale scales[8 h + l / 16 + 2 t]; x = d * scale * (q - 32). */
template <> __device__ __forceinline__ void deq8<SHMRT_Q6_K>(const uint8_t *row, int g, int q, float v[8])
{
	const uint8_t *b = row + (int64_t)(g >> 3) * sizeof(struct shmrt_block_q6_k);
	int u = g & 7, h = u >> 2, t = u & 3, l0 = 8 * q;
	float d = quant_f16(*(const uint16_t *)(b + offsetof(struct shmrt_block_q6_k, d)));
	int8_t sc = (int8_t)b[offsetof(struct shmrt_block_q6_k, scales) + 8 * h + (l0 >> 4) + 2 * t];
	float ds = __fmul_rn(d, (float)sc);
	uint2 ql = quant_ld8_a2(b + 64 * h + 32 * (t & 1) + l0);
	uint2 qh = quant_ld8_a2(b + offsetof(struct shmrt_block_q6_k, qh) + 32 * h + l0);
	int shift = t >= 2 ? 4 : 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		int x = (int)(((quant_byte(ql, i) >> shift) & 0xF) | (((quant_byte(qh, i) >> (2 * t)) & 3) << 4)) - 32;
		v[i] = __fmul_rn(ds, (float)x);
	}
}

#endif
