/* Internal: llama.cpp's quantized block formats (GGUF's Q8_0, Q4_0, Q4_1,
 * Q4_K, Q5_K, Q6_K), their byte layouts and the reference dequantization
 * of one block into fp32: the one definition the CPU kernels, the CUDA
 * kernels (hostdev.h) and the quantizer share.
 *
 * Layouts and formulas from ggml's ggml-common.h (block_q8_0 ... block_q6_K)
 * and ggml-quants.c (dequantize_row_*, get_scale_min_k4); the tests check
 * this file against the `gguf` Python package's own dequantization, an
 * independent implementation. All scales are IEEE fp16, little-endian. */
#ifndef SHMRT_QUANT_BLOCKS_H
#define SHMRT_QUANT_BLOCKS_H

#include <stdint.h>

#include "dtype_conv.h"
#include "hostdev.h"
#include "shmrt/dtype.h"

#define SHMRT_QK 32   /* elements of a Q8_0 / Q4_0 / Q4_1 block */
#define SHMRT_QK_K 256 /* elements of a K-quant super-block */

struct shmrt_block_q8_0 {
	uint16_t d;       /* scale: x = d * q */
	int8_t qs[SHMRT_QK];
};

/* Element j < 16 is the low nibble of qs[j], element j + 16 its high one. */
struct shmrt_block_q4_0 {
	uint16_t d; /* x = d * (q - 8) */
	uint8_t qs[SHMRT_QK / 2];
};

struct shmrt_block_q4_1 {
	uint16_t d, m; /* x = d * q + m */
	uint8_t qs[SHMRT_QK / 2];
};

/* 8 sub-blocks of 32; each has a 6-bit scale and a 6-bit min packed into
 * scales[12] (shmrt_q4k_scale_min); x = d * sc * q - dmin * m. The 64
 * elements of sub-blocks 2j and 2j+1 share qs[32 j .. 32 j + 31]: low
 * nibbles are sub-block 2j, high nibbles 2j+1. */
struct shmrt_block_q4_k {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qs[SHMRT_QK_K / 2];
};

/* As Q4_K, with a fifth bit per element in qh: bit 2j of qh[l] for element
 * l of sub-block 2j, bit 2j+1 for element l of sub-block 2j+1. */
struct shmrt_block_q5_k {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qh[SHMRT_QK_K / 8];
	uint8_t qs[SHMRT_QK_K / 2];
};

/* 16 sub-blocks of 16 with int8 scales; 6-bit values q - 32, their low 4
 * bits in ql, high 2 in qh; x = d * scale * (q - 32). */
struct shmrt_block_q6_k {
	uint8_t ql[SHMRT_QK_K / 2];
	uint8_t qh[SHMRT_QK_K / 4];
	int8_t scales[SHMRT_QK_K / 16];
	uint16_t d;
};

/* Scale and min of sub-block j (0..7) of a Q4_K / Q5_K block. */
static SHMRT_HD void shmrt_q4k_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

static SHMRT_HD void shmrt_dequant_q8_0(const struct shmrt_block_q8_0 *b, float *y)
{
	float d = shmrt_f16_to_f32(b->d);
	for (int j = 0; j < SHMRT_QK; j++)
		y[j] = d * (float)b->qs[j];
}

static SHMRT_HD void shmrt_dequant_q4_0(const struct shmrt_block_q4_0 *b, float *y)
{
	float d = shmrt_f16_to_f32(b->d);
	for (int j = 0; j < SHMRT_QK / 2; j++) {
		y[j] = d * (float)((b->qs[j] & 0xF) - 8);
		y[j + SHMRT_QK / 2] = d * (float)((b->qs[j] >> 4) - 8);
	}
}

static SHMRT_HD void shmrt_dequant_q4_1(const struct shmrt_block_q4_1 *b, float *y)
{
	float d = shmrt_f16_to_f32(b->d), m = shmrt_f16_to_f32(b->m);
	for (int j = 0; j < SHMRT_QK / 2; j++) {
		y[j] = d * (float)(b->qs[j] & 0xF) + m;
		y[j + SHMRT_QK / 2] = d * (float)(b->qs[j] >> 4) + m;
	}
}

