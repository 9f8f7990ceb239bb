/* The fast matmul's inner loops, compiled once per x86 level: matmul.c
 * includes this file several times, defining before each
 *   IMPL(name)     the name with the level's suffix,
 *   IMPL_TARGET    its __attribute__((target(...))) (empty for generic),
 *   VF, VH, VU, VW the float / uint16 / uint32 vectors of VW lanes,
 *   PNR, PMV       the prefill register tile: PNR rows of W times PMV
 *                  vectors of rows of X,
 *   LOAD_F16(p)    VW fp16 values at p as a VF. */

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

/* Lane j of the shuffle that folds two vectors in blocks of h lanes
 * (hi = 0: the lower block of each pair, 1: the upper one), and the VW
 * lanes of that shuffle (__builtin_shufflevector: GCC >= 12 and clang
 * both have it; GCC's __builtin_shuffle is GCC's alone); see fold. */
#define FOLD_LANE(j, h, hi) ((j) / (h) % 2 ? VW + ((j) / (h) - 1 + (hi)) * (h) + (j) % (h) : ((j) / (h) + (hi)) * (h) + (j) % (h))
#define FOLD_LANES4(j, h, hi) FOLD_LANE(j, h, hi), FOLD_LANE(j + 1, h, hi), FOLD_LANE(j + 2, h, hi), FOLD_LANE(j + 3, h, hi)
#if VW == 16
#define FOLD_LANES(h, hi) FOLD_LANES4(0, h, hi), FOLD_LANES4(4, h, hi), FOLD_LANES4(8, h, hi), FOLD_LANES4(12, h, hi)
#elif VW == 8
#define FOLD_LANES(h, hi) FOLD_LANES4(0, h, hi), FOLD_LANES4(4, h, hi)
#else
#define FOLD_LANES(h, hi) FOLD_LANES4(0, h, hi)
#endif
#define FOLD(a, b, h) (__builtin_shufflevector(a, b, FOLD_LANES(h, 0)) + __builtin_shufflevector(a, b, FOLD_LANES(h, 1)))

/* a and b folded into one vector: block t (of h lanes) of the result is
 * the sum of a's blocks t and t + 1 for even t, of b's blocks t - 1 and t
 * for odd t. h is a constant at every call site. */
static INLINE_T VF IMPL(fold)(VF a, VF b, int h)
{
	switch (h) {
#if VW == 16
	case 8:
		return FOLD(a, b, 8);
#endif
#if VW >= 8
	case 4:
		return FOLD(a, b, 4);
#endif
	case 2:
		return FOLD(a, b, 2);
	default:
		return FOLD(a, b, 1);
	}
}

/* The sums of the lanes of v[0 .. n-1] (n a power of two, 1 .. VW), v[i]'s
 * in lane i * (VW / n) of the result: a transposed reduction, n - 1 folds
 * of two shuffles and an add, and log2(VW / n) more of the last vector,
 * where halving each vector on its own costs about 2 log2(VW) operations
 * a vector. */
static INLINE_T VF IMPL(sums)(VF *v, int n)
{
	int h = VW / 2;
#pragma GCC unroll 4
	for (int left = n; left > 1; left /= 2, h /= 2)
#pragma GCC unroll 8
		for (int i = 0; i < left / 2; i++)
			v[i] = IMPL(fold)(v[i], v[i + left / 2], h);
#pragma GCC unroll 4
	for (; h >= 1; h /= 2)
		v[0] = IMPL(fold)(v[0], v[0], h);
	return v[0];
}

/* ---- decode: small m, bound by streaming W ----
 *
 * A decode tile is mr rows of X (1, 2 or 4) times nr rows of W over the
 * whole of K: W streams from memory on the first row group and is read
 * again from L1/L2 for the others. mr and nr are constants at each call
 * site (decode_rows), so acc lives in registers; 8 or more accumulators
 * cover the FMA latency.
 *
 * bf16 W is widened without shuffles: a VU of 2*VW bf16 values, seen as
 * VW uint32 pairs, gives the even elements as (u << 16) and the odd ones
 * as (u & 0xffff0000). X is permuted to match once per call (xperm: per
 * 2*VW chunk of K the VW even elements, then the VW odd ones), so each
 * bf16 element costs half an integer op instead of a widening shuffle and
 * a shift. */

/* X permuted for the bf16 tiles: per full chunk of K its even elements,
 * then its odd ones; the tail (k >= kc) as it is. */
