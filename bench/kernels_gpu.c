/* shmrt bench kernels, GPU part (built with CUDA; runs when the "cuda"
 * backend finds a GPU): the device's copy bandwidth as the limit,
 * cuBLASLt called here directly as the matmul peer, then the cuda
 * backend's matmul and attention through its table (shmrt/backend.h), all
 * in bf16 with fp32 accumulation.
 *
 * Conventions:
 *  - gpu_copy_gb_per_s: cudaMemcpyAsync device to device between two
 *    buffers 8x the L2 cache (at least 256 MiB), counted as 2 x bytes / time
 *    (each byte is read once and written once), as CUDA's bandwidthTest
 *    sample counts it. A decode kernel that reads B bytes at R GB/s is
 *    thus rated R / copy: reading alone can beat a copy slightly.
 *  - decode matmul GB/s: weight bytes / time, weights rotated through
 *    copies 4x the L2 in all, so that each call reads W from HBM.
 *  - large matmul: GFLOP/s = 2 m n k / time, against cuBLASLt on the same
 *    shape (the fastest of its heuristic's first algorithms, timed here).
 *  - decode attention GB/s: K and V bytes of the whole batch / time.
 *  - prefill attention: causal, head_dim 128, 4 * head_dim flops per
 *    (query head, visible key), against the fastest cuBLASLt figure of the
 *    run (tensor-core matmul throughput, an upper bound for it).
 * Times come from CUDA events around batches of calls on one stream: the
 * median over batches of the mean time per call. */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "kernels.h"
#include "array_size.h"

#define N_BATCHES 7
#define LT_WS_BYTES ((size_t)32 << 20) /* cuBLAS guide: 32 MiB suits Hopper */
#define LT_ALGOS 8                     /* heuristic results timed */

struct gpu_run {
	const struct kb_opts *o;
	const struct shmrt_backend *b;
	struct kb_report *r;
	cudaStream_t stream;
	cudaEvent_t ev[2];
	cublasLtHandle_t lt;
	void *lt_ws;
	size_t l2_bytes;
	int calls; /* per batch */
	double cublas_max_gflops;
};

static int cuda_fail(cudaError_t e, const char *what)
{
	fprintf(stderr, "shmrt bench kernels: %s: %s\n", what, cudaGetErrorString(e));
	return -EIO;
}

static int lt_fail(cublasStatus_t st, const char *what)
{
	fprintf(stderr, "shmrt bench kernels: cuBLASLt %s: %s\n", what, cublasLtGetStatusString(st));
	return -EIO;
}

/* Seconds per call of fn(ctx, i): N_BATCHES batches of g->calls calls,
 * after one warm-up batch; the median batch's mean. */
static int time_gpu(struct gpu_run *g, int (*fn)(void *ctx, int i), void *ctx, double *seconds)
{
	double v[N_BATCHES];
	int call = 0;
	for (int batch = -1; batch < N_BATCHES; batch++) {
		cudaEventRecord(g->ev[0], g->stream);
		for (int i = 0; i < g->calls; i++) {
			int rc = fn(ctx, call++);
			if (rc < 0)
				return rc;
		}
		cudaEventRecord(g->ev[1], g->stream);
		cudaError_t e = cudaEventSynchronize(g->ev[1]);
		float ms = 0;
		if (e == cudaSuccess)
			e = cudaEventElapsedTime(&ms, g->ev[0], g->ev[1]);
		if (e != cudaSuccess)
			return cuda_fail(e, "timing a batch");
		if (batch >= 0)
			v[batch] = ms * 1e-3 / g->calls;
	}
	*seconds = kb_median(v, N_BATCHES);
	return 0;
}

/* ---- the limit: device-to-device copy ---- */

struct copy_case {
	struct gpu_run *g;
	void *src, *dst;
	size_t bytes;
};

static int copy_call(void *ctx, int i)
{
	(void)i;
	struct copy_case *c = ctx;
	cudaError_t e = cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, c->g->stream);
	return e == cudaSuccess ? 0 : cuda_fail(e, "cudaMemcpyAsync");
}

static int copy_limit(struct gpu_run *g)
{
	struct copy_case c = {.g = g, .bytes = g->o->quick ? (size_t)64 << 20 : 8 * g->l2_bytes};
	if (!g->o->quick && c.bytes < ((size_t)256 << 20))
		c.bytes = (size_t)256 << 20;
	cudaError_t e = cudaMalloc(&c.src, c.bytes);
	if (e == cudaSuccess)
		e = cudaMalloc(&c.dst, c.bytes);
	if (e == cudaSuccess)
		e = cudaMemsetAsync(c.src, 1, c.bytes, g->stream);
	double t = 0;
	int rc = e == cudaSuccess ? time_gpu(g, copy_call, &c, &t) : cuda_fail(e, "copy buffers");
	cudaFree(c.src);
	cudaFree(c.dst);
	if (rc < 0)
		return rc;
	g->r->gpu_copy_gb_per_s = 2.0 * (double)c.bytes / t * 1e-9;
	struct kb_row *w = kb_add(g->r, "copy_d2d", "cuda", "bytes=%zu", c.bytes);
	if (!w)
		return -ENOMEM;
	w->gb_per_s = g->r->gpu_copy_gb_per_s;
	w->fraction_of_limit = 1.0;
	w->fraction_of = "gpu_copy";
	return 0;
}

