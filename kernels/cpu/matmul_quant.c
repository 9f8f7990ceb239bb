/* Fast matmul Y = X W^T (+ bias) with W in a block format (Q8_0, Q4_0,
 * Q4_1, Q4_K, Q5_K, Q6_K), read in place: x f32, y f32.
 *
 * llama.cpp's approach (ggml-cpu's ggml_vec_dot_q*_q8_*): each row of X is
 * quantized once per call to 8-bit blocks of 32 with an fp32 scale and the
 * block's sum (struct qx, ggml's block_q8_1), then every output is a sum
 * over blocks of integer dot products times the two scales, plus the min
 * term of Q4_1 / Q4_K / Q5_K from the block sums. W is never expanded:
 * decode reads 4.5 to 8.5 bits a weight instead of bf16's 16. The int8
 * rounding of X adds an error of at most half a step of each block of X,
 * |x| max / 254, times sum |w| (tests/test_kernels_matmul.c bounds it).
 *
 * Threads split the rows of W (groups of N_GRAIN); each strip of 4 rows of
 * W runs against 4, then 2, then 1 rows of X at a time, so W streams from
 * memory once and is reused from cache for larger m. The dot products are
 * AVX-512 VNNI's vpdpbusd (256 bits wide), AVX2's vpmaddubsw, or plain C
 * (matmul_quant_impl.h).
 *
 * Measured on one core of an AMD EPYC (Zen 4, shared), CPU time, a
 * 4096 x 4096 GEMV with W in memory against a plain read of the same bytes
 * (18-22 GB/s): Q8_0 0.90 ms (19.8 GB/s, the read's speed), Q4_1 0.72 ms
 * (14.5 GB/s), Q4_0 0.78, Q4_K 1.11, Q5_K 1.48, Q6_K 1.59; bf16 W 1.98 ms.
 * The 4-bit formats are bound by issue at about 15 instructions a block
 * and row: 512-bit registers for two blocks at a time did not help (Zen 4
 * splits them in two). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu_kernels.h"
#include "cpu_isa.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "quant_blocks.h"

#define QX_N 32  /* elements of a block of quantized X */
#define QT_MAX 4 /* largest tile side */
#define N_GRAIN 16

/* One block of a row of X: x ~ d * qs, s = d * sum(qs) (ggml's block_q8_1). */
struct qx {
	float d, s;
	int8_t qs[QX_N];
};

struct qjob {
	const struct shmrt_matmul_args *a;
	struct qx *xq; /* [m][k / 32] */
	int64_t row_bytes;
	void (*rows)(const struct qjob *j, int64_t n_begin, int64_t n_end);
	void (*quantize)(const float *x, int64_t k, struct qx *out);
};

/* ggml's quantize_row_q8_1: d = max |x| / 127, q = x / d rounded to the
 * nearest integer (ties to even: adding and subtracting 1.5 * 2^23 rounds
 * |v| < 2^22 so, in plain C without a call to roundf, which cost more
 * than the whole GEMV for small W; NaN and inf in X give garbage, as they
 * would in any case). */
static void quantize_x(const float *x, int64_t k, struct qx *out)
{
	const float magic = 12582912.0f;
	for (int64_t b = 0; b < k / QX_N; b++, x += QX_N) {
		float amax = 0;
		for (int i = 0; i < QX_N; i++) {
			float a = fabsf(x[i]);
			amax = a > amax ? a : amax;
		}
		float d = amax / 127, id = d != 0 ? 1 / d : 0;
		int sum = 0;
		for (int i = 0; i < QX_N; i++) {
			int q = (int)((x[i] * id + magic) - magic); /* ISO C: never reassociated */
			out[b].qs[i] = (int8_t)q;
			sum += q;
		}
		out[b].d = d;
		out[b].s = d * (float)sum;
	}
}

