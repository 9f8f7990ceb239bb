/* The CUDA matmul entry: picks, per shape, the fastest of our kernels and
 * cuBLASLt by timing them on first use, and remembers the choice. CPU
 * reference: kernels/cpu/ref_matmul.c.
 *
 * The key is (m, n, k, dtypes, bias or not, pointer alignment). The first
 * call of a key times every implementation that takes it on the caller's
 * own buffers (each writes the same y) and waits for the timing: a host
 * synchronisation once per shape, at warm-up, never afterwards. While the
 * stream is being captured into a CUDA graph nothing can be timed, so the
 * choice is then a rule of thumb, and is not remembered. A W in a block
 * format (Q8_0 ... Q6_K) goes to matmul_quant.cu's kernels, untimed
 * (run_quant). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "args.h"
#include "fail.h"

#define MM_CACHE_SLOTS 1024 /* power of two */
#define MM_TIMED_RUNS 3

struct mm_key {
	int m, n, k;
	uint8_t x_dtype, w_dtype, y_dtype, has_bias;
	uint32_t align;
};

struct mm_entry {
	struct mm_key key;
	int used;
	enum shmrt_cuda_mm_impl impl;
	struct shmrt_cuda_lt_plan lt; /* made when impl is CUBLASLT */
};

struct shmrt_cuda_mm_cache {
	struct mm_entry slot[MM_CACHE_SLOTS];
};

struct shmrt_cuda_mm_cache *shmrt_cuda_mm_cache_new(void)
{
	return calloc(1, sizeof(struct shmrt_cuda_mm_cache));
}

void shmrt_cuda_mm_cache_free(struct shmrt_cuda_mm_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < MM_CACHE_SLOTS; i++)
		if (c->slot[i].used && c->slot[i].impl == SHMRT_CUDA_MM_CUBLASLT)
			shmrt_cuda_lt_plan_free(&c->slot[i].lt);
	free(c);
}

const char *shmrt_cuda_mm_impl_name(enum shmrt_cuda_mm_impl impl)
{
	static const char *const names[SHMRT_CUDA_MM_N_IMPL] = {"auto", "gemv", "tc64", "tc128", "cublaslt"};
	return (unsigned)impl < SHMRT_CUDA_MM_N_IMPL ? names[impl] : "?";
}

static struct mm_key key_of(const struct shmrt_matmul_args *a)
{
	struct mm_key k;
	memset(&k, 0, sizeof(k)); /* padding too: keys are compared with memcmp */
	k.m = a->m, k.n = a->n, k.k = a->k;
	k.x_dtype = (uint8_t)a->x_dtype, k.w_dtype = (uint8_t)a->w_dtype, k.y_dtype = (uint8_t)a->y_dtype;
	k.has_bias = a->bias != NULL;
	k.align = shmrt_cuda_mm_align(a);
	return k;
}

/* The slot holding key, or the empty slot where it goes; NULL when full. */
static struct mm_entry *cache_slot(struct shmrt_cuda_mm_cache *c, const struct mm_key *k)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	const unsigned char *b = (const unsigned char *)k;
	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ b[i]) * 1099511628211ull;
	for (unsigned i = 0; i < MM_CACHE_SLOTS; i++) {
		struct mm_entry *e = &c->slot[(h + i) & (MM_CACHE_SLOTS - 1)];
		if (!e->used || !memcmp(&e->key, k, sizeof(*k)))
			return e;
	}
	return NULL;
}

static int run_impl(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_matmul_args *a,
		    enum shmrt_cuda_mm_impl impl, const struct shmrt_cuda_lt_plan *lt)
{
	switch (impl) {
	case SHMRT_CUDA_MM_GEMV:
		return shmrt_cuda_mm_gemv(stream, a);
	case SHMRT_CUDA_MM_TC64:
		return shmrt_cuda_mm_tc(stream, a, 64);
	case SHMRT_CUDA_MM_TC128:
		return shmrt_cuda_mm_tc(stream, a, 128);
	case SHMRT_CUDA_MM_CUBLASLT:
		return shmrt_cuda_lt_run(dev, stream, lt, a);
	default:
		return shmrt_fail(EINVAL, "matmul (cuda): no implementation %d", (int)impl);
	}
}

/* Which implementations may run a: GEMV always (it takes every dtype) but
 * not where m makes it hopeless next to a tiled kernel; the tensor-core
 * kernels where their dtype and alignment rules hold; cuBLASLt where it
 * has an algorithm. */
static int candidate(const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl impl, int have_lt)
{
	int tc = a->x_dtype == SHMRT_BF16 && a->w_dtype == SHMRT_BF16 && a->k % 8 == 0 &&
		 shmrt_cuda_mm_align(a) >= 16;
	switch (impl) {
	case SHMRT_CUDA_MM_GEMV:
		return a->m <= 64 || (!tc && !have_lt);
	case SHMRT_CUDA_MM_TC64:
	case SHMRT_CUDA_MM_TC128:
		return tc;
	case SHMRT_CUDA_MM_CUBLASLT:
		return have_lt;
	default:
		return 0;
	}
}

