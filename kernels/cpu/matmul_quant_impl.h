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
 * and an offset coefficient (Q4_0's -8 d, Q4_1's min, the K formats'
 * -dmin * m) that multiplies the block sum of X. Signed q (Q8_0, Q6_K - 32) go
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

/* 16 bytes of nibbles as 32: the low nibbles first, then the high ones.
 * The bytes broadcast to both halves (a load, no shuffle) and the upper
 * half shifted by 4: three instructions where inserting a shifted copy
 * took five. */
QINLINE __m256i QIMPL(nibbles16)(const uint8_t *p)
{
	__m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
	return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

/* The low (shift 0) or high (shift 4) nibbles of 32 bytes. */
QINLINE __m256i QIMPL(nibbles32)(const uint8_t *p, int shift)
{
	__m256i b = _mm256_loadu_si256((const __m256i *)p);
	return _mm256_and_si256(_mm256_srli_epi16(b, shift), _mm256_set1_epi8(0xF));
}

/* The scales of one K-format super-block as fp32, decoded once for its 8
 * groups: Q4_K / Q5_K d * sc and -dmin * m of the 8 sub-blocks, Q6_K
 * d * scale of the 16. */
struct QIMPL(hdr) {
	float s[16], off[8];
};

QINLINE void QIMPL(header)(const char *row, int64_t blk, enum shmrt_dtype dt, struct QIMPL(hdr) *h)
{
	if (dt == SHMRT_Q4_K || dt == SHMRT_Q5_K) {
		/* Q4_K and Q5_K begin alike: d, dmin, scales[12]. The 6-bit
		 * scales and mins into bytes, 8 each, all at once: ggml-cpu's
		 * ggml_vec_dot_q4_K_q8_K (kmask1..3), shmrt_q4k_scale_min's rule */
		size_t bytes = dt == SHMRT_Q4_K ? sizeof(struct shmrt_block_q4_k) : sizeof(struct shmrt_block_q5_k);
		const struct shmrt_block_q4_k *b = (const struct shmrt_block_q4_k *)(row + blk * (int64_t)bytes);
		uint32_t u[4];
		memcpy(u, b->scales, 12);
		u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
		uint32_t mins_lo = u[1] & 0x3f3f3f3f;
		u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
		u[2] = mins_lo;
		u[0] &= 0x3f3f3f3f; /* u[0..1]: the 8 scales, u[2..3]: the 8 mins */
		__m128i v = _mm_loadu_si128((const __m128i *)u);
		__m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
		__m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
		_mm256_storeu_ps(h->s, _mm256_mul_ps(sc, _mm256_set1_ps(QIMPL(h2f)(b->d))));
		_mm256_storeu_ps(h->off, _mm256_mul_ps(mn, _mm256_set1_ps(-QIMPL(h2f)(b->dmin))));
	} else if (dt == SHMRT_Q6_K) {
		const struct shmrt_block_q6_k *b = (const struct shmrt_block_q6_k *)row + blk;
		__m128i v = _mm_loadu_si128((const __m128i *)b->scales);
		__m256 d = _mm256_set1_ps(QIMPL(h2f)(b->d));
		_mm256_storeu_ps(h->s, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d));
		_mm256_storeu_ps(h->s + 8,
				 _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), d));
	}
}

/* Group gi of block blk (elements 32 (blk * G + gi) .. + 31, G the groups
 * of a block) of a row of W of format dt; h: the block's header (K formats). */