static IMPL_TARGET void IMPL(permute_x)(const struct shmrt_matmul_args *a, float *xperm)
{
	int kc = a->k / (2 * VW) * (2 * VW);
	for (int m = 0; m < a->m; m++) {
		const float *x = (const float *)a->x + (int64_t)m * a->k;
		float *out = xperm + (int64_t)m * a->k;
		for (int c = 0; c < kc; c += 2 * VW)
			for (int j = 0; j < VW; j++) {
				out[c + j] = x[c + 2 * j];
				out[c + VW + j] = x[c + 2 * j + 1];
			}
		memcpy(out + kc, x + kc, sizeof(float) * (size_t)(a->k - kc));
	}
}

#define DEC_MAX 8 /* largest mr and nr */

/* Asks for line `step` of a region spread over a tile's k steps (into L2:
 * the tile's own W fills L1). */
static INLINE_T void IMPL(pf_part)(const char *pf, int64_t pf_bytes, int64_t per_step, int step)
{
	for (int64_t b = (int64_t)step * per_step, end = b + per_step; b < end && b < pf_bytes; b += 64)
		__builtin_prefetch(pf + b, 0, 2);
}

/* One decode tile: the outputs n0 .. n0+nr-1, all valid, from the nr rows
 * of W at w0, ld bytes apart; meanwhile
 * pf_bytes at pf (the next W rows) are asked for, spread evenly over its
 * k steps. Row r of W is one base pointer plus r constant strides, each
 * row's vector consumed as soon as it is loaded: with arrays of row
 * pointers and of loaded vectors indexed in the unrolled loops, GCC kept
 * them on the stack and reloaded them every step (perf annotate of
 * `shmrt bench e2e`). */
static INLINE_T void IMPL(dtile)(const struct shmrt_matmul_args *a, const float *xperm, int m0, int mr, int64_t n0,
				 int nr, enum shmrt_dtype dt, const char *w0, int64_t ld, const char *pf, int64_t pf_bytes)
{
	const float *xp[DEC_MAX];
	for (int m = 0; m < mr; m++) {
		int row = m0 + m < a->m ? m0 + m : a->m - 1;
		xp[m] = (xperm ? xperm : (const float *)a->x) + (int64_t)row * a->k;
	}
	VF acc[DEC_MAX][DEC_MAX];
#pragma GCC unroll 8
	for (int m = 0; m < mr; m++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[m][r] = (VF){0};
	int k = 0, kstep = dt == SHMRT_BF16 ? 2 * VW : VW, steps = a->k / kstep;
	int64_t per_step = steps ? ((pf_bytes + steps - 1) / steps + 63) & ~(int64_t)63 : 0;
	if (dt == SHMRT_BF16) {
		for (; k + 2 * VW <= a->k; k += 2 * VW) {
			VF xe[DEC_MAX], xo[DEC_MAX];
			const char *wk = w0 + (int64_t)k * 2;
			IMPL(pf_part)(pf, pf_bytes, per_step, k / (2 * VW));
#pragma GCC unroll 8
			for (int m = 0; m < mr; m++)
				xe[m] = VLOAD(VF, xp[m] + k), xo[m] = VLOAD(VF, xp[m] + k + VW);
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				VU u = VLOAD(VU, (const uint16_t *)(wk + r * ld));
				VF we = (VF)(u << 16), wo = (VF)(u & 0xffff0000u);
#pragma GCC unroll 8
				for (int m = 0; m < mr; m++)
					if (mr == 1)
						/* One sum of two products: a mul and an FMA
						 * on the FMA pipes, the add on the add pipes,
						 * and a one-add chain per accumulator (faster
						 * on Zen 5 than two chained FMAs). */
						acc[m][r] += xe[m] * we + xo[m] * wo;
					else
						/* Two chained FMAs: with 8 or 16 accumulators
						 * their latency is hidden, and on Intel,
						 * whose add runs on the FMA ports, the mul,
						 * FMA and add above are a third more work:
						 * 2-vCPU Xeon (model 207), 2048 x 768 bf16
						 * from DRAM, ms, m = 8 0.172 -> 0.158, m = 16
						 * 0.304 -> 0.250, m = 24 0.46 -> 0.37. */
						acc[m][r] = (acc[m][r] + xe[m] * we) + xo[m] * wo;
			}
		}
	} else {
		for (; k + VW <= a->k; k += VW) {
			VF xv[DEC_MAX];
			IMPL(pf_part)(pf, pf_bytes, per_step, k / VW);
#pragma GCC unroll 8
			for (int m = 0; m < mr; m++)
				xv[m] = VLOAD(VF, xp[m] + k);
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				VF wv = IMPL(load_w)(w0 + r * ld, k, dt);
#pragma GCC unroll 8
				for (int m = 0; m < mr; m++)
					acc[m][r] += xv[m] * wv;
			}
		}
	}
	/* the tile's sums, out[m * nr + r] for acc[m][r] (mr * nr is a power
	 * of two: mr is 1, 2 or 4, nr 1, 4 or 8) */
	float out[DEC_MAX * DEC_MAX];
	VF v[DEC_MAX * DEC_MAX];
	int n = mr * nr;