/* ---- matmul: cuBLASLt and the backend ---- */

/* One shape: Y[m][n] = X[m][k] W[n][k]^T, all bf16, W in n_w copies. */
struct mm_case {
	struct gpu_run *g;
	int m, n, k;
	void **w;
	int n_w;
	void *x, *y;
	/* cuBLASLt: column-major, so Y^T (n x m) = op(W as k x n)^T X^T (k x m). */
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t lw, lx, ly;
	cublasLtMatmulHeuristicResult_t algos[LT_ALGOS];
	int n_algos, algo;
};

static int lt_call(void *ctx, int i)
{
	struct mm_case *c = ctx;
	float alpha = 1, beta = 0;
	cublasStatus_t st = cublasLtMatmul(c->g->lt, c->op, &alpha, c->w[i % c->n_w], c->lw, c->x, c->lx, &beta, c->y,
					   c->ly, c->y, c->ly, &c->algos[c->algo].algo, c->g->lt_ws, LT_WS_BYTES,
					   c->g->stream);
	return st == CUBLAS_STATUS_SUCCESS ? 0 : lt_fail(st, "matmul");
}

static int backend_call(void *ctx, int i)
{
	struct mm_case *c = ctx;
	struct shmrt_matmul_args a = {.m = c->m, .n = c->n, .k = c->k, .x = c->x, .x_dtype = SHMRT_BF16,
				      .w = c->w[i % c->n_w], .w_dtype = SHMRT_BF16, .y = c->y, .y_dtype = SHMRT_BF16};
	int rc = c->g->b->matmul(c->g->stream, &a);
	if (rc < 0)
		fprintf(stderr, "shmrt bench kernels: cuda matmul m=%d n=%d k=%d: %s\n", c->m, c->n, c->k,
			shmrt_last_error());
	return rc;
}

static void lt_plan_free(struct mm_case *c)
{
	if (c->ly)
		cublasLtMatrixLayoutDestroy(c->ly);
	if (c->lx)
		cublasLtMatrixLayoutDestroy(c->lx);
	if (c->lw)
		cublasLtMatrixLayoutDestroy(c->lw);
	if (c->op)
		cublasLtMatmulDescDestroy(c->op);
	c->op = NULL, c->lw = c->lx = c->ly = NULL;
}

/* Descriptors and the heuristic's first LT_ALGOS algorithms for c's shape
 * (cuBLAS library guide, cublasLtMatmul, cublasLtMatmulAlgoGetHeuristic). */
static int lt_plan(struct mm_case *c)
{
	cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
	size_t ws = LT_WS_BYTES;
	cublasLtMatmulPreference_t pref = NULL;
	cublasStatus_t st = cublasLtMatmulDescCreate(&c->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulDescSetAttribute(c->op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t));
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulDescSetAttribute(c->op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n));
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatrixLayoutCreate(&c->lw, CUDA_R_16BF, (uint64_t)c->k, (uint64_t)c->n, c->k);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatrixLayoutCreate(&c->lx, CUDA_R_16BF, (uint64_t)c->k, (uint64_t)c->m, c->k);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatrixLayoutCreate(&c->ly, CUDA_R_16BF, (uint64_t)c->n, (uint64_t)c->m, c->n);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulPreferenceCreate(&pref);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
							  sizeof(ws));
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulAlgoGetHeuristic(c->g->lt, c->op, c->lw, c->lx, c->ly, c->ly, pref, LT_ALGOS,
						    c->algos, &c->n_algos);
	if (pref)
		cublasLtMatmulPreferenceDestroy(pref);
	if (st == CUBLAS_STATUS_SUCCESS && c->n_algos == 0)
		st = CUBLAS_STATUS_NOT_SUPPORTED;
	return st == CUBLAS_STATUS_SUCCESS ? 0 : lt_fail(st, "plan");
}

/* cuBLASLt's best time over its candidate algorithms. */
static int lt_time(struct mm_case *c, double *seconds)
{
	int rc = lt_plan(c), best = -1;
	double best_t = INFINITY;
	for (c->algo = 0; rc == 0 && c->algo < c->n_algos; c->algo++) {
		double t;
		if ((rc = time_gpu(c->g, lt_call, c, &t)) == 0 && t < best_t)
			best_t = t, best = c->algo;
	}
	lt_plan_free(c);
	*seconds = best_t;
	return rc < 0 ? rc : best < 0 ? -EIO : 0;
}

