/* Fast matmul Y = X W^T (+ bias): x f32, w f32|bf16|f16, y f32.
 *
 * Block-format W (Q8_0 ... Q6_K) goes to matmul_quant.c, bf16 W to
 * matmul_bf16dot.c when its AVX512-BF16 dot product is asked for
 * (shmrt_cpu_bf16dot_used).
 *
 * Threads split the rows of W (output columns); each runs register tiles
 * compiled for the CPU's vector level (matmul_impl.h, cpu_isa.h). Small M
 * (decode) is bound by reading W once; large M (prefill) by arithmetic:
 * outer-product tiles over X packed in panels, W converted to fp32 in
 * cache-sized strips (matmul_impl.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_isa.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "vec.h"

/* From this many rows of X the prefill tiles are used (outer products over
 * X packed in panels of 32 rows: matmul_impl.h); below it the decode tiles
 * (W rows read from L1 by every 4-row pass over X). Measured on the 2-vCPU
 * Xeon (model 207), bf16 W from DRAM, best of 3 x 30 calls, prefill
 * against decode tiles, ms: 2048 x 768 m = 32 0.55 against 0.60, m = 64
 * 0.88 against 1.26, m = 128 1.56 against 2.90; 4096 x 4096 m = 32 5.9
 * against 8.8, m = 64 9.8 against 14.4; at m = 16 the prefill tiles cost
 * what they cost at 32 (0.52) and the decode tiles 0.31. (The dot-product
 * prefill tiles these replaced lost to the decode tiles up to m = 128.) */
#define PREFILL_MIN_M 32
#define WBUF_FLOATS 6144 /* prefill: a strip of W in fp32, per thread (matmul_impl.h's PNR x PKC) */
#define XP 32 /* prefill: rows of X a panel, a multiple of every level's tile (matmul_impl.h's PM) */

/* The next strip of W for a tile to ask for (into L2) while it computes:
 * PNR rows of `lines` lines from base, ld bytes apart, one every `every`
 * steps. With few tiles per strip (batched decode: m = 32 to 64) the
 * strips came from DRAM while the FMAs waited. */
struct pnext {
	const char *base;
	int64_t ld;
	int lines, every;
};

struct matmul_impl {
	void (*decode)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end, const float *xperm);
	void (*prefill)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end, float *wbuf, const float *xt);
	void (*permute_x)(const struct shmrt_matmul_args *a, float *xperm); /* for bf16 decode */
};

#define IMPL(name) name##_generic
#define IMPL_TARGET
#define VF v4f
#define VH v4h
#define VU v4u
#define VW 4
#define PNR 4
#define PMV 2
#define LOAD_F16(p) ((v4f){shmrt_f16_to_f32((p)[0]), shmrt_f16_to_f32((p)[1]), shmrt_f16_to_f32((p)[2]), \
			   shmrt_f16_to_f32((p)[3])})
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef PNR
#undef PMV
#undef LOAD_F16

#if defined(__x86_64__) || defined(__i386__)
#define IMPL(name) name##_avx2
#define IMPL_TARGET __attribute__((target("avx2,fma,f16c")))
#define VF v8f
#define VH v8h
#define VU v8u
#define VW 8
#define PNR 4
#define PMV 2
#define LOAD_F16(p) ((v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))))
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef PNR
#undef PMV
#undef LOAD_F16

#define IMPL(name) name##_avx512
#define IMPL_TARGET __attribute__((target("avx512f,avx2,fma,f16c")))
#define VF v16f
#define VH v16h
#define VU v16u
#define VW 16
#define PNR 8
#define PMV 2
#define LOAD_F16(p) ((v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p))))
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef PNR
#undef PMV
#undef LOAD_F16
#endif

static const struct matmul_impl *impl_for(enum shmrt_cpu_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
	if (isa >= SHMRT_ISA_AVX512)
		return &impl_avx512;
	if (isa == SHMRT_ISA_AVX2)
		return &impl_avx2;
#endif
	(void)isa;
	return &impl_generic;
}

/* W rows are handed out in groups of 16 (a multiple of every tile's rows
 * of W), so no two threads share a register tile. */
#define N_GRAIN 16

