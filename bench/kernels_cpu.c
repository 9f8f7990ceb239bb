/* shmrt bench kernels, CPU part: the limits (memory read bandwidth, the
 * STREAM triad, the compute peaks of bench/cpu_peak.c), measured on the kernels' own thread pool
 * and vector level, then decode and prefill matmul and attention on a CPU
 * backend.
 *
 * Memory-bound kernels are rated against read bandwidth: a decode matmul
 * or decode attention only reads (W, the KV cache), so reading the same
 * bytes as fast as the cores can is the most it could reach. Compute-bound
 * ones are rated against FMA throughput from registers.
 *
 * Paired samples: this machine may be shared (on the 2-vCPU build VM other
 * jobs take the cores for seconds at a time, and memory bandwidth with
 * them), so every timed call of a kernel is preceded by a measurement of
 * its limit (reading the same number of bytes from memory not in cache,
 * or an FMA burst). A memory-bound kernel's fraction is the median over
 * calls of (the call's rate / the read bandwidth just before it); a
 * compute-bound one's is its median rate over the median of all FMA
 * bursts. The limits reported are the medians of all those samples. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "shmrt/shmrt.h"
#include "cpu_isa.h"
#include "cpu_pool.h"
#include "bench.h"
#include "clock.h"
#include "kernels.h"
#include "cpu_kernels.h"
/* vec.h's vectors never cross a call between targets (always inlined). */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "vec.h"
#include "array_size.h"

struct budget {
	int64_t case_ns;  /* kernel time of one case, at least min_calls calls */
	int min_calls;
	size_t mem_min;   /* the standalone bandwidth buffers: at least this */
	int64_t limit_ns; /* each standalone limit */
};

static const struct budget full_budget = {300000000, 5, (size_t)256 << 20, 300000000};
static const struct budget quick_budget = {10000000, 2, (size_t)16 << 20, 10000000};

#define MAX_CALLS 4096

/* ---- the limits ---- */

/* Threads take contiguous parts of the buffers, cut at multiples of 64
 * floats (the unrolled vector loops' step). */
enum mem_op { MEM_READ, MEM_TRIAD };

struct mem_job {
	enum mem_op op;
	float *a, *b, *c;
	size_t n; /* floats per array, a multiple of 64 */
	enum shmrt_cpu_isa isa;
	float sink[256]; /* per-thread results, so no loop is optimised away */
};

VEC_INLINE float read_sum(const float *p, size_t n)
{
	v16f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	for (size_t i = 0; i < n; i += 64) {
		s0 += VLOAD(v16f, p + i);
		s1 += VLOAD(v16f, p + i + 16);
		s2 += VLOAD(v16f, p + i + 32);
		s3 += VLOAD(v16f, p + i + 48);
	}
	return v16_sum((s0 + s1) + (s2 + s3));
}

VEC_INLINE float triad(float *a, const float *b, const float *c, size_t n)
{
	for (size_t i = 0; i < n; i += 16)
		VSTORE(a + i, VLOAD(v16f, b + i) + 3.0f * VLOAD(v16f, c + i));
	return a[0];
}

VEC_INLINE float mem_body(struct mem_job *j, size_t i0, size_t n)
{
	return j->op == MEM_READ ? read_sum(j->a + i0, n) : triad(j->a + i0, j->b + i0, j->c + i0, n);
}