static inline void qstore(const struct qjob *j, int m, int64_t n, float v)
{
	const struct shmrt_matmul_args *a = j->a;
	if (a->bias)
		v += shmrt_load(a->bias, a->bias_dtype, n);
	((float *)a->y)[(int64_t)m * a->n + n] = v;
}

/* ---- generic: plain C, one output at a time ----
 *
 * A group of W as 32 integers q, the scales of its two halves and the
 * offset coefficient: the same decomposition as matmul_quant_impl.h's. */
struct ggrp {
	int8_t q[QX_N];
	float s[2], off;
};

static void ggroup(const char *row, int64_t g, enum shmrt_dtype dt, struct ggrp *r)
{
	r->off = 0;
	if (dt == SHMRT_Q8_0) {
		const struct shmrt_block_q8_0 *b = (const struct shmrt_block_q8_0 *)row + g;
		memcpy(r->q, b->qs, QX_N);
		r->s[0] = r->s[1] = shmrt_f16_to_f32(b->d);
	} else if (dt == SHMRT_Q4_0 || dt == SHMRT_Q4_1) {
		/* Q4_0's and Q4_1's qs are the last 16 bytes of the block */
		const uint8_t *qs = (const uint8_t *)row + (g + 1) * (int64_t)shmrt_dtype_block_bytes(dt) - 16;
		int sub = dt == SHMRT_Q4_0 ? 8 : 0;
		for (int i = 0; i < 16; i++) {
			r->q[i] = (int8_t)((qs[i] & 0xF) - sub);
			r->q[i + 16] = (int8_t)((qs[i] >> 4) - sub);
		}
		uint16_t h[2];
		memcpy(h, row + g * (int64_t)shmrt_dtype_block_bytes(dt), sizeof(h));
		r->s[0] = r->s[1] = shmrt_f16_to_f32(h[0]);
		r->off = dt == SHMRT_Q4_1 ? shmrt_f16_to_f32(h[1]) : 0;
	} else if (dt == SHMRT_Q4_K || dt == SHMRT_Q5_K) {
		int j = (int)(g % 8), sc, m;
		const struct shmrt_block_q4_k *b4 = (const struct shmrt_block_q4_k *)row + g / 8;
		const struct shmrt_block_q5_k *b5 = (const struct shmrt_block_q5_k *)row + g / 8;
		const uint8_t *qs = (dt == SHMRT_Q4_K ? b4->qs : b5->qs) + 32 * (j / 2);
		for (int l = 0; l < QX_N; l++) {
			int v = (qs[l] >> (4 * (j & 1))) & 0xF;
			if (dt == SHMRT_Q5_K)
				v |= ((b5->qh[l] >> j) & 1) << 4;
			r->q[l] = (int8_t)v;
		}
		shmrt_q4k_scale_min(j, dt == SHMRT_Q4_K ? b4->scales : b5->scales, &sc, &m);
		uint16_t d = dt == SHMRT_Q4_K ? b4->d : b5->d, dmin = dt == SHMRT_Q4_K ? b4->dmin : b5->dmin;
		r->s[0] = r->s[1] = shmrt_f16_to_f32(d) * (float)sc;
		r->off = -shmrt_f16_to_f32(dmin) * (float)m;
	} else {
		const struct shmrt_block_q6_k *b = (const struct shmrt_block_q6_k *)row + g / 8;
		int h = (int)(g % 8) / 4, i = (int)(g % 4);
		const uint8_t *ql = b->ql + 64 * h + 32 * (i & 1), *qh = b->qh + 32 * h;
		for (int l = 0; l < QX_N; l++)
			r->q[l] = (int8_t)((((ql[l] >> (4 * (i >> 1))) & 0xF) | (((qh[l] >> (2 * i)) & 3) << 4)) - 32);
		float d = shmrt_f16_to_f32(b->d);
		r->s[0] = d * b->scales[8 * h + 2 * i];
		r->s[1] = d * b->scales[8 * h + 2 * i + 1];
	}
}