struct job {
	const struct shmrt_matmul_args *a;
	const struct matmul_impl *impl;
	float *wbufs; /* prefill: WBUF_FLOATS per thread */
	float *xt;    /* prefill: X in panels of XP rows, [k][XP] each, zero past m */
	float *xperm; /* bf16 decode: X permuted, m x k */
};

/* Prefill: X packed into panels by the pool, threads taking panels; a
 * panel is written in blocks of 16 values of K, each reading a line of
 * every row. */
static void pack_x(void *ctx, int tid, int n_threads)
{
	struct job *j = ctx;
	const struct shmrt_matmul_args *a = j->a;
	int64_t p0, p1;
	shmrt_pool_part((a->m + XP - 1) / XP, tid, n_threads, &p0, &p1);
	for (int64_t p = p0; p < p1; p++) {
		float *panel = j->xt + p * XP * a->k;
		int rows = a->m - p * XP < XP ? (int)(a->m - p * XP) : XP;
		for (int64_t k0 = 0; k0 < a->k; k0 += 16) {
			int64_t kn = a->k - k0 < 16 ? a->k - k0 : 16;
			for (int i = 0; i < rows; i++) {
				const float *x = (const float *)a->x + (p * XP + i) * a->k + k0;
				for (int64_t kk = 0; kk < kn; kk++)
					panel[(k0 + kk) * XP + i] = x[kk];
			}
			for (int64_t kk = 0; kk < kn && rows < XP; kk++)
				memset(panel + (k0 + kk) * XP + rows, 0, sizeof(float) * (size_t)(XP - rows));
		}
	}
}

static void run(void *ctx, int tid, int n_threads)
{
	struct job *j = ctx;
	int64_t groups = (j->a->n + N_GRAIN - 1) / N_GRAIN, g0, g1;
	shmrt_pool_part(groups, tid, n_threads, &g0, &g1);
	int64_t n0 = g0 * N_GRAIN, n1 = g1 * N_GRAIN < j->a->n ? g1 * N_GRAIN : j->a->n;
	if (n0 >= n1)
		return;
	if (j->wbufs)
		j->impl->prefill(j->a, n0, n1, j->wbufs + (size_t)tid * WBUF_FLOATS, j->xt);
	else
		j->impl->decode(j->a, n0, n1, j->xperm);
}

int shmrt_cpu_matmul(void *stream, const struct shmrt_matmul_args *a)
{
	(void)stream;
	int rc = shmrt_check_matmul(a);
	if (rc)
		return rc;
	if (a->x_dtype != SHMRT_F32 || a->y_dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "matmul (cpu): x and y must be f32, not %s and %s",
				  shmrt_dtype_name(a->x_dtype), shmrt_dtype_name(a->y_dtype));
	if (a->m == 0)
		return 0;
	if (shmrt_dtype_is_quantized(a->w_dtype))
		return shmrt_cpu_matmul_quant(a);
	if (shmrt_cpu_bf16dot_used(a))
		return shmrt_cpu_matmul_bf16dot(a);
	struct job j = {.a = a, .impl = impl_for(shmrt_cpu_isa())};
	if (a->m >= PREFILL_MIN_M) {
		size_t xt_bytes = sizeof(float) * (size_t)((a->m + XP - 1) / XP * XP) * (size_t)a->k;
		j.wbufs = malloc(sizeof(float) * WBUF_FLOATS * shmrt_pool_threads());
		j.xt = aligned_alloc(64, xt_bytes);
		if (!j.wbufs || !j.xt) {
			free(j.wbufs);
			free(j.xt);
			return shmrt_fail(ENOMEM, "matmul: no memory for the prefill buffers (x packed: %zu bytes)",
					  xt_bytes);
		}
		shmrt_pool_run(pack_x, &j);
	} else if (a->w_dtype == SHMRT_BF16) {
		/* 64-byte aligned: a tile's loads of X would each span two
		 * cache lines from malloc's 16-byte alignment */
		j.xperm = aligned_alloc(64, (sizeof(float) * (size_t)a->m * a->k + 63) & ~(size_t)63);
		if (!j.xperm)
			return shmrt_fail(ENOMEM, "matmul: no memory for the permuted x");
		j.impl->permute_x(a, j.xperm);
	}
	shmrt_pool_run(run, &j);
	free(j.wbufs);
	free(j.xt);
	free(j.xperm);
	return 0;
}