static int mm_row(struct mm_case *c, const char *backend, double t, double peer_t)
{
	bool decode = c->m <= 16;
	double bytes = 2.0 * c->n * c->k, flops = 2.0 * c->m * c->n * c->k;
	struct kb_row *w = kb_add(c->g->r, "matmul", backend, "m=%d n=%d k=%d x=bf16 w=bf16", c->m, c->n, c->k);
	if (!w)
		return -ENOMEM;
	w->gb_per_s = bytes / t * 1e-9;
	w->gflop_per_s = flops / t * 1e-9;
	if (decode) {
		w->fraction_of_limit = w->gb_per_s / c->g->r->gpu_copy_gb_per_s;
		w->fraction_of = "gpu_copy";
	} else if (peer_t > 0) {
		w->fraction_of_limit = peer_t / t;
		w->fraction_of = "cublas";
	}
	if (c->g->o->verbose)
		fprintf(stderr, "matmul %s %s: %.1f us, %.0f GB/s, %.1f TFLOP/s\n", backend, w->shape, t * 1e6,
			w->gb_per_s, w->gflop_per_s * 1e-3);
	return 0;
}

static int mm_run(struct gpu_run *g, int m, int n, int k)
{
	struct mm_case c = {.g = g, .m = m, .n = n, .k = k};
	size_t w_bytes = (size_t)n * k * 2;
	int n_w = m <= 16 && !g->o->quick ? (int)((4 * g->l2_bytes + w_bytes - 1) / w_bytes) : 1;
	n_w = n_w < 1 ? 1 : n_w;
	int rc = (c.w = calloc((size_t)n_w, sizeof(void *))) ? 0 : -ENOMEM;
	for (; rc == 0 && c.n_w < n_w; c.n_w++)
		rc = kb_alloc_random(g->b, &c.w[c.n_w], (size_t)n * k, SHMRT_BF16, 20 + (uint64_t)c.n_w);
	if (rc == 0)
		rc = kb_alloc_random(g->b, &c.x, (size_t)m * k, SHMRT_BF16, 8);
	if (rc == 0)
		rc = g->b->alloc(&c.y, (size_t)m * n * 2);
	double t_lt = 0, t_be = 0;
	if (rc == 0)
		rc = lt_time(&c, &t_lt);
	if (rc == 0)
		rc = time_gpu(g, backend_call, &c, &t_be);
	if (rc == 0 && m > 16 && 2.0 * m * n * k / t_lt * 1e-9 > g->cublas_max_gflops)
		g->cublas_max_gflops = 2.0 * m * n * k / t_lt * 1e-9;
	if (rc == 0)
		rc = mm_row(&c, "cublas", t_lt, 0);
	if (rc == 0)
		rc = mm_row(&c, "cuda", t_be, t_lt);
	if (rc == -ENOMEM)
		fprintf(stderr, "shmrt bench kernels: matmul m=%d n=%d k=%d on the GPU: out of memory\n", m, n, k);
	for (int i = 0; c.w && i < c.n_w; i++)
		g->b->free(c.w[i]);
	free(c.w);
	g->b->free(c.x);
	g->b->free(c.y);
	return rc;
}

/* ---- attention ---- */

struct attn_case {
	struct gpu_run *g;
	struct kb_attn t;
};

static int attn_call(void *ctx, int i)
{
	(void)i;
	struct attn_case *c = ctx;
	int rc = c->g->b->attention(c->g->stream, &c->t.a);
	if (rc < 0)
		fprintf(stderr, "shmrt bench kernels: cuda attention: %s\n", shmrt_last_error());
	return rc;
}

static int attn_run(struct gpu_run *g, const struct kb_attn_shape *s)
{
	struct attn_case c = {.g = g};
	char shape[160];
	kb_attn_shape_str(s, shape, sizeof(shape));
	int rc = kb_attn_make(g->b, s, &c.t);
	double t = 0;
	if (rc == 0)
		rc = time_gpu(g, attn_call, &c, &t);
	struct kb_row *w = NULL;
	if (rc == 0 && !(w = kb_add(g->r, s->prefill ? "attention_prefill" : "attention_decode", "cuda", "%s", shape)))
		rc = -ENOMEM;
	if (rc == 0) {
		w->gb_per_s = s->prefill ? NAN : c.t.kv_bytes / t * 1e-9;
		w->gflop_per_s = c.t.flops / t * 1e-9;
		if (!s->prefill) {
			w->fraction_of_limit = w->gb_per_s / g->r->gpu_copy_gb_per_s;
			w->fraction_of = "gpu_copy";
		} else if (g->cublas_max_gflops > 0) {
			w->fraction_of_limit = w->gflop_per_s / g->cublas_max_gflops;
			w->fraction_of = "cublas_max";
		}
		if (g->o->verbose)
			fprintf(stderr, "attention %s: %.1f us, %.0f GB/s, %.1f TFLOP/s\n", shape, t * 1e6, w->gb_per_s,
				w->gflop_per_s * 1e-3);
	} else if (rc == -ENOMEM) {
		fprintf(stderr, "shmrt bench kernels: attention %s on the GPU: out of memory\n", shape);
	}
	kb_attn_free(g->b, &c.t);
	return rc;
}

