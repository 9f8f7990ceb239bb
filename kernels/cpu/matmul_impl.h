/* The fast matmul's inner loops, compiled once per x86 level: matmul.c
 * includes this file several times, defining before each
 *   IMPL(name)     the name with the level's suffix,
 *   IMPL_TARGET    its __attribute__((target(...))) (empty for generic),
 *   VF, VH, VU, VW the float / uint16 / uint32 vectors of VW lanes,
 *   MR, NR         the register tile: MR rows of X times NR rows of W,
 *   LOAD_F16(p)    VW fp16 values at p as a VF.
 *
 * The register tile computes Y[m][n] for MR x NR outputs as MR*NR vector
 * dot products over K: X and W are both K-contiguous (W is [N][K]), so
 * each step loads MR + NR vectors for MR*NR fused multiply-adds and the
 * lanes are summed once at the end. */

#define INLINE_T IMPL_TARGET inline __attribute__((always_inline))

/* VW elements of W (any dtype) at element i, as fp32. dt is a constant at
 * every call site, so the branches fold away. */
static INLINE_T VF IMPL(load_w)(const void *w, int64_t i, enum shmrt_dtype dt)
{
	if (dt == SHMRT_BF16)
		return (VF)(__builtin_convertvector(VLOAD(VH, (const uint16_t *)w + i), VU) << 16);
	if (dt == SHMRT_F16)
		return LOAD_F16((const uint16_t *)w + i);
	return VLOAD(VF, (const float *)w + i);
}

static INLINE_T float IMPL(sum)(VF v)
{
	float s = 0;
	for (int i = 0; i < VW; i++)
		s += v[i];
	return s;
}

/* out[m][r] = sum over k < kc of x[m][k] * w[r][k]. The row pointers of
 * both may repeat (edge tiles reuse a valid row; the caller drops those
 * results); w rows are element offsets into w of dtype dt. */
static INLINE_T void IMPL(tile)(const float *const x[MR], const void *w, const int64_t wr[NR], int kc,
				enum shmrt_dtype dt, float out[MR][NR])
{
	VF acc[MR][NR];
	memset(acc, 0, sizeof(acc));
	int k = 0;
	for (; k + VW <= kc; k += VW) {
		VF wv[NR];
#pragma GCC unroll 8
		for (int r = 0; r < NR; r++)
			wv[r] = IMPL(load_w)(w, wr[r] + k, dt);
#pragma GCC unroll 8
		for (int m = 0; m < MR; m++) {
			VF xv = VLOAD(VF, x[m] + k);
#pragma GCC unroll 8
			for (int r = 0; r < NR; r++)
				acc[m][r] += xv * wv[r];
		}
	}
	for (int m = 0; m < MR; m++)
		for (int r = 0; r < NR; r++) {
			float s = IMPL(sum)(acc[m][r]);
			for (int kk = k; kk < kc; kk++)
				s += x[m][kk] * shmrt_load(w, dt, wr[r] + kk);
			out[m][r] = s;
		}
}

/* Y rows m0.. and columns n0.. of a tile: out (+ bias), or y += out. */
static INLINE_T void IMPL(store)(const struct shmrt_matmul_args *a, int m0, int64_t n0, float out[MR][NR],
				 int accumulate)
{
	float *y = a->y;
	for (int m = 0; m < MR && m0 + m < a->m; m++)
		for (int r = 0; r < NR && n0 + r < a->n; r++) {
			float *dst = y + (int64_t)(m0 + m) * a->n + n0 + r;
			if (accumulate)
				*dst += out[m][r];
			else
				*dst = out[m][r] + (a->bias ? shmrt_load(a->bias, a->w_dtype, n0 + r) : 0.0f);
		}
}

static INLINE_T void IMPL(rows)(const struct shmrt_matmul_args *a, int m0, int k0, const float *x[MR])
{
	for (int m = 0; m < MR; m++)
		x[m] = (const float *)a->x + (int64_t)(m0 + m < a->m ? m0 + m : a->m - 1) * a->k + k0;
}

/* Decode shapes: W streams from memory once per MR rows of X; every
 * W row is read whole (X, M x K, stays in cache). */
static INLINE_T void IMPL(decode_dt)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				     enum shmrt_dtype dt)
{
	for (int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
		int64_t wr[NR];
		for (int r = 0; r < NR; r++)
			wr[r] = (n0 + r < a->n ? n0 + r : a->n - 1) * a->k;
		for (int m0 = 0; m0 < a->m; m0 += MR) {
			const float *x[MR];
			float out[MR][NR];
			IMPL(rows)(a, m0, 0, x);
			IMPL(tile)(x, a->w, wr, a->k, dt, out);
			IMPL(store)(a, m0, n0, out, 0);
		}
	}
}

static IMPL_TARGET void IMPL(decode)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end)
{
	switch (a->w_dtype) {
	case SHMRT_BF16:
		IMPL(decode_dt)(a, n_begin, n_end, SHMRT_BF16);
		break;
	case SHMRT_F16:
		IMPL(decode_dt)(a, n_begin, n_end, SHMRT_F16);
		break;
	default:
		IMPL(decode_dt)(a, n_begin, n_end, SHMRT_F32);
	}
}

/* Prefill shapes: blocked for cache. For each KC-wide slice of K and
 * MC-row chunk of X (MC x KC fp32 stays in L2), each NR-row strip of W is
 * converted to fp32 once into wbuf (NR x KC, in L1) and reused by all
 * MC/MR register tiles of the chunk. */
static IMPL_TARGET void IMPL(prefill)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				      float *wbuf)
{
	for (int k0 = 0; k0 < a->k; k0 += KC) {
		int kc = a->k - k0 < KC ? a->k - k0 : KC;
		for (int mc = 0; mc < a->m; mc += MC)
			for (int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
				int64_t wr[NR];
				for (int r = 0; r < NR; r++) {
					int64_t n = n0 + r < a->n ? n0 + r : a->n - 1;
					for (int k = 0; k < kc; k++)
						wbuf[r * kc + k] = shmrt_load(a->w, a->w_dtype, n * a->k + k0 + k);
					wr[r] = (int64_t)r * kc;
				}
				for (int m0 = mc; m0 < a->m && m0 < mc + MC; m0 += MR) {
					const float *x[MR];
					float out[MR][NR];
					IMPL(rows)(a, m0, k0, x);
					IMPL(tile)(x, wbuf, wr, kc, SHMRT_F32, out);
					IMPL(store)(a, m0, n0, out, k0 > 0);
				}
			}
	}
}

static const struct matmul_impl IMPL(impl) = {IMPL(decode), IMPL(prefill)};

#undef INLINE_T