/* Without timing: the memory-bound kernel for decode shapes, else
 * cuBLASLt, else our tensor cores. */
static enum shmrt_cuda_mm_impl rule_of_thumb(const struct shmrt_matmul_args *a, int have_lt)
{
	if (a->m <= 16 && candidate(a, SHMRT_CUDA_MM_GEMV, have_lt))
		return SHMRT_CUDA_MM_GEMV;
	if (have_lt)
		return SHMRT_CUDA_MM_CUBLASLT;
	if (candidate(a, SHMRT_CUDA_MM_TC128, have_lt))
		return a->m >= 128 ? SHMRT_CUDA_MM_TC128 : SHMRT_CUDA_MM_TC64;
	return SHMRT_CUDA_MM_GEMV;
}

/* Mean time of MM_TIMED_RUNS runs after one warm-up, in ms; 0 or -errno
 * (-ENOTSUP: impl does not take a). */
static int time_impl(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_matmul_args *a,
		     enum shmrt_cuda_mm_impl impl, const struct shmrt_cuda_lt_plan *lt, float *ms)
{
	cudaEvent_t ev[2];
	int rc = run_impl(dev, stream, a, impl, lt);
	if (rc)
		return rc;
	if (cudaEventCreate(&ev[0]) != cudaSuccess)
		return shmrt_fail(EIO, "matmul (cuda): cannot create an event");
	if (cudaEventCreate(&ev[1]) != cudaSuccess) {
		cudaEventDestroy(ev[0]);
		return shmrt_fail(EIO, "matmul (cuda): cannot create an event");
	}
	cudaEventRecord(ev[0], stream);
	for (int i = 0; i < MM_TIMED_RUNS && !rc; i++)
		rc = run_impl(dev, stream, a, impl, lt);
	cudaEventRecord(ev[1], stream);
	cudaError_t e = cudaEventSynchronize(ev[1]);
	if (!rc && e != cudaSuccess)
		rc = shmrt_fail(EIO, "matmul (cuda) while timing %s: %s", shmrt_cuda_mm_impl_name(impl),
				cudaGetErrorString(e));
	if (!rc && (e = cudaEventElapsedTime(ms, ev[0], ev[1])) != cudaSuccess)
		rc = shmrt_fail(EIO, "matmul (cuda): timing %s: %s", shmrt_cuda_mm_impl_name(impl),
				cudaGetErrorString(e));
	*ms /= MM_TIMED_RUNS;
	cudaEventDestroy(ev[0]);
	cudaEventDestroy(ev[1]);
	return rc;
}

/* Fills e (key already set) with the fastest implementation for a. */
static int measure(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_matmul_args *a,
		   struct mm_entry *e)
{
	struct shmrt_cuda_lt_plan lt;
	int have_lt = shmrt_cuda_lt_plan_make(dev, a, &lt) == 0;
	float best_ms = 0;
	e->impl = SHMRT_CUDA_MM_AUTO;
	for (int i = SHMRT_CUDA_MM_GEMV; i < SHMRT_CUDA_MM_N_IMPL; i++) {
		float ms = 0;
		if (!candidate(a, i, have_lt))
			continue;
		int rc = time_impl(dev, stream, a, i, &lt, &ms);
		if (rc == -ENOTSUP)
			continue;
		if (rc) {
			if (have_lt)
				shmrt_cuda_lt_plan_free(&lt);
			return rc;
		}
		if (e->impl == SHMRT_CUDA_MM_AUTO || ms < best_ms)
			e->impl = i, best_ms = ms;
	}
	if (e->impl == SHMRT_CUDA_MM_CUBLASLT)
		e->lt = lt;
	else if (have_lt)
		shmrt_cuda_lt_plan_free(&lt);
	if (e->impl == SHMRT_CUDA_MM_AUTO)
		return shmrt_fail(ENOTSUP, "matmul (cuda): no implementation takes x %s, w %s, y %s",
				  shmrt_dtype_name(a->x_dtype), shmrt_dtype_name(a->w_dtype),
				  shmrt_dtype_name(a->y_dtype));
	e->used = 1;
	return 0;
}

/* Runs a with the cached (or newly measured) choice, which *chosen tells.
 * Called with dev->lock held. */
static int auto_run(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_matmul_args *a,
		    enum shmrt_cuda_mm_impl *chosen)
{
	struct mm_key k = key_of(a);
	struct mm_entry *e = cache_slot(dev->mm_cache, &k);
	enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
	cudaStreamIsCapturing(stream, &cap);
	if (e && e->used) {
		*chosen = e->impl;
		return run_impl(dev, stream, a, e->impl, &e->lt);
	}
	if (!e || cap != cudaStreamCaptureStatusNone) {
		/* not timed: a cache full of shapes, or a graph being captured */
		struct shmrt_cuda_lt_plan lt;
		int have_lt = shmrt_cuda_lt_plan_make(dev, a, &lt) == 0;
		*chosen = rule_of_thumb(a, have_lt);
		int rc = run_impl(dev, stream, a, *chosen, &lt);
		if (have_lt)
			shmrt_cuda_lt_plan_free(&lt);
		return rc;
	}
	e->key = k;
	int rc = measure(dev, stream, a, e);
	if (rc)
		return rc;
	*chosen = e->impl;
	return run_impl(dev, stream, a, e->impl, &e->lt);
}