/* ---- the part ---- */

/* Llama 3 8B's projections (4096 x 4096, 14336 x 4096, 4096 x 14336) and
 * its attention (32 query heads, 8 KV heads of 128): decode batches whose
 * caches are 1 GiB, prefill of 16k tokens, as FlashAttention-2's
 * benchmarks use. */
struct mm_shape {
	int m, n, k;
};
static const struct mm_shape full_mm[] = {
	{1, 4096, 4096},  {16, 4096, 4096},  {1, 14336, 4096},    {16, 14336, 4096},   {1, 4096, 14336},
	{16, 4096, 14336}, {4096, 4096, 4096}, {4096, 14336, 4096}, {4096, 4096, 14336}, {8192, 8192, 8192},
};
static const struct mm_shape quick_mm[] = {{1, 1024, 1024}, {512, 1024, 1024}};
static const struct kb_attn_shape full_attn[] = {
	{64, 4096, 32, 8, 128, 16, false, SHMRT_BF16},
	{8, 32768, 32, 8, 128, 16, false, SHMRT_BF16},
	{256, 1024, 32, 8, 128, 16, false, SHMRT_BF16},
	{4, 4096, 32, 8, 128, 16, true, SHMRT_BF16},
	{1, 16384, 32, 8, 128, 16, true, SHMRT_BF16},
};
static const struct kb_attn_shape quick_attn[] = {
	{8, 512, 32, 8, 128, 16, false, SHMRT_BF16},
	{1, 512, 32, 8, 128, 16, true, SHMRT_BF16},
};

static int run_all(struct gpu_run *g)
{
	int rc = copy_limit(g);
	const struct mm_shape *mm = g->o->quick ? quick_mm : full_mm;
	int n_mm = g->o->quick ? 2 : (int)(ARRAY_SIZE(full_mm));
	for (int i = 0; rc == 0 && i < n_mm; i++)
		rc = mm_run(g, mm[i].m, mm[i].n, mm[i].k);
	const struct kb_attn_shape *at = g->o->quick ? quick_attn : full_attn;
	int n_at = g->o->quick ? 2 : (int)(ARRAY_SIZE(full_attn));
	for (int i = 0; rc == 0 && i < n_at; i++)
		rc = attn_run(g, &at[i]);
	return rc;
}

int kb_run_gpu(const struct kb_opts *o, struct kb_report *r)
{
	struct gpu_run g = {.o = o, .r = r, .calls = o->quick ? 3 : 20};
	int rc = shmrt_backend_get("cuda", &g.b);
	if (rc < 0) {
		snprintf(r->gpu_note, sizeof(r->gpu_note), "%s", shmrt_last_error());
		return rc == -ENODEV ? rc : (fprintf(stderr, "shmrt bench kernels: %s\n", r->gpu_note), rc);
	}
	int device = 0, l2 = 0;
	struct cudaDeviceProp prop;
	cudaError_t e = cudaGetDevice(&device);
	if (e == cudaSuccess)
		e = cudaGetDeviceProperties(&prop, device);
	if (e == cudaSuccess)
		e = cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device);
	if (e != cudaSuccess)
		return cuda_fail(e, "device properties");
	snprintf(r->gpu_name, sizeof(r->gpu_name), "%s", prop.name);
	g.l2_bytes = l2 > 0 ? (size_t)l2 : (size_t)50 << 20;
	cublasStatus_t st = cublasLtCreate(&g.lt);
	if (st != CUBLAS_STATUS_SUCCESS)
		return lt_fail(st, "create");
	e = cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking);
	if (e == cudaSuccess)
		e = cudaEventCreate(&g.ev[0]);
	if (e == cudaSuccess)
		e = cudaEventCreate(&g.ev[1]);
	if (e == cudaSuccess)
		e = cudaMalloc(&g.lt_ws, LT_WS_BYTES);
	rc = e == cudaSuccess ? run_all(&g) : cuda_fail(e, "stream, events and workspace");
	cudaStreamSynchronize(g.stream);
	cudaFree(g.lt_ws);
	cudaEventDestroy(g.ev[0]);
	cudaEventDestroy(g.ev[1]);
	cudaStreamDestroy(g.stream);
	cublasLtDestroy(g.lt);
	return rc;
}