#pragma GCC unroll 8
	for (int m = 0; m < mr; m++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			v[m * nr + r] = acc[m][r];
#pragma GCC unroll 4
	for (int c = 0; c < n; c += VW) {
		int cn = n - c < VW ? n - c : VW;
		float lanes[VW];
		VSTORE(lanes, IMPL(sums)(v + c, cn));
#pragma GCC unroll 16
		for (int i = 0; i < cn; i++)
			out[c + i] = lanes[i * (VW / cn)];
	}
	float *y = a->y;
	for (int m = 0; m < mr && m0 + m < a->m; m++)
		for (int r = 0; r < nr; r++) {
			float s = out[m * nr + r];
			for (int kk = k; kk < a->k; kk++)
				s += xp[m][kk] * shmrt_load(w0 + r * ld, dt, kk);
			if (a->bias)
				s += shmrt_load(a->bias, a->bias_dtype, n0 + r);
			y[(int64_t)(m0 + m) * a->n + n0 + r] = s;
		}
}

/* One group of nr rows of W from n0 (all valid) against all rows of X, in
 * row groups of 4, then 2, then 1. Only the first pass over the group
 * reads W from memory; so that memory stays busy during the others too,
 * every pass asks for its share of the next_bytes at next (measured with
 * m = 2..8 in `shmrt bench kernels`: 10 to 20 points of the read
 * bandwidth for bf16 W). */
static INLINE_T void IMPL(dgroup)(const struct shmrt_matmul_args *a, const float *xperm, int64_t n0, int nr,
				  enum shmrt_dtype dt, const char *next, int64_t next_bytes)
{
	int64_t ld = a->k * (int64_t)shmrt_dtype_size(dt); /* bytes per row of W */
	const char *w0 = (const char *)a->w + n0 * ld;
	if (a->m == 1) {
		IMPL(dtile)(a, xperm, 0, 1, n0, nr, dt, w0, ld, next, next_bytes);
		return;
	}
	int passes = a->m / 4 + (a->m % 4 >= 2) + (a->m % 2), m0 = 0, pass = 0;
	int64_t share = (next_bytes + passes - 1) / passes;
	for (; m0 + 4 <= a->m; m0 += 4, pass++)
		IMPL(dtile)(a, xperm, m0, 4, n0, nr, dt, w0, ld, next + pass * share, share);
	if (m0 + 2 <= a->m) {
		IMPL(dtile)(a, xperm, m0, 2, n0, nr, dt, w0, ld, next + pass * share, share);
		m0 += 2, pass++;
	}
	if (m0 < a->m)
		IMPL(dtile)(a, xperm, m0, 1, n0, nr, dt, w0, ld, next + pass * share, share);
}

/* Rows n_begin .. n_end-1 of W against all rows of X: groups of 8 rows of
 * W for one row of X, else 4; the rows left over one at a time. With one
 * row of X, bf16 W asks for the next group during the tile too:
 * `shmrt bench e2e --batch 1` (small preset, bf16 rows of 1.5 and 4 KiB)
 * went from 117-129 to 181-189 tokens/s with it, 114-127 without; with
 * f32 W and k = 4096 it cost 7 points in `shmrt bench kernels`; f16 is
 * not measured. */
static INLINE_T void IMPL(decode_dt)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				     const float *xperm, enum shmrt_dtype dt)
{
	int64_t row_bytes = a->k * (int64_t)shmrt_dtype_size(dt);
	int pf_one = a->m == 1 && dt == SHMRT_BF16;
	int64_t n0 = n_begin;
	if (a->m == 1)
		for (; n0 + 8 <= n_end; n0 += 8) {
			int64_t left = n_end - (n0 + 8), next_rows = left < 8 ? left : 8;
			IMPL(dgroup)(a, xperm, n0, 8, dt, (const char *)a->w + (n0 + 8) * row_bytes,
				     pf_one ? next_rows * row_bytes : 0);
		}
	else
		for (; n0 + 4 <= n_end; n0 += 4) {
			int64_t left = n_end - (n0 + 4), next_rows = left < 4 ? left : 4;
			IMPL(dgroup)(a, xperm, n0, 4, dt, (const char *)a->w + (n0 + 4) * row_bytes,
				     next_rows * row_bytes);
		}
	for (; n0 < n_end; n0++)
		IMPL(dgroup)(a, xperm, n0, 1, dt, NULL, 0);
}