/* Sum of 16 products of int8 (a loop the compiler vectorises). */
static inline int dot16(const int8_t *a, const int8_t *b)
{
	int s = 0;
	for (int l = 0; l < 16; l++)
		s += a[l] * b[l];
	return s;
}

/* Each group of a row of W decoded once for up to GEN_M rows of X. */
#define GEN_M 64
static void rows_generic(const struct qjob *j, int64_t n_begin, int64_t n_end)
{
	const struct shmrt_matmul_args *a = j->a;
	int64_t groups = a->k / QX_N;
	struct ggrp q;
	float acc[GEN_M];
	for (int64_t n = n_begin; n < n_end; n++) {
		const char *row = (const char *)a->w + n * j->row_bytes;
		for (int m0 = 0; m0 < a->m; m0 += GEN_M) {
			int mr = a->m - m0 < GEN_M ? a->m - m0 : GEN_M;
			memset(acc, 0, sizeof(acc));
			for (int64_t g = 0; g < groups; g++) {
				ggroup(row, g, a->w_dtype, &q);
				for (int m = 0; m < mr; m++) {
					const struct qx *x = j->xq + (int64_t)(m0 + m) * groups + g;
					float lo = q.s[0] * (float)dot16(q.q, x->qs);
					float hi = q.s[1] * (float)dot16(q.q + 16, x->qs + 16);
					acc[m] += x->d * (lo + hi) + q.off * x->s;
				}
			}
			for (int m = 0; m < mr; m++)
				qstore(j, m0 + m, n, acc[m]);
		}
	}
}

#if defined(__x86_64__) || defined(__i386__)
#define QIMPL(name) name##_avx2
#define QTARGET __attribute__((target("avx2,fma,f16c")))
#define DOT_US(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "matmul_quant_impl.h"
#undef QIMPL
#undef QTARGET
#undef DOT_US

#define QIMPL(name) name##_vnni
#define QTARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define DOT_US(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "matmul_quant_impl.h"
#undef QIMPL
#undef QTARGET
#undef DOT_US
#endif

static void run_rows(void *ctx, int tid, int n_threads)
{
	const struct qjob *j = ctx;
	int64_t groups = (j->a->n + N_GRAIN - 1) / N_GRAIN, g0, g1;
	shmrt_pool_part(groups, tid, n_threads, &g0, &g1);
	int64_t n0 = g0 * N_GRAIN, n1 = g1 * N_GRAIN < j->a->n ? g1 * N_GRAIN : j->a->n;
	if (n0 < n1)
		j->rows(j, n0, n1);
}

static void run_quantize(void *ctx, int tid, int n_threads)
{
	const struct qjob *j = ctx;
	int64_t m0, m1;
	shmrt_pool_part(j->a->m, tid, n_threads, &m0, &m1);
	for (int64_t m = m0; m < m1; m++)
		j->quantize((const float *)j->a->x + m * j->a->k, j->a->k, j->xq + m * (j->a->k / QX_N));
}

int shmrt_cpu_matmul_quant(const struct shmrt_matmul_args *a)
{
	struct qjob j = {a, NULL, (int64_t)shmrt_dtype_row_bytes(a->w_dtype, a->k), rows_generic, quantize_x};
#if defined(__x86_64__) || defined(__i386__)
	enum shmrt_cpu_isa isa = shmrt_cpu_isa();
	if (isa >= SHMRT_ISA_AVX512VNNI)
		j.rows = rows_vnni, j.quantize = quantize_vnni;
	else if (isa >= SHMRT_ISA_AVX2)
		j.rows = rows_avx2, j.quantize = quantize_avx2;
#endif
	j.xq = malloc(sizeof(struct qx) * (size_t)a->m * (size_t)(a->k / QX_N));
	if (!j.xq)
		return shmrt_fail(ENOMEM, "matmul: no memory for the quantized x");
	shmrt_pool_run_sized((int64_t)a->m * a->k, run_quantize, &j);
	shmrt_pool_run(run_rows, &j);
	free(j.xq);
	return 0;
}