static int prepare(const struct shmrt_matmul_args *a, struct shmrt_cuda_dev **dev)
{
	int rc = shmrt_check_matmul(a);
	if (rc)
		return rc;
	if (a->y_dtype == SHMRT_F16)
		return shmrt_fail(ENOTSUP, "matmul (cuda): y must be f32 or bf16");
	/* a block-format W's bias is read in bias_dtype (matmul_quant.cu) */
	if (!shmrt_dtype_is_quantized(a->w_dtype) && a->bias && a->bias_dtype != a->w_dtype)
		return shmrt_fail(ENOTSUP, "matmul (cuda): w %s with bias %s: a bias in another dtype than a "
					   "plain w is not implemented",
				  shmrt_dtype_name(a->w_dtype), shmrt_dtype_name(a->bias_dtype));
	return shmrt_cuda_dev_get(dev);
}

/* A block-format W (matmul_quant.cu) is not timed: cuBLASLt does not take
 * it, and of our two kernels the GEMV wins where the rule of thumb says so.
 * impl GEMV runs the GEMV, TC64 and TC128 the tiled kernel (which stands
 * in for them: the forced tests reach both kernels that way). */
static int run_quant(cudaStream_t stream, const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl impl)
{
	switch (impl) {
	case SHMRT_CUDA_MM_GEMV:
		return shmrt_cuda_mm_quant(stream, a, 0);
	case SHMRT_CUDA_MM_TC64:
	case SHMRT_CUDA_MM_TC128:
		return shmrt_cuda_mm_quant(stream, a, 1);
	default:
		return shmrt_fail(ENOTSUP, "matmul (cuda): %s does not take w %s", shmrt_cuda_mm_impl_name(impl),
				  shmrt_dtype_name(a->w_dtype));
	}
}

int shmrt_cuda_matmul_choice(cudaStream_t stream, const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl *impl)
{
	struct shmrt_cuda_dev *dev;
	int rc = prepare(a, &dev);
	if (rc)
		return rc;
	if (shmrt_dtype_is_quantized(a->w_dtype)) {
		*impl = a->m <= 16 ? SHMRT_CUDA_MM_GEMV : SHMRT_CUDA_MM_TC64;
		return run_quant(stream, a, *impl);
	}
	if (a->m == 0) { /* nothing to run, nothing to measure */
		*impl = SHMRT_CUDA_MM_GEMV;
		return 0;
	}
	pthread_mutex_lock(&dev->lock);
	rc = auto_run(dev, stream, a, impl);
	pthread_mutex_unlock(&dev->lock);
	return rc;
}

int shmrt_cuda_matmul_with(cudaStream_t stream, const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl impl)
{
	if (impl == SHMRT_CUDA_MM_AUTO)
		return shmrt_cuda_matmul_choice(stream, a, &impl);
	struct shmrt_cuda_dev *dev;
	int rc = prepare(a, &dev);
	if (rc)
		return rc;
	if (shmrt_dtype_is_quantized(a->w_dtype))
		return run_quant(stream, a, impl);
	if (a->m == 0)
		return 0;
	if (impl != SHMRT_CUDA_MM_CUBLASLT)
		return run_impl(dev, stream, a, impl, NULL);
	struct shmrt_cuda_lt_plan lt;
	if ((rc = shmrt_cuda_lt_plan_make(dev, a, &lt)))
		return rc;
	rc = shmrt_cuda_lt_run(dev, stream, &lt, a); /* descriptors are read at enqueue */
	shmrt_cuda_lt_plan_free(&lt);
	return rc;
}

/* SHMRT_CUDA_MATMUL=gemv|tc64|tc128|cublaslt makes the table's matmul run
 * that implementation for every shape (-ENOTSUP where it cannot take one):
 * how the GPU tests reach each of them, whichever the timing would pick. */
static enum shmrt_cuda_mm_impl forced = SHMRT_CUDA_MM_AUTO;
static pthread_once_t forced_once = PTHREAD_ONCE_INIT;

static void read_forced(void)
{
	const char *name = getenv("SHMRT_CUDA_MATMUL");
	for (int i = SHMRT_CUDA_MM_GEMV; name && i < SHMRT_CUDA_MM_N_IMPL; i++)
		if (!strcmp(name, shmrt_cuda_mm_impl_name(i)))
			forced = i;
}

int shmrt_cuda_matmul(void *stream, const struct shmrt_matmul_args *a)
{
	pthread_once(&forced_once, read_forced);
	return shmrt_cuda_matmul_with((cudaStream_t)stream, a, forced);
}
