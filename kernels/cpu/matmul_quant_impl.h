/* The quantized matmul's inner loops with x86 int8 dot products, compiled
 * once per level: matmul_quant.c includes this file for avx2 and for
 * avx512vnni, defining before each
 *   QIMPL(name)    the name with the level's suffix,
 *   QTARGET        its __attribute__((target(...))),
 *   DOT_US(u, s)   8 int32 lanes, lane t = sum of u[4t + i] * s[4t + i]
 *                  for i < 4 (u unsigned, s signed bytes, no saturation
 *                  for |u| <= 128, |s| <= 127).
 *
 * Every format is read 32 elements (one block of X, struct qx) at a time
 * as a group: 32 integers q in a __m256i, the scale of each lane as a
 * float vector (two values for Q6_K's sub-blocks of 16, one otherwise)
 * and an offset coefficient (Q4_1's min, the K formats' -dmin * m) that
 * multiplies the block sum of X. Signed q (Q8_0, Q4_0 - 8, Q6_K - 32) go
 * through the sign trick of ggml's mul_sum_i8_pairs (|w| times x with w's
 * sign), unsigned nibbles straight into DOT_US, as ggml-cpu's
 * ggml_vec_dot_q4_1_q8_1 and ggml_vec_dot_q4_K_q8_K do. */

#define QINLINE QTARGET static inline __attribute__((always_inline))

struct QIMPL(grp) {
	__m256i q;
	__m256 s;   /* per lane: the W scale of the lane's 4 elements */
	float off;  /* times qx.s */
	int is_signed;
};

QINLINE float QIMPL(h2f)(uint16_t h)
{
	return _cvtsh_ss(h);
}

/* 16 bytes of nibbles as 32: the low nibbles first, then the high ones. */
QINLINE __m256i QIMPL(nibbles16)(const uint8_t *p)
{
	__m128i b = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0xF);
	return _mm256_setr_m128i(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
}

/* The low (shift 0) or high (shift 4) nibbles of 32 bytes. */
QINLINE __m256i QIMPL(nibbles32)(const uint8_t *p, int shift)
{
	__m256i b = _mm256_loadu_si256((const __m256i *)p);
	return _mm256_and_si256(_mm256_srli_epi16(b, shift), _mm256_set1_epi8(0xF));
}

/* Group g (elements 32 g .. 32 g + 31) of a row of W of format dt. */
QINLINE struct QIMPL(grp) QIMPL(group)(const char *row, int64_t g, enum shmrt_dtype dt)
{
	struct QIMPL(grp) r = {.off = 0, .is_signed = 1};
	if (dt == SHMRT_Q8_0) {
		const struct shmrt_block_q8_0 *b = (const struct shmrt_block_q8_0 *)row + g;
		r.q = _mm256_loadu_si256((const __m256i *)b->qs);
		r.s = _mm256_set1_ps(QIMPL(h2f)(b->d));
	} else if (dt == SHMRT_Q4_0) {
		const struct shmrt_block_q4_0 *b = (const struct shmrt_block_q4_0 *)row + g;
		r.q = _mm256_sub_epi8(QIMPL(nibbles16)(b->qs), _mm256_set1_epi8(8));
		r.s = _mm256_set1_ps(QIMPL(h2f)(b->d));
	} else if (dt == SHMRT_Q4_1) {
		const struct shmrt_block_q4_1 *b = (const struct shmrt_block_q4_1 *)row + g;
		r.q = QIMPL(nibbles16)(b->qs);
		r.s = _mm256_set1_ps(QIMPL(h2f)(b->d));
		r.off = QIMPL(h2f)(b->m);
		r.is_signed = 0;
	} else if (dt == SHMRT_Q4_K || dt == SHMRT_Q5_K) {
		/* Q4_K and Q5_K begin alike (d, dmin, scales); Q5_K's qs follow qh */
		int j = (int)(g % 8), sc, m;
		const struct shmrt_block_q4_k *b4 = (const struct shmrt_block_q4_k *)row + g / 8;
		const struct shmrt_block_q5_k *b5 = (const struct shmrt_block_q5_k *)row + g / 8;
		const uint8_t *scales = dt == SHMRT_Q4_K ? b4->scales : b5->scales;
		uint16_t d = dt == SHMRT_Q4_K ? b4->d : b5->d, dmin = dt == SHMRT_Q4_K ? b4->dmin : b5->dmin;
		shmrt_q4k_scale_min(j, scales, &sc, &m);
		r.q = QIMPL(nibbles32)((dt == SHMRT_Q4_K ? b4->qs : b5->qs) + 32 * (j / 2), 4 * (j & 1));
		if (dt == SHMRT_Q5_K) {
			__m256i h = _mm256_loadu_si256((const __m256i *)b5->qh);
			h = _mm256_and_si256(_mm256_srli_epi16(h, j), _mm256_set1_epi8(1));
			r.q = _mm256_or_si256(r.q, _mm256_slli_epi16(h, 4));
		}
		r.s = _mm256_set1_ps(QIMPL(h2f)(d) * (float)sc);
		r.off = -QIMPL(h2f)(dmin) * (float)m;
		r.is_signed = 0;
	} else { /* Q6_K: group i of the 128-element half h of its super-block */
		const struct shmrt_block_q6_k *b = (const struct shmrt_block_q6_k *)row + g / 8;
		int h = (int)(g % 8) / 4, i = (int)(g % 4);
		__m256i lo = QIMPL(nibbles32)(b->ql + 64 * h + 32 * (i & 1), 4 * (i >> 1));
		__m256i hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
		hi = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * i), _mm256_set1_epi8(3));
		r.q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
		float d = QIMPL(h2f)(b->d);
		const int8_t *sc = b->scales + 8 * h + 2 * i; /* elements 0-15, then 16-31 */
		r.s = _mm256_setr_m128(_mm_set1_ps(d * sc[0]), _mm_set1_ps(d * sc[1]));
	}
	return r;
}