static IMPL_TARGET void IMPL(decode)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				     const float *xperm)
{
	switch (a->w_dtype) {
	case SHMRT_BF16:
		IMPL(decode_dt)(a, n_begin, n_end, xperm, SHMRT_BF16);
		break;
	case SHMRT_F16:
		IMPL(decode_dt)(a, n_begin, n_end, NULL, SHMRT_F16);
		break;
	default:
		IMPL(decode_dt)(a, n_begin, n_end, NULL, SHMRT_F32);
	}
}

/* ---- prefill: many rows of X, bound by arithmetic ----
 *
 * Outer products, as BLIS and oneDNN do it: a register tile of PNR rows of
 * W times PM rows of X, the rows of X along the vector lanes (PMV vectors),
 * each W value broadcast against them: PMV loads of X and PNR broadcasts
 * for PNR x PMV FMAs, no horizontal sums. X is packed once per call in
 * panels of XP rows (xt: panel p holds rows p*XP .. p*XP+XP-1, zero past
 * m, as [k][XP]: matmul.c), so a tile reads its X sequentially, 128 bytes
 * a step; W is converted to fp32 PNR rows by PKC values at a time into
 * wbuf (in L1) and used by every tile of the row chunk. With X transposed
 * as one [k][m] array instead, each step's X came from another line of L2
 * and the tiles ran at 0.58-0.63 of the FMA peak. The dot-product
 * tiles this replaced (4 x 4, a horizontal sum per output and K slice)
 * reached 0.41-0.48 of the FMA peak (issue 16). */
/* K slice, at most: 24 KiB of W in fp32, in any L1 (Zen 4: 32 KiB); each
 * panel's PKC x XP of X in L2. K is cut in equal slices (prefill_dt): with
 * slices of 512 (16 KiB), k = 576 took a second slice of 64 steps, whose
 * tiles' stores into Y cost as much as its FMAs. 2-vCPU Xeon (model 207),
 * bf16 W, GFLOP/s of the matmul, 512 -> 768 (bench/ab_matmul, calls of
 * the two builds interleaved): m = 64 1536 x 576 251 -> 270, 4096 x 4096 240
 * -> 266; m = 512 1536 x 576 237 -> 279, 4096 x 4096 265 -> 276; 1024
 * gained nothing more. */
#define PKC (6144 / PNR)
#define PMB 256 /* rows of X a chunk: PKC x PMB x 4 = 768 KiB of xt */
#define PM (PMV * VW)

/* out[r][i] = sum over k < kc of wb[r][k] * xk[k * XP + i], for r < PNR
 * and i < PM; xk is the tile's first row of X in its panel's K slice. */
static INLINE_T void IMPL(ptile)(const float *xk, const float *wb, int kc, float out[PNR][PM], const struct pnext *pf)
{
	int pf_left = pf ? PNR * pf->lines : 0, pf_count = 0, pf_row = 0, pf_line = 0;
	VF acc[PNR][PMV];
#pragma GCC unroll 16
	for (int r = 0; r < PNR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < PMV; v++)
			acc[r][v] = (VF){0};
	for (int k = 0; k < kc; k++, xk += XP) {
		if (pf_left && ++pf_count == pf->every) {
			__builtin_prefetch(pf->base + pf_row * pf->ld + (int64_t)pf_line * 64, 0, 2);
			pf_count = 0, pf_left--;
			if (++pf_row == PNR)
				pf_row = 0, pf_line++;
		}
		VF x[PMV];
#pragma GCC unroll 4
		for (int v = 0; v < PMV; v++)
			x[v] = VLOAD(VF, xk + v * VW);
#pragma GCC unroll 16
		for (int r = 0; r < PNR; r++) {
			VF w = wb[r * kc + k] - (VF){0}; /* a splat: + 0 would not fold (-0 + 0 is +0) */
#pragma GCC unroll 4
			for (int v = 0; v < PMV; v++)
				acc[r][v] += w * x[v];
		}
	}
	for (int r = 0; r < PNR; r++)
		for (int v = 0; v < PMV; v++)
			VSTORE(&out[r][v * VW], acc[r][v]);
}

