/* The CPU's compute peaks for the benchmarks (issue 16): fp32 FMA and,
 * where the CPU has AVX512-BF16, the bf16 dot product (VDPBF16PS), from
 * registers on every thread of the kernels' pool; and the core clock, so
 * that a peak can be checked against what a core can do in a cycle.
 *
 * A peak is a maximum: a burst slowed by another job says nothing about
 * the hardware, so callers keep the best of several (kb_cpu_peak). The
 * clock is a chain of dependent integer adds (one a cycle on every x86
 * core since the Pentium Pro; the best of several chains): the FLOPs a
 * cycle a thread the bursts reach are printed beside the most the
 * instructions allow (kb_peak_flops_per_cycle_max). */
#include <math.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu_isa.h"
#include "cpu_pool.h"
#include "clock.h"
#include "kernels.h"
/* vec.h's vectors never cross a call between targets (always inlined). */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "vec.h"

/* 12 independent chains: enough to cover the latency (4-6 cycles) times
 * the ports (2) of FMA and VDPBF16PS on current x86 cores. */
#define CHAINS 12
#define ITERS 1000000 /* 12M instructions a thread: 6M cycles at 2 a cycle */
#define CLOCK_ADDS 5000000 /* about 2 ms at 3 GHz */

struct peak_job {
	enum kb_peak kind;
	enum shmrt_cpu_isa isa;
	float sink[256]; /* per-thread results, so no loop is optimised away */
};

static float fma_generic(void)
{
	v4f acc[CHAINS];
	for (int c = 0; c < CHAINS; c++)
		acc[c] = (v4f){0} + (float)c;
	for (int i = 0; i < ITERS; i++)
		for (int c = 0; c < CHAINS; c++)
			acc[c] = acc[c] * 0.999999f + 1e-3f; /* SSE2 has no FMA: mul, add */
	float s = 0;
	for (int c = 0; c < CHAINS; c++)
		s += acc[c][0];
	return s;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static float fma_avx2(void)
{
	__m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-3f);
	for (int c = 0; c < CHAINS; c++)
		acc[c] = _mm256_set1_ps((float)c);
	for (int i = 0; i < ITERS; i++)
		for (int c = 0; c < CHAINS; c++)
			acc[c] = _mm256_fmadd_ps(acc[c], m, a);
	float s = 0;
	for (int c = 0; c < CHAINS; c++)
		s += _mm256_cvtss_f32(acc[c]);
	return s;
}

__attribute__((target("avx512f"))) static float fma_avx512(void)
{
	__m512 acc[CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-3f);
	for (int c = 0; c < CHAINS; c++)
		acc[c] = _mm512_set1_ps((float)c);
	for (int i = 0; i < ITERS; i++)
		for (int c = 0; c < CHAINS; c++)
			acc[c] = _mm512_fmadd_ps(acc[c], m, a);
	float s = 0;
	for (int c = 0; c < CHAINS; c++)
		s += _mm512_cvtss_f32(acc[c]);
	return s;
}

/* 32 bf16 pairs into 16 fp32 lanes an instruction: 64 FLOPs. */
__attribute__((target("avx512f,avx512bf16"))) static float bf16dot_avx512(void)
{
	__m512 acc[CHAINS];
	__m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3a83); /* 1, ~1e-3 */
	for (int c = 0; c < CHAINS; c++)
		acc[c] = _mm512_set1_ps((float)c);
	for (int i = 0; i < ITERS; i++)
		for (int c = 0; c < CHAINS; c++)
			acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
	float s = 0;
	for (int c = 0; c < CHAINS; c++)
		s += _mm512_cvtss_f32(acc[c]);
	return s;
}
#endif

/* FLOPs one instruction of the burst does, and whether this CPU and level
 * can run it. */
static double flops_per_insn(enum kb_peak kind, enum shmrt_cpu_isa isa)
{
	if (kind == KB_PEAK_BF16DOT)
		return isa >= SHMRT_ISA_AVX512BF16 ? 64 : 0;
	return isa >= SHMRT_ISA_AVX512 ? 32 : isa == SHMRT_ISA_AVX2 ? 16 : 8;
}

double kb_peak_flops_per_cycle_max(enum kb_peak kind, enum shmrt_cpu_isa isa)
{
	/* Two vector FMA (and dot product) ports a core on Intel since
	 * Haswell (Xeon Gold/Platinum with AVX-512: two 512-bit) and AMD since
	 * Zen 2 (Zen 4: two 256-bit halves, so one 512-bit FMA a cycle: the
	 * measured figure there is half this bound); SSE2's mul and add issue
	 * on one port each. Intel's optimization manual, section 2.x "port
	 * binding", and Agner Fog's instruction tables. */
	return 2 * flops_per_insn(kind, isa);
}

static void burst_run(void *ctx, int tid, int n_threads)
{
	(void)n_threads;
	struct peak_job *j = ctx;
	float s;
#if defined(__x86_64__) || defined(__i386__)
	if (j->kind == KB_PEAK_BF16DOT)
		s = bf16dot_avx512();
	else if (j->isa >= SHMRT_ISA_AVX512)
		s = fma_avx512();
	else if (j->isa == SHMRT_ISA_AVX2)
		s = fma_avx2();
	else
#endif
		s = fma_generic();
	j->sink[tid & 255] += s;
}

double kb_cpu_peak_burst(enum kb_peak kind)
{
	enum shmrt_cpu_isa isa = shmrt_cpu_isa();
	double per_insn = flops_per_insn(kind, isa);
	if (per_insn == 0)
		return 0;
	struct peak_job j = {.kind = kind, .isa = isa};
	int64_t t0 = shmrt_now_ns();
	shmrt_pool_run(burst_run, &j);
	return per_insn * ITERS * CHAINS * shmrt_pool_threads() / (double)(shmrt_now_ns() - t0);
}

double kb_cpu_peak(enum kb_peak kind, int bursts)
{
	double best = 0;
	for (int i = 0; i < bursts; i++) {
		double g = kb_cpu_peak_burst(kind);
		best = g > best ? g : best;
	}
	return best;
}

#if defined(__x86_64__) || defined(__i386__)
/* One dependent add a cycle. */
static void clock_run(void *ctx, int tid, int n_threads)
{
	(void)n_threads;
	struct peak_job *j = ctx;
	uint64_t x = (uint64_t)tid;
	for (int i = 0; i < CLOCK_ADDS; i++)
		__asm__ volatile("add $1, %0" : "+r"(x));
	j->sink[tid & 255] += (float)x;
}
#endif

double kb_cpu_clock_ghz(void)
{
#if defined(__x86_64__) || defined(__i386__)
	struct peak_job j = {0};
	int64_t t0 = shmrt_now_ns();
	shmrt_pool_run(clock_run, &j);
	return CLOCK_ADDS / (double)(shmrt_now_ns() - t0);
#else
	return NAN; /* no chain of known latency written for this architecture */
#endif
}