QINLINE struct QIMPL(grp) QIMPL(group)(const char *row, int64_t blk, int gi, enum shmrt_dtype dt,
				       const struct QIMPL(hdr) *h)
{
	struct QIMPL(grp) r = {.off = 0, .is_signed = 1};
	if (dt == SHMRT_Q8_0) {
		const struct shmrt_block_q8_0 *b = (const struct shmrt_block_q8_0 *)row + blk;
		r.q = _mm256_loadu_si256((const __m256i *)b->qs);
		r.s = _mm256_set1_ps(QIMPL(h2f)(b->d));
	} else if (dt == SHMRT_Q4_0) {
		/* d (q - 8) as unsigned q with the offset -8 d on the block sum:
		 * no sign trick, whose second half costs one more op per row of X */
		const struct shmrt_block_q4_0 *b = (const struct shmrt_block_q4_0 *)row + blk;
		float d = QIMPL(h2f)(b->d);
		r.q = QIMPL(nibbles16)(b->qs);
		r.s = _mm256_set1_ps(d);
		r.off = -8 * d;
		r.is_signed = 0;
	} else if (dt == SHMRT_Q4_1) {
		const struct shmrt_block_q4_1 *b = (const struct shmrt_block_q4_1 *)row + blk;
		int32_t dm; /* d and m converted together */
		memcpy(&dm, b, sizeof(dm));
		__m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
		r.q = QIMPL(nibbles16)(b->qs);
		r.s = _mm256_broadcastss_ps(f);
		r.off = _mm_cvtss_f32(_mm_movehdup_ps(f));
		r.is_signed = 0;
	} else if (dt == SHMRT_Q4_K || dt == SHMRT_Q5_K) {
		const struct shmrt_block_q4_k *b4 = (const struct shmrt_block_q4_k *)row + blk;
		const struct shmrt_block_q5_k *b5 = (const struct shmrt_block_q5_k *)row + blk;
		r.q = QIMPL(nibbles32)((dt == SHMRT_Q4_K ? b4->qs : b5->qs) + 32 * (gi / 2), 4 * (gi & 1));
		if (dt == SHMRT_Q5_K) {
			__m256i hb = _mm256_loadu_si256((const __m256i *)b5->qh);
			hb = _mm256_and_si256(_mm256_srli_epi16(hb, gi), _mm256_set1_epi8(1));
			r.q = _mm256_or_si256(r.q, _mm256_slli_epi16(hb, 4));
		}
		r.s = _mm256_set1_ps(h->s[gi]);
		r.off = h->off[gi];
		r.is_signed = 0;
	} else { /* Q6_K: group i of the 128-element half hf of its super-block */
		const struct shmrt_block_q6_k *b = (const struct shmrt_block_q6_k *)row + blk;
		int hf = gi / 4, i = gi % 4;
		__m256i lo = QIMPL(nibbles32)(b->ql + 64 * hf + 32 * (i & 1), 4 * (i >> 1));
		__m256i hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * hf));
		hi = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * i), _mm256_set1_epi8(3));
		r.q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
		const float *sc = h->s + 8 * hf + 2 * i; /* elements 0-15, then 16-31 */
		r.s = _mm256_setr_m128(_mm_broadcast_ss(sc), _mm_broadcast_ss(sc + 1));
	}
	return r;
}

/* A row of X into blocks of 32 int8 (quantize_x's rule, rounding ties to
 * even): ggml-cpu's AVX2 quantize_row_q8_1, packs and the permutation that
 * undoes their lane interleaving included. */
static QTARGET void QIMPL(quantize)(const float *x, int64_t k, struct qx *out)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	for (int64_t b = 0; b < k / QX_N; b++, x += QX_N) {
		__m256 v[4], amax = _mm256_setzero_ps();
		for (int i = 0; i < 4; i++) {
			v[i] = _mm256_loadu_ps(x + 8 * i);
			amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
		}
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		float d = _mm_cvtss_f32(m4) / 127, id = d != 0 ? 1 / d : 0;
		__m256i q[4];
		for (int i = 0; i < 4; i++)
			q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)),
								  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		__m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
		__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
		s4 = _mm_hadd_epi32(s4, s4);
		s4 = _mm_hadd_epi32(s4, s4);
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
		p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)out[b].qs, p);
		out[b].d = d;
		out[b].s = d * (float)_mm_cvtsi128_si32(s4);
	}
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
	/* groups of a block; a constant (not shmrt_dtype_block, a call) so that
	 * the loop over groups vanishes for the formats of one group */
	const int per = dt == SHMRT_Q8_0 || dt == SHMRT_Q4_0 || dt == SHMRT_Q4_1 ? 1 : SHMRT_QK_K / QX_N;
	for (int64_t blk = 0; blk < groups / per; blk++) {
		struct QIMPL(hdr) hd[QT_MAX];
		if (per > 1)
#pragma GCC unroll 4
			for (int r = 0; r < nr; r++)
				QIMPL(header)(w + r * ld, blk, dt, &hd[r]);
		for (int gi = 0; gi < per; gi++) {
			int64_t g = blk * per + gi;
#pragma GCC unroll 4
			for (int r = 0; r < nr; r++)
				_mm_prefetch(pf + r * ld + g * pf_step, _MM_HINT_T1);
			__m256i xv[QT_MAX];
			__m256 dx[QT_MAX];
#pragma GCC unroll 4
			for (int m = 0; m < mr; m++) {
				xv[m] = _mm256_loadu_si256((const __m256i *)x[m][g].qs);
				dx[m] = _mm256_set1_ps(x[m][g].d);
			}
#pragma GCC unroll 4
			for (int r = 0; r < nr; r++) {
				struct QIMPL(grp) q = QIMPL(group)(w + r * ld, blk, gi, dt, &hd[r]);
				__m256i u = q.is_signed ? _mm256_sign_epi8(q.q, q.q) : q.q;
#pragma GCC unroll 4
				for (int m = 0; m < mr; m++) {
					__m256i sx = q.is_signed ? _mm256_sign_epi8(xv[m], q.q) : xv[m];
					__m256 p = _mm256_cvtepi32_ps(DOT_US(u, sx));
					acc[m][r] = _mm256_fmadd_ps(_mm256_mul_ps(q.s, dx[m]), p, acc[m][r]);
					if (!q.is_signed)
						off[m][r] += q.off * x[m][g].s;
				}
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