/* A tile's outputs into Y: the first K slice stores (+ bias), the others
 * add; rows of X past m and of W past n are dropped. A full tile's rows
 * are PNR contiguous floats of Y: a loop of constant length. */
static INLINE_T void IMPL(pstore)(const struct shmrt_matmul_args *a, int m0, int64_t n0, float out[PNR][PM], int first)
{
	float *y = a->y, bias[PNR] = {0};
	int nr = a->n - n0 < PNR ? (int)(a->n - n0) : PNR, mr = a->m - m0 < PM ? a->m - m0 : PM;
	for (int r = 0; first && a->bias && r < nr; r++)
		bias[r] = shmrt_load(a->bias, a->bias_dtype, n0 + r);
	for (int i = 0; i < mr; i++) {
		float *row = y + (int64_t)(m0 + i) * a->n + n0;
		if (nr == PNR && first) {
#pragma GCC unroll 16
			for (int r = 0; r < PNR; r++)
				row[r] = out[r][i] + bias[r];
		} else if (nr == PNR) {
#pragma GCC unroll 16
			for (int r = 0; r < PNR; r++)
				row[r] += out[r][i];
		} else {
			for (int r = 0; r < nr; r++)
				row[r] = first ? out[r][i] + bias[r] : row[r] + out[r][i];
		}
	}
}

static INLINE_T void IMPL(prefill_dt)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				      float *wbuf, const float *xt, enum shmrt_dtype dt)
{
	for (int mb = 0; mb < a->m; mb += PMB) {
		int mb_end = a->m - mb < PMB ? a->m : mb + PMB;
		/* K in equal slices of at most PKC, multiples of 16 */
		int slices = (a->k + PKC - 1) / PKC, kslice = ((a->k + slices - 1) / slices + 15) & ~15;
		for (int k0 = 0; k0 < a->k; k0 += kslice) {
			int kc = a->k - k0 < kslice ? a->k - k0 : kslice;
			for (int64_t n0 = n_begin; n0 < n_end; n0 += PNR) {
				for (int r = 0; r < PNR; r++) {
					int64_t from = (n0 + r < a->n ? n0 + r : a->n - 1) * a->k + k0;
					float *to = wbuf + r * kc;
					int k = 0;
					for (; k + VW <= kc; k += VW)
						VSTORE(to + k, IMPL(load_w)(a->w, from + k, dt));
					for (; k < kc; k++)
						to[k] = shmrt_load(a->w, dt, from + k);
				}
				int64_t esize = shmrt_dtype_size(dt), lines = ((int64_t)kc * esize + 63) / 64;
				struct pnext next = {(const char *)a->w + ((n0 + PNR) * a->k + k0) * esize, a->k * esize,
						     (int)lines, (int)(kc / (PNR * lines) > 0 ? kc / (PNR * lines) : 1)};
				bool has_next = n0 + 2 * PNR <= a->n;
				for (int m0 = mb; m0 < mb_end; m0 += PM) {
					float out[PNR][PM];
					const float *xk = xt + (int64_t)(m0 / XP) * XP * a->k + (int64_t)k0 * XP + m0 % XP;
					IMPL(ptile)(xk, wbuf, kc, out, m0 == mb && has_next ? &next : NULL);
					IMPL(pstore)(a, m0, n0, out, k0 == 0);
				}
			}
		}
	}
}

static IMPL_TARGET void IMPL(prefill)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end,
				      float *wbuf, const float *xt)
{
	switch (a->w_dtype) {
	case SHMRT_BF16:
		IMPL(prefill_dt)(a, n_begin, n_end, wbuf, xt, SHMRT_BF16);
		break;
	case SHMRT_F16:
		IMPL(prefill_dt)(a, n_begin, n_end, wbuf, xt, SHMRT_F16);
		break;
	default:
		IMPL(prefill_dt)(a, n_begin, n_end, wbuf, xt, SHMRT_F32);
	}
}

static const struct matmul_impl IMPL(impl) = {IMPL(decode), IMPL(prefill), IMPL(permute_x)};

#undef INLINE_T
#undef DEC_MAX
#undef FOLD_LANE
#undef FOLD_LANES4
#undef FOLD_LANES
#undef FOLD
#undef PKC
#undef PMB
#undef PM