static float mem_generic(struct mem_job *j, size_t i0, size_t n)
{
	return mem_body(j, i0, n);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static float mem_avx2(struct mem_job *j, size_t i0, size_t n)
{
	return mem_body(j, i0, n);
}

__attribute__((target("avx512f"))) static float mem_avx512(struct mem_job *j, size_t i0, size_t n)
{
	return mem_body(j, i0, n);
}
#endif

static void mem_run(void *ctx, int tid, int n_threads)
{
	struct mem_job *j = ctx;
	int64_t b0, b1;
	shmrt_pool_part((int64_t)(j->n / 64), tid, n_threads, &b0, &b1);
	size_t i0 = (size_t)b0 * 64, n = (size_t)(b1 - b0) * 64;
	float s;
#if defined(__x86_64__) || defined(__i386__)
	if (j->isa >= SHMRT_ISA_AVX512)
		s = mem_avx512(j, i0, n);
	else if (j->isa == SHMRT_ISA_AVX2)
		s = mem_avx2(j, i0, n);
	else
#endif
		s = mem_generic(j, i0, n);
	j->sink[tid & 255] += s;
}

/* ---- paired timing ---- */

struct cpu_run {
	const struct kb_opts *o;
	const struct budget *bu;
	const struct shmrt_backend *b;
	struct kb_report *r;
	enum shmrt_cpu_isa isa;
	double mem_v[4 * MAX_CALLS]; /* every limit sample */
	int n_mem;
	double peak[2]; /* the best burst of each enum kb_peak so far */
};

static void add_sample(double *v, int *n, double x)
{
	if (*n < 4 * MAX_CALLS)
		v[(*n)++] = x;
}

/* Reads n regions on the pool, one after another: GB/s, also recorded as
 * a sample of the limit. A region's tail beyond a multiple of 256 bytes is
 * not read (nor counted). */
static double read_regions(struct cpu_run *cr, const void *const *p, const size_t *bytes, int n)
{
	double total = 0;
	int64_t t0 = shmrt_now_ns();
	for (int i = 0; i < n; i++) {
		struct mem_job j = {.op = MEM_READ, .a = (float *)p[i], .n = bytes[i] / 256 * 64, .isa = cr->isa};
		shmrt_pool_run(mem_run, &j);
		total += (double)j.n * sizeof(float);
	}
	double gbs = total / (double)(shmrt_now_ns() - t0);
	add_sample(cr->mem_v, &cr->n_mem, gbs);
	return gbs;
}

/* One burst of a peak's instruction on every thread: GFLOP/s; the best
 * so far is kept as the peak. */
static double peak_burst(struct cpu_run *cr, enum kb_peak kind)
{
	double gflops = kb_cpu_peak_burst(kind);
	cr->peak[kind] = gflops > cr->peak[kind] ? gflops : cr->peak[kind];
	/* the clock the peaks are checked against, sampled beside them: a
	 * clock read only at the start, in a busy second, made a quiet
	 * run's FMA peak 99 FLOP/cycle a thread (the most is 64) */
	double ghz = kb_cpu_clock_ghz();
	cr->r->cpu_ghz = ghz > cr->r->cpu_ghz || isnan(cr->r->cpu_ghz) ? ghz : cr->r->cpu_ghz;
	return gflops;
}

static double fma_burst(struct cpu_run *cr)
{
	return peak_burst(cr, KB_PEAK_FMA);
}

/* The peak a compute-bound matmul could reach: bf16 W with several rows
 * of X runs on the bf16 dot product where the CPU has it
 * (kernels/cpu/matmul.c). */
static enum kb_peak mm_peak(const struct cpu_run *cr, const struct shmrt_matmul_args *a)
{
	return !strcmp(cr->b->name, "cpu") && shmrt_cpu_bf16dot_used(a) ? KB_PEAK_BF16DOT : KB_PEAK_FMA;
}

static const char *peak_limit_name(enum kb_peak kind)
{
	return kind == KB_PEAK_BF16DOT ? "cpu_bf16dot" : "cpu_fma";
}

/* A kernel case: call(ctx, i) runs the kernel (i counts calls, from 0);
 * limit(cr, ctx, i) measures the limit just before it and returns its
 * rate, in the unit of work / seconds * 1e-9 (GB/s or GFLOP/s). */
struct timed_case {
	int (*call)(void *ctx, int i);
	double (*limit)(struct cpu_run *cr, void *ctx, int i);
	void *ctx;
	double work; /* bytes or flops per call */
};

/* Median seconds per call and median fraction of the paired limit. The
 * first pair warms up and is dropped, unless that call alone took the
 * whole budget (the reference backend on big shapes). */
static int time_paired(struct cpu_run *cr, const struct timed_case *tc, double *median_s, double *fraction)
{
	double t[MAX_CALLS], f[MAX_CALLS];
	int n = 0, i = 0;
	int64_t spent = 0;
	for (;; i++) {
		double lim = tc->limit(cr, tc->ctx, i);
		int64_t t0 = shmrt_now_ns();
		int rc = tc->call(tc->ctx, i);
		int64_t t1 = shmrt_now_ns();
		if (rc < 0)
			return rc;
		if (i > 0 || t1 - t0 >= cr->bu->case_ns) {
			t[n] = (double)(t1 - t0) * 1e-9;
			f[n] = tc->work / t[n] * 1e-9 / lim;
			n++;
		}
		spent += t1 - t0;
		if (n >= MAX_CALLS || (n >= cr->bu->min_calls && spent >= cr->bu->case_ns) ||
		    (n > 0 && i == 0))
			break;
	}
	*median_s = kb_median(t, n);
	*fraction = kb_median(f, n);
	return 0;
}

/* ---- matmul ---- */

/* From this m on a matmul is rated as compute-bound. */
#define PREFILL_M 64

/* Decode: W rotates through n_w copies, 4x the last-level cache in all, as
 * a model's layers do; the limit before each call reads another copy, so
 * the call finds its W in memory (touched n_w touches ago). */
struct mm_case {
	const struct shmrt_backend *b;
	struct shmrt_matmul_args a;
	void **w;
	int n_w;
	size_t w_bytes;
};

static int mm_call(void *ctx, int i)
{
	struct mm_case *c = ctx;
	c->a.w = c->w[(2 * i + 1) % c->n_w];
	return c->b->matmul(NULL, &c->a);
}

static double mm_limit(struct cpu_run *cr, void *ctx, int i)
{
	struct mm_case *c = ctx;
	if (c->a.m >= PREFILL_M)
		return peak_burst(cr, mm_peak(cr, &c->a));
	const void *p = c->w[2 * i % c->n_w];
	return read_regions(cr, &p, &c->w_bytes, 1);
}

/* Decode and prefill shapes: m values for one W of n x k. */
struct mm_shape {
	int n, k;
	int ms[6];
	int n_ms;
};

/* Llama 2 7B's projections (q/k/v/o 4096 x 4096, gate/up 11008 x 4096,
 * down 4096 x 11008: config.json of meta-llama/Llama-2-7b-hf). */
static const struct mm_shape full_mm[] = {
	{4096, 4096, {1, 2, 4, 8, 16}, 5},
	{11008, 4096, {1, 2, 4, 8, 16}, 5},
	{4096, 11008, {1, 2, 4, 8, 16}, 5},
	{4096, 4096, {128, 512}, 2},
};
static const struct mm_shape quick_mm[] = {
	{2048, 1024, {1, 16}, 2},
	{256, 256, {64}, 1},
};

static const enum shmrt_dtype mm_dtypes[] = {SHMRT_BF16, SHMRT_F32};

/* Block-format W (matmul_quant.c): the decode GEMV of Llama 2 7B's q/k/v/o
 * shape in the two formats of the published files that matter most
 * (issue 17), read-bound like bf16; with --quick a shape in cache. */
static const struct mm_shape full_qmm = {4096, 4096, {1, 8}, 2};
static const struct mm_shape quick_qmm = {2048, 1024, {1}, 1};
static const enum shmrt_dtype qmm_dtypes[] = {SHMRT_Q8_0, SHMRT_Q4_1};

static int mm_rows(struct cpu_run *cr, const struct mm_shape *s, struct mm_case *c)
{
	for (int i = 0; i < s->n_ms; i++) {
		int m = s->ms[i];
		c->a = (struct shmrt_matmul_args){.m = m, .n = s->n, .k = s->k, .x = c->a.x, .x_dtype = SHMRT_F32,
						  .w_dtype = c->a.w_dtype, .y = c->a.y, .y_dtype = SHMRT_F32};
		bool prefill = m >= PREFILL_M;
		double flops = 2.0 * m * s->n * s->k, t = 0, frac = 0;
		struct timed_case tc = {mm_call, mm_limit, c, prefill ? flops : (double)c->w_bytes};
		int rc = time_paired(cr, &tc, &t, &frac);
		if (rc < 0)
			return rc;
		struct kb_row *w = kb_add(cr->r, "matmul", cr->b->name, "m=%d n=%d k=%d x=f32 w=%s", m, s->n, s->k,
					  shmrt_dtype_name(c->a.w_dtype));
		if (!w)
			return -ENOMEM;
		w->gb_per_s = (double)c->w_bytes / t * 1e-9;
		w->gflop_per_s = flops / t * 1e-9;
		w->fraction_of_limit = frac;
		w->fraction_of = prefill ? peak_limit_name(mm_peak(cr, &c->a)) : "cpu_mem";
		if (cr->o->verbose)
			fprintf(stderr, "matmul %s: %.3f ms, %.2f GB/s, %.1f GFLOP/s, %.0f%% of %s\n", w->shape, t * 1e3,
				w->gb_per_s, w->gflop_per_s, 100 * frac, w->fraction_of);
	}
	return 0;
}

static int mm_shape_run(struct cpu_run *cr, const struct mm_shape *s, enum shmrt_dtype wd)
{
	const struct shmrt_backend *b = cr->b;
	size_t w_bytes = shmrt_dtype_is_quantized(wd) ? shmrt_dtype_row_bytes(wd, s->k) * (size_t)s->n
						      : (size_t)s->n * s->k * shmrt_dtype_size(wd);
	struct mm_case c = {.b = b, .w_bytes = w_bytes};
	int max_m = s->ms[s->n_ms - 1];
	int n_w = cr->o->quick ? 2 : (int)((4 * bench_llc_bytes() + c.w_bytes - 1) / c.w_bytes);
	n_w = n_w < 2 ? 2 : n_w;
	void *x = NULL, *y = NULL;
	int rc = -ENOMEM;
	if (!(c.w = calloc((size_t)n_w, sizeof(void *))))
		goto out;
	for (; c.n_w < n_w; c.n_w++)
		if ((rc = kb_alloc_random(b, &c.w[c.n_w], (size_t)s->n * s->k, wd, 10 + (uint64_t)c.n_w)) < 0)
			goto out;
	if ((rc = kb_alloc_random(b, &x, (size_t)max_m * s->k, SHMRT_F32, 7)) < 0 ||
	    (rc = b->alloc(&y, (size_t)max_m * s->n * sizeof(float))) < 0)
		goto out;
	c.a = (struct shmrt_matmul_args){.x = x, .w_dtype = wd, .y = y};
	rc = mm_rows(cr, s, &c);
out:
	if (rc < 0)
		fprintf(stderr, "shmrt bench kernels: matmul n=%d k=%d w=%s on %s: %s\n", s->n, s->k,
			shmrt_dtype_name(wd), b->name, rc == -ENOMEM ? "out of memory" : shmrt_last_error());
	for (int i = 0; c.w && i < c.n_w; i++)
		b->free(c.w[i]);
	free(c.w);
	b->free(x);
	b->free(y);
	return rc;
}

/* ---- attention ---- */

/* Llama 3 8B's attention (32 query heads, 8 KV heads of 128) and Llama 2
 * 7B's (32 heads, no GQA); the CPU cache is f32. Decode caches are 128 MiB
 * or more, beyond any last-level cache. */
static const struct kb_attn_shape full_attn[] = {
	{8, 2048, 32, 8, 128, 16, false, SHMRT_F32},
	{1, 16384, 32, 8, 128, 16, false, SHMRT_F32},
	{16, 512, 32, 32, 128, 16, false, SHMRT_F32},
	{1, 1024, 32, 8, 128, 16, true, SHMRT_F32},
};
static const struct kb_attn_shape quick_attn[] = {
	{2, 256, 8, 2, 128, 16, false, SHMRT_F32},
	{1, 128, 8, 2, 64, 16, true, SHMRT_F32},
};

struct attn_case {
	const struct shmrt_backend *b;
	struct kb_attn t;
	bool prefill;
};

static int attn_call(void *ctx, int i)
{
	(void)i;
	struct attn_case *c = ctx;
	return c->b->attention(NULL, &c->t.a);
}

/* Decode: read the whole cache, K then V, as the call will. */
static double attn_limit(struct cpu_run *cr, void *ctx, int i)
{
	(void)i;
	struct attn_case *c = ctx;
	if (c->prefill)
		return fma_burst(cr);
	const void *p[2] = {c->t.k, c->t.v};
	size_t bytes[2] = {(size_t)c->t.kv_bytes / 2, (size_t)c->t.kv_bytes / 2};
	return read_regions(cr, p, bytes, 2);
}

static int attn_run(struct cpu_run *cr, const struct kb_attn_shape *s)
{
	struct attn_case c = {.b = cr->b, .prefill = s->prefill};
	char shape[160];
	kb_attn_shape_str(s, shape, sizeof(shape));
	int rc = kb_attn_make(cr->b, s, &c.t);
	double t = 0, frac = 0;
	struct timed_case tc = {attn_call, attn_limit, &c, s->prefill ? c.t.flops : c.t.kv_bytes};
	if (rc == 0)
		rc = time_paired(cr, &tc, &t, &frac);
	struct kb_row *w = NULL;
	if (rc == 0 && !(w = kb_add(cr->r, s->prefill ? "attention_prefill" : "attention_decode", cr->b->name, "%s",
				    shape)))
		rc = -ENOMEM;
	if (rc < 0) {
		fprintf(stderr, "shmrt bench kernels: attention %s on %s: %s\n", shape, cr->b->name,
			rc == -ENOMEM ? "out of memory" : shmrt_last_error());
		kb_attn_free(cr->b, &c.t);
		return rc;
	}
	/* Prefill reads the cache many times over from cache: no GB/s. */
	w->gb_per_s = s->prefill ? NAN : c.t.kv_bytes / t * 1e-9;
	w->gflop_per_s = c.t.flops / t * 1e-9;
	w->fraction_of = s->prefill ? "cpu_fma" : "cpu_mem";
	w->fraction_of_limit = frac;
	if (cr->o->verbose)
		fprintf(stderr, "attention %s: %.3f ms, %.2f GB/s, %.1f GFLOP/s, %.0f%% of %s\n", shape, t * 1e3,
			w->gb_per_s, w->gflop_per_s, 100 * frac, w->fraction_of);
	kb_attn_free(cr->b, &c.t);
	return 0;
}

/* For other benchmarks (bench e2e's decode ceiling): read bandwidth on the
 * kernels' pool, the same loop as the mem_read limit. */
double kb_cpu_mem_read_buf(const float *buf, size_t bytes, int64_t budget_ns)
{
	struct mem_job j = {.op = MEM_READ, .a = (float *)buf, .n = (bytes & ~(size_t)255) / sizeof(float),
			    .isa = shmrt_cpu_isa()};
	double v[MAX_CALLS];
	int n = 0;
	for (int64_t t0 = shmrt_now_ns(), t1 = t0; n < MAX_CALLS && (n < 3 || t1 - t0 < budget_ns);) {
		int64_t s0 = shmrt_now_ns();
		shmrt_pool_run(mem_run, &j);
		t1 = shmrt_now_ns();
		v[n++] = (double)(j.n * sizeof(float)) / (double)(t1 - s0);
	}
	return kb_median(v, n);
}

/* ---- the part ---- */

/* The standalone limits: read and triad over buffers 8x the last-level
 * cache (16 MiB with --quick), and FMA bursts. */
static int standalone_limits(struct cpu_run *cr, double *triad_gbs)
{
	size_t bytes = cr->o->quick ? cr->bu->mem_min : 8 * bench_llc_bytes();
	bytes = (bytes < cr->bu->mem_min ? cr->bu->mem_min : bytes) & ~(size_t)255;
	float *bufs[3] = {0};
	int rc = 0;
	for (int i = 0; i < 3; i++)
		if (!(bufs[i] = aligned_alloc(64, bytes)))
			rc = -ENOMEM;
	double v[MAX_CALLS];
	int n = 0;
	if (rc == 0) {
		for (int i = 0; i < 3; i++)
			memset(bufs[i], 0, bytes); /* fault the pages in */
		struct mem_job tri = {.op = MEM_TRIAD, bufs[0], bufs[1], bufs[2], bytes / sizeof(float), cr->isa, {0}};
		const void *p = bufs[0];
		for (int64_t t0 = shmrt_now_ns(); shmrt_now_ns() - t0 < cr->bu->limit_ns;)
			read_regions(cr, &p, &bytes, 1);
		for (int64_t t0 = shmrt_now_ns(), t1 = t0; n < MAX_CALLS && t1 - t0 < cr->bu->limit_ns;) {
			int64_t s0 = shmrt_now_ns();
			shmrt_pool_run(mem_run, &tri);
			t1 = shmrt_now_ns();
			v[n++] = 3.0 * (double)bytes / (double)(t1 - s0);
		}
		for (int64_t t0 = shmrt_now_ns(); shmrt_now_ns() - t0 < cr->bu->limit_ns;)
			fma_burst(cr);
		for (int64_t t0 = shmrt_now_ns(); cr->isa >= SHMRT_ISA_AVX512BF16 && shmrt_now_ns() - t0 < cr->bu->limit_ns;)
			peak_burst(cr, KB_PEAK_BF16DOT);
		*triad_gbs = kb_median(v, n);
	} else {
		fprintf(stderr, "shmrt bench kernels: no memory for the bandwidth buffers\n");
	}
	for (int i = 0; i < 3; i++)
		free(bufs[i]);
	return rc;
}

static int run_kernels(struct cpu_run *cr)
{
	const struct mm_shape *mm = cr->o->quick ? quick_mm : full_mm;
	int n_mm = cr->o->quick ? 2 : 4;
	const struct kb_attn_shape *at = cr->o->quick ? quick_attn : full_attn;
	int n_at = cr->o->quick ? 2 : 4;
	int rc = 0;
	for (int i = 0; rc == 0 && i < n_mm; i++)
		for (size_t d = 0; rc == 0 && d < ARRAY_SIZE(mm_dtypes); d++)
			rc = mm_shape_run(cr, &mm[i], mm_dtypes[d]);
	for (size_t d = 0; rc == 0 && d < ARRAY_SIZE(qmm_dtypes); d++)
		rc = mm_shape_run(cr, cr->o->quick ? &quick_qmm : &full_qmm, qmm_dtypes[d]);
	for (int i = 0; rc == 0 && i < n_at; i++)
		rc = attn_run(cr, &at[i]);
	return rc;
}

int kb_run_cpu(const struct kb_opts *o, const char *name, struct kb_report *r)
{
	struct cpu_run *cr = calloc(1, sizeof(*cr));
	if (!cr)
		return -ENOMEM;
	*cr = (struct cpu_run){.o = o, .bu = o->quick ? &quick_budget : &full_budget, .r = r, .isa = shmrt_cpu_isa()};
	int rc = shmrt_backend_get(name, &cr->b);
	if (rc < 0) {
		fprintf(stderr, "shmrt bench kernels: backend %s: %s\n", name, shmrt_last_error());
		free(cr);
		return rc;
	}
	r->cpu_threads = shmrt_pool_threads();
	r->cpu_isa = shmrt_cpu_isa_name(cr->isa);
	/* The limit rows come first; their figures are filled in at the end. */
	int at = r->n_rows;
	bool bf16dot = cr->isa >= SHMRT_ISA_AVX512BF16;
	if (!kb_add(r, "mem_read", "cpu", "threads=%d", r->cpu_threads) ||
	    !kb_add(r, "mem_triad", "cpu", "threads=%d", r->cpu_threads) ||
	    !kb_add(r, "fma_peak", "cpu", "isa=%s threads=%d", r->cpu_isa, r->cpu_threads) ||
	    (bf16dot && !kb_add(r, "bf16dot_peak", "cpu", "isa=%s threads=%d", r->cpu_isa, r->cpu_threads)))
		rc = -ENOMEM;
	for (int k = 0; k < 2; k++)
		r->cpu_flops_per_cycle_max[k] = kb_peak_flops_per_cycle_max((enum kb_peak)k, cr->isa);
	double triad = NAN;
	if (rc == 0)
		rc = standalone_limits(cr, &triad);
	if (rc == 0)
		rc = run_kernels(cr);
	if (rc == 0) {
		struct kb_row *w = &r->rows[at];
		r->cpu_mem_gb_per_s = kb_median(cr->mem_v, cr->n_mem);
		w[0].gb_per_s = r->cpu_mem_gb_per_s;
		w[1].gb_per_s = triad;
		w[1].fraction_of_limit = triad / r->cpu_mem_gb_per_s;
		w[0].fraction_of_limit = 1.0;
		w[0].fraction_of = w[1].fraction_of = "cpu_mem";
		int n_peaks = bf16dot ? 2 : 1;
		for (int k = 0; k < n_peaks; k++) {
			w[2 + k].gflop_per_s = cr->peak[k];
			w[2 + k].fraction_of_limit = 1.0;
			w[2 + k].fraction_of = peak_limit_name((enum kb_peak)k);
		}
		/* Compute-bound rows against the best burst of their peak over
		 * the whole run: the cores' arithmetic is not shared the way
		 * memory is, a burst of a millisecond or two is cut by
		 * preemption more often than a call of tens of ms (measured:
		 * paired medians up to 1.6x), and a median of bursts taken
		 * beside other jobs came out 4-9x low (issue 16). */
		for (int i = at + 2 + n_peaks; i < r->n_rows; i++)
			for (int k = 0; k < n_peaks; k++)
				if (r->rows[i].fraction_of && !strcmp(r->rows[i].fraction_of, peak_limit_name((enum kb_peak)k)))
					r->rows[i].fraction_of_limit = r->rows[i].gflop_per_s / cr->peak[k];
	}
	free(cr);
	return rc;
}
