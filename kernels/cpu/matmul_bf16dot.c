/* bf16 W times X rounded to bf16, on AVX512-BF16's dot product.
 *
 * VDPBF16PS multiplies 32 pairs of bf16 and adds each two neighbouring
 * products into one of 16 fp32 lanes: 64 FLOPs an instruction, where the
 * fp32 path (matmul_impl.h) spends a shift or a mask and two FMAs on the
 * same 32 elements of W once they are widened. X is
 * rounded to bf16 once per call (round to nearest even, VCVTNE2PS2BF16),
 * as llama.cpp does for its BF16 type (ggml's vec_dot_type of
 * GGML_TYPE_BF16 is BF16); the products of two bf16 are exact in fp32 and
 * are summed in fp32, so the only new error is X's rounding: at most 2^-9
 * of each |x|, 2^-9 of sum |x w| on an output (tests/test_kernels_matmul.c).
 * Denormal inputs and results are flushed to zero by the instruction.
 *
 * Whether it pays depends on the CPU. Per 32 elements of W and row of X
 * it is one instruction where the fp32 path needs two or three, but CPUs
 * issue it at different rates: the 2-vCPU Xeon (family 6 model 207, KVM)
 * one every 2 cycles, 32 FLOPs a cycle against FMA's 64 (bench kernels'
 * bf16dot_peak and fma_peak: 85 and 172 GFLOP/s a thread), and there the
 * fp32 path won in `bench e2e` at every batch (bench/RESULTS.md); AMD's
 * Zen 4 issues it every cycle, twice its 512-bit FMA rate (not measured
 * here). It is therefore asked for, $SHMRT_CPU_BF16DOT=on
 * (shmrt_cpu_bf16dot_used), not raced: a race of the two instructions
 * at start-up, tried first, came out differently in the processes of one
 * runtime on a loaded machine (ranks on different paths: the W=2 tokens
 * of tests/test_runtime.c left W=1's under ASan), and the environment is
 * what every process of a runtime shares. Either way the path is the same
 * for every m: a row of Y never depends on how many rows were batched with
 * it (a request's tokens are the same alone or in a batch of 16,
 * tests/serve), which choosing by m would break.
 *
 * Blocking: K in slices of KC (a register tile's W rows stay in L1), X in
 * chunks of MC rows (in L2); each NR-row strip of W is read from memory
 * once per chunk and reused by all of the chunk's MR-row tiles. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
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

#if defined(__x86_64__) || defined(__i386__)

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE_T TARGET static inline __attribute__((always_inline))

#define KC 2048 /* K slice, bf16 elements: 4 KiB a row of W */
#define MC 64	/* rows of X a chunk: 64 x 4 KiB = 256 KiB of X, in L2 */
#define MR 4	/* register tile: MR x NR accumulators, MR + NR loads a step */
#define NR 4
#define N_GRAIN 16 /* rows of W handed to a thread at a time (a multiple of NR) */

struct job {
	const struct shmrt_matmul_args *a;
	const uint16_t *xb; /* X in bf16: m rows of kp, zero beyond k */
	int64_t kp;	    /* k rounded up to 32 */
};

/* Row m of X to bf16, 32 values at a time; the padding to kp is zeros. */
TARGET static void round_row(const float *x, int64_t k, int64_t kp, uint16_t *out)
{
	int64_t i = 0;
	for (; i + 32 <= k; i += 32) {
		__m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
		_mm512_storeu_si512(out + i, (__m512i)v);
	}
	if (i < kp) {
		int64_t left = k - i;
		__mmask16 lo = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		__mmask16 hi = left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
		__m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16), _mm512_maskz_loadu_ps(lo, x + i));
		_mm512_storeu_si512(out + i, (__m512i)v);
	}
}

/* The part of a tile's prefetch: bytes [from, to) of a region of rows,
 * `slice` bytes of each at `ld` bytes apart, from pf (into L2: the tile's
 * own W fills L1). */
struct pf_region {
	const char *pf;
	int64_t ld, slice, from, to;
};