/* Y[m0 .. m0+mr-1][n0 .. n0+nr-1] for nr rows of W from n0 (all valid) and
 * mr rows of X, all valid. mr and nr are constants at each call site, so
 * the mr * nr accumulators stay in registers; each group of W is unpacked
 * once and used for the mr rows of X. */
QINLINE void QIMPL(tile)(const struct qjob *j, int m0, int mr, int64_t n0, int nr, enum shmrt_dtype dt)
{
	const struct shmrt_matmul_args *a = j->a;
	int64_t groups = a->k / QX_N, ld = j->row_bytes;
	const char *w = (const char *)a->w + n0 * ld;
	const struct qx *x[QT_MAX];
	for (int m = 0; m < mr; m++)
		x[m] = j->xq + (int64_t)(m0 + m) * groups;
	__m256 acc[QT_MAX][QT_MAX];
	float off[QT_MAX][QT_MAX];
#pragma GCC unroll 4
	for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++)
			acc[m][r] = _mm256_setzero_ps(), off[m][r] = 0;
	/* The next strip's rows, asked for as this one's are read, at the
	 * same pace: W's rows are apart, and one core's hardware prefetcher
	 * alone kept 4 row streams at half the read bandwidth. */
	const char *pf = w + nr * ld;
	int64_t pf_step = ld / groups;
	for (int64_t g = 0; g < groups; g++) {
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++)
			_mm_prefetch(pf + r * ld + g * pf_step, _MM_HINT_T0);
		__m256i xv[QT_MAX];
		__m256 dx[QT_MAX];
#pragma GCC unroll 4
		for (int m = 0; m < mr; m++) {
			xv[m] = _mm256_loadu_si256((const __m256i *)x[m][g].qs);
			dx[m] = _mm256_set1_ps(x[m][g].d);
		}
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++) {
			struct QIMPL(grp) q = QIMPL(group)(w + r * ld, g, dt);
			__m256i u = q.is_signed ? _mm256_sign_epi8(q.q, q.q) : q.q;
#pragma GCC unroll 4
			for (int m = 0; m < mr; m++) {
				__m256i s = q.is_signed ? _mm256_sign_epi8(xv[m], q.q) : xv[m];
				__m256 p = _mm256_cvtepi32_ps(DOT_US(u, s));
				acc[m][r] = _mm256_fmadd_ps(_mm256_mul_ps(q.s, dx[m]), p, acc[m][r]);
				if (!q.is_signed)
					off[m][r] += q.off * x[m][g].s;
			}
		}
	}
	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr; r++) {
			__m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[m][r]), _mm256_extractf128_ps(acc[m][r], 1));
			v = _mm_add_ps(v, _mm_movehl_ps(v, v));
			v = _mm_add_ss(v, _mm_movehdup_ps(v));
			qstore(j, m0 + m, n0 + r, _mm_cvtss_f32(v) + off[m][r]);
		}
}

/* nr rows of W from n0 against all rows of X: row groups of 4, 2, 1.
 * Only the first pass reads this W from memory, the others from L1/L2. */
QINLINE void QIMPL(strip)(const struct qjob *j, int64_t n0, int nr, enum shmrt_dtype dt)
{
	int m0 = 0, mrows = j->a->m;
	for (; m0 + 4 <= mrows; m0 += 4)
		QIMPL(tile)(j, m0, 4, n0, nr, dt);
	if (m0 + 2 <= mrows) {
		QIMPL(tile)(j, m0, 2, n0, nr, dt);
		m0 += 2;
	}
	if (m0 < mrows)
		QIMPL(tile)(j, m0, 1, n0, nr, dt);
}

QINLINE void QIMPL(rows_dt)(const struct qjob *j, int64_t n_begin, int64_t n_end, enum shmrt_dtype dt)
{
	int64_t n0 = n_begin;
	for (; n0 + 4 <= n_end; n0 += 4)
		QIMPL(strip)(j, n0, 4, dt);
	for (; n0 < n_end; n0++)
		QIMPL(strip)(j, n0, 1, dt);
}

static QTARGET void QIMPL(rows)(const struct qjob *j, int64_t n_begin, int64_t n_end)
{
	switch (j->a->w_dtype) {
	case SHMRT_Q8_0:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q8_0);
		break;
	case SHMRT_Q4_0:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q4_0);
		break;
	case SHMRT_Q4_1:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q4_1);
		break;
	case SHMRT_Q4_K:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q4_K);
		break;
	case SHMRT_Q5_K:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q5_K);
		break;
	default:
		QIMPL(rows_dt)(j, n_begin, n_end, SHMRT_Q6_K);
	}
}

#undef QINLINE
