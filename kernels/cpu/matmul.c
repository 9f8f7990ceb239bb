/* Fast matmul Y = X W^T (+ bias): x f32, w f32|bf16|f16, y f32.
 *
 * Block-format W (Q8_0 ... Q6_K) goes to matmul_quant.c, bf16 W with
 * several rows of X to matmul_bf16dot.c where the CPU has AVX512-BF16.
 *
 * Threads split the rows of W (output columns); each runs register tiles
 * compiled for the CPU's vector level (matmul_impl.h, cpu_isa.h). Small M
 * (decode) is bound by reading W once; large M (prefill) by arithmetic,
 * with W converted to fp32 in cache-sized strips. */
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

/* From this many rows of X the blocked prefill loop is used; below it the
 * decode tiles (W rows read from L1 by every 4-row pass over X). Issue 16:
 * with 32 the batched decode of 32 and 64 sequences took the prefill path
 * and gave fewer tokens/s than batch 8. Measured on the 2-vCPU EPYC (load
 * 4, bf16 W, decode tiles against prefill, two interleaved pairs, GFLOP/s):
 * small preset's layer shapes (k = 768, 2048) m = 64 176/175 against
 * 152/152, m = 96 169/178 against 160/163, m = 128 164/176 against
 * 168/156; 4096 x 4096, 11008 x 4096, 4096 x 11008 m = 32 182/188 against
 * 94/119, m = 64 194/191 against 117/144, m = 128 183/156 against
 * 151/153. */
#define PREFILL_MIN_M 128
#define KC 1024 /* prefill: K slice; MC x KC fp32 of X is 512 KiB, in L2 */
#define MC 128

struct matmul_impl {
	void (*decode)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end, const float *xperm);
	void (*prefill)(const struct shmrt_matmul_args *a, int64_t n_begin, int64_t n_end, float *wbuf);
	void (*permute_x)(const struct shmrt_matmul_args *a, float *xperm); /* for bf16 decode */
};

#define IMPL(name) name##_generic
#define IMPL_TARGET
#define VF v4f
#define VH v4h
#define VU v4u
#define VW 4
#define MR 2
#define NR 4
#define LOAD_F16(p) ((v4f){shmrt_f16_to_f32((p)[0]), shmrt_f16_to_f32((p)[1]), shmrt_f16_to_f32((p)[2]), \
			   shmrt_f16_to_f32((p)[3])})
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef MR
#undef NR
#undef LOAD_F16

#if defined(__x86_64__) || defined(__i386__)
#define IMPL(name) name##_avx2
#define IMPL_TARGET __attribute__((target("avx2,fma,f16c")))
#define VF v8f
#define VH v8h
#define VU v8u
#define VW 8
#define MR 2
#define NR 4
#define LOAD_F16(p) ((v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))))
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef MR
#undef NR
#undef LOAD_F16

#define IMPL(name) name##_avx512
#define IMPL_TARGET __attribute__((target("avx512f,avx2,fma,f16c")))
#define VF v16f
#define VH v16h
#define VU v16u
#define VW 16
#define MR 4
#define NR 4
#define LOAD_F16(p) ((v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p))))
#include "matmul_impl.h"
#undef IMPL
#undef IMPL_TARGET
#undef VF
#undef VH
#undef VU
#undef VW
#undef MR
#undef NR
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

/* W rows are handed out in groups of 16 (a multiple of every NR), so
 * no two threads share a register tile. */
#define N_GRAIN 16

struct job {
	const struct shmrt_matmul_args *a;
	const struct matmul_impl *impl;
	float *wbufs; /* prefill: NR x KC floats per thread */
	float *xperm; /* bf16 decode: X permuted, m x k */
};

static void run(void *ctx, int tid, int n_threads)
{
	struct job *j = ctx;
	int64_t groups = (j->a->n + N_GRAIN - 1) / N_GRAIN, g0, g1;
	shmrt_pool_part(groups, tid, n_threads, &g0, &g1);
	int64_t n0 = g0 * N_GRAIN, n1 = g1 * N_GRAIN < j->a->n ? g1 * N_GRAIN : j->a->n;
	if (n0 >= n1)
		return;
	if (j->wbufs)
		j->impl->prefill(j->a, n0, n1, j->wbufs + (size_t)tid * N_GRAIN * KC);
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
	struct job j = {a, impl_for(shmrt_cpu_isa()), NULL, NULL};
	if (a->m >= PREFILL_MIN_M) {
		j.wbufs = malloc(sizeof(float) * N_GRAIN * KC * shmrt_pool_threads());
		if (!j.wbufs)
			return shmrt_fail(ENOMEM, "matmul: no memory for conversion buffers");
	} else if (a->w_dtype == SHMRT_BF16) {
		j.xperm = malloc(sizeof(float) * (size_t)a->m * a->k);
		if (!j.xperm)
			return shmrt_fail(ENOMEM, "matmul: no memory for the permuted x");
		j.impl->permute_x(a, j.xperm);
	}
	shmrt_pool_run(run, &j);
	free(j.wbufs);
	free(j.xperm);
	return 0;
}