INLINE_T void prefetch_step(const struct pf_region *p, int64_t per_step, int64_t step)
{
	int64_t b = p->from + step * per_step, end = b + per_step < p->to ? b + per_step : p->to;
	for (; b < end; b += 64)
		__builtin_prefetch(p->pf + b / p->slice * p->ld + b % p->slice, 0, 2);
}

/* ---- which path ---- */

static _Atomic int mode = -1; /* enum shmrt_bf16dot_mode, -1 until read */

void shmrt_cpu_set_bf16dot(enum shmrt_bf16dot_mode m)
{
	atomic_store(&mode, (int)m);
}

bool shmrt_cpu_bf16dot_used(const struct shmrt_matmul_args *a)
{
	if (a->w_dtype != SHMRT_BF16 || shmrt_cpu_isa() < SHMRT_ISA_AVX512BF16)
		return false;
	int m = atomic_load_explicit(&mode, memory_order_relaxed);
	if (m < 0) {
		const char *env = getenv("SHMRT_CPU_BF16DOT");
		m = env && !strcmp(env, "on") ? SHMRT_BF16DOT_ON : SHMRT_BF16DOT_OFF;
		atomic_store_explicit(&mode, m, memory_order_relaxed);
	}
	return m == SHMRT_BF16DOT_ON;
}

/* ---- the kernel ---- */

/* Y[m0 .. m0+mr) x [n0 .. n0+nr) over K slice [k0, k0+kc): y = sum
 * (+ bias) on the first slice, y += sum on the others; meanwhile the
 * tile's part of the next strip of W is asked for, spread over its steps.
 * mr and nr are constants at each call site (the switch in strip), so the
 * accumulators stay in registers. Rows of W past n repeat the last row;
 * their sums are dropped. The slice's last step masks W past k (X is zero
 * there, but W holds the next row's values, or nothing). */
INLINE_T void tile(const struct job *j, int m0, int mr, int64_t n0, int nr, int64_t k0, int64_t kc,
		   const struct pf_region *pf)
{
	const struct shmrt_matmul_args *a = j->a;
	const uint16_t *x[MR], *w[NR];
	for (int m = 0; m < mr; m++)
		x[m] = j->xb + (int64_t)(m0 + m) * j->kp + k0;
	for (int r = 0; r < nr; r++)
		w[r] = (const uint16_t *)a->w + (n0 + r < a->n ? n0 + r : a->n - 1) * (int64_t)a->k + k0;
	__m512 acc[MR][NR];
#pragma GCC unroll 4
	for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++)
			acc[m][r] = _mm512_setzero_ps();
	int64_t full = k0 + kc <= a->k ? kc : a->k - k0; /* W elements this slice really has */
	int64_t k = 0, steps = (full + 31) / 32;
	int64_t per_step = ((pf->to - pf->from + steps - 1) / steps + 63) & ~(int64_t)63;
	for (; k + 32 <= full; k += 32) {
		__m512bh xv[MR];
		prefetch_step(pf, per_step, k / 32);
#pragma GCC unroll 4
		for (int m = 0; m < mr; m++)
			xv[m] = (__m512bh)_mm512_loadu_si512(x[m] + k);
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++) {
			__m512bh wv = (__m512bh)_mm512_loadu_si512(w[r] + k);
#pragma GCC unroll 4
			for (int m = 0; m < mr; m++)
				acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv[m], wv);
		}
	}
	if (k < full) {
		__mmask32 mask = (__mmask32)((1ull << (full - k)) - 1);
#pragma GCC unroll 4
		for (int r = 0; r < nr; r++) {
			__m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, w[r] + k);
#pragma GCC unroll 4
			for (int m = 0; m < mr; m++)
				acc[m][r] = _mm512_dpbf16_ps(acc[m][r], (__m512bh)_mm512_loadu_si512(x[m] + k), wv);
		}
	}
	float *y = a->y;
	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr && n0 + r < a->n; r++) {
			float s = _mm512_reduce_add_ps(acc[m][r]), *dst = y + (int64_t)(m0 + m) * a->n + n0 + r;
			if (k0 > 0)
				*dst += s;
			else
				*dst = s + (a->bias ? shmrt_load(a->bias, a->bias_dtype, n0 + r) : 0.0f);
		}
}