/* Q4_K and Q5_K alike: qh holds Q5_K's fifth bits, NULL for Q4_K. */
static SHMRT_HD void shmrt_dequant_k45(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *q,
				       const uint8_t *qh, float *y)
{
	float d = shmrt_f16_to_f32(d16), dmin = shmrt_f16_to_f32(dmin16);
	for (int j = 0; j < 4; j++, q += 32, y += 64) {
		int sc0, m0, sc1, m1;
		shmrt_q4k_scale_min(2 * j, scales, &sc0, &m0);
		shmrt_q4k_scale_min(2 * j + 1, scales, &sc1, &m1);
		float d0 = d * (float)sc0, n0 = dmin * (float)m0, d1 = d * (float)sc1, n1 = dmin * (float)m1;
		uint8_t u0 = (uint8_t)(1u << (2 * j)), u1 = (uint8_t)(2u << (2 * j));
		for (int l = 0; l < 32; l++) {
			int h0 = qh && (qh[l] & u0) ? 16 : 0, h1 = qh && (qh[l] & u1) ? 16 : 0;
			y[l] = d0 * (float)((q[l] & 0xF) + h0) - n0;
			y[l + 32] = d1 * (float)((q[l] >> 4) + h1) - n1;
		}
	}
}

static SHMRT_HD void shmrt_dequant_q4_k(const struct shmrt_block_q4_k *b, float *y)
{
	shmrt_dequant_k45(b->d, b->dmin, b->scales, b->qs, NULL, y);
}

static SHMRT_HD void shmrt_dequant_q5_k(const struct shmrt_block_q5_k *b, float *y)
{
	shmrt_dequant_k45(b->d, b->dmin, b->scales, b->qs, b->qh, y);
}

static SHMRT_HD void shmrt_dequant_q6_k(const struct shmrt_block_q6_k *b, float *y)
{
	float d = shmrt_f16_to_f32(b->d);
	const uint8_t *ql = b->ql, *qh = b->qh;
	const int8_t *sc = b->scales;
	for (int n = 0; n < SHMRT_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
		for (int l = 0; l < 32; l++) {
			int is = l / 16;
			int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
			int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
			int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
			int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
			y[l] = d * (float)sc[is] * (float)q1;
			y[l + 32] = d * (float)sc[is + 2] * (float)q2;
			y[l + 64] = d * (float)sc[is + 4] * (float)q3;
			y[l + 96] = d * (float)sc[is + 6] * (float)q4;
		}
}

/* Block i of a row of dtype dt (a block format) into y[block elements]. */
static SHMRT_HD void shmrt_dequant_block(const void *row, enum shmrt_dtype dt, int64_t i, float *y)
{
	switch (dt) {
	case SHMRT_Q8_0:
		shmrt_dequant_q8_0((const struct shmrt_block_q8_0 *)row + i, y);
		break;
	case SHMRT_Q4_0:
		shmrt_dequant_q4_0((const struct shmrt_block_q4_0 *)row + i, y);
		break;
	case SHMRT_Q4_1:
		shmrt_dequant_q4_1((const struct shmrt_block_q4_1 *)row + i, y);
		break;
	case SHMRT_Q4_K:
		shmrt_dequant_q4_k((const struct shmrt_block_q4_k *)row + i, y);
		break;
	case SHMRT_Q5_K:
		shmrt_dequant_q5_k((const struct shmrt_block_q5_k *)row + i, y);
		break;
	case SHMRT_Q6_K:
		shmrt_dequant_q6_k((const struct shmrt_block_q6_k *)row + i, y);
		break;
	default:
		break;
	}
}

/* n elements (a whole number of blocks) of a row into y. */
static SHMRT_HD void shmrt_dequant_row(const void *row, enum shmrt_dtype dt, int64_t n, float *y)
{
	int64_t bs = dt == SHMRT_Q8_0 || dt == SHMRT_Q4_0 || dt == SHMRT_Q4_1 ? SHMRT_QK : SHMRT_QK_K;
	for (int64_t i = 0; i < n / bs; i++)
		shmrt_dequant_block(row, dt, i, y + i * bs);
}

#endif