/* One strip of NR rows of W from n0 against rows [mc, mc_end) of X. Only
 * the first tile reads the strip from memory; so that memory stays busy
 * during the others too, each tile asks for its share of the next strip's
 * K slice (next_rows rows): with the hardware prefetcher alone, batch 8
 * read W at half the speed of the fp32 path, which does the same. */
INLINE_T void strip(const struct job *j, int mc, int mc_end, int64_t n0, int64_t k0, int64_t kc, int64_t next_rows)
{
	const struct shmrt_matmul_args *a = j->a;
	int tiles = (mc_end - mc + MR - 1) / MR;
	int64_t slice = (k0 + kc <= a->k ? kc : a->k - k0) * 2, share = (next_rows * slice / tiles + 63) & ~(int64_t)63;
	struct pf_region pf = {(const char *)a->w + ((n0 + NR) * a->k + k0) * 2, a->k * 2, slice, 0, 0};
	int m0 = mc;
	for (; m0 < mc_end; m0 += MR) {
		pf.to = pf.from + share < next_rows * slice ? pf.from + share : next_rows * slice;
		switch (mc_end - m0) {
		case 1:
			tile(j, m0, 1, n0, NR, k0, kc, &pf);
			break;
		case 2:
			tile(j, m0, 2, n0, NR, k0, kc, &pf);
			break;
		case 3:
			tile(j, m0, 3, n0, NR, k0, kc, &pf);
			break;
		default:
			tile(j, m0, MR, n0, NR, k0, kc, &pf);
		}
		pf.from = pf.to;
	}
}

TARGET static void run(void *ctx, int tid, int n_threads)
{
	struct job *j = ctx;
	const struct shmrt_matmul_args *a = j->a;
	int64_t groups = (a->n + N_GRAIN - 1) / N_GRAIN, g0, g1;
	shmrt_pool_part(groups, tid, n_threads, &g0, &g1);
	int64_t n_begin = g0 * N_GRAIN, n_end = g1 * N_GRAIN < a->n ? g1 * N_GRAIN : a->n;
	for (int64_t k0 = 0; k0 < j->kp; k0 += KC) {
		int64_t kc = j->kp - k0 < KC ? j->kp - k0 : KC;
		for (int mc = 0; mc < a->m; mc += MC) {
			int mc_end = a->m - mc < MC ? a->m : mc + MC;
			for (int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
				int64_t left = n_end - (n0 + NR);
				strip(j, mc, mc_end, n0, k0, kc, left < 0 ? 0 : left < NR ? left : NR);
			}
		}
	}
}

int shmrt_cpu_matmul_bf16dot(const struct shmrt_matmul_args *a)
{
	int64_t kp = (a->k + 31) / 32 * 32;
	struct job j = {a, aligned_alloc(64, (size_t)a->m * (size_t)kp * sizeof(uint16_t)), kp};
	if (!j.xb)
		return shmrt_fail(ENOMEM, "matmul: no memory for x in bf16 (%d x %lld)", a->m, (long long)kp);
	for (int m = 0; m < a->m; m++)
		round_row((const float *)a->x + (int64_t)m * a->k, a->k, kp, (uint16_t *)j.xb + (int64_t)m * kp);
	shmrt_pool_run(run, &j);
	free((void *)j.xb);
	return 0;
}

#else

void shmrt_cpu_set_bf16dot(enum shmrt_bf16dot_mode m)
{
	(void)m;
}

bool shmrt_cpu_bf16dot_used(const struct shmrt_matmul_args *a)
{
	(void)a;
	return false;
}

int shmrt_cpu_matmul_bf16dot(const struct shmrt_matmul_args *a)
{
	(void)a;
	return shmrt_fail(ENOTSUP, "matmul: no bf16 dot product on this architecture");
}

#endif
