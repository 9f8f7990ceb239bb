/* Sampling on the GPU: the definition of shmrt/backend.h (spelled out with
 * a full sort in kernels/cpu/ref_sample.c, the CPU reference) computed
 * without sorting. One block per row.
 *
 * Every token gets a rank key, bits(p) << 32 | (2^32 - 1 - id): the bits
 * of a float p >= 0 order as p does, so keys in descending order are the
 * reference's ranking (most probable first, lower id first among equals),
 * and no two are equal. Then
 *   top-k: the k-th largest key, by radix select (256 bins, 8 bits a pass
 *          from the top, done once the chosen bin holds one key);
 *   top-p: the same walk down the keys at or above the top-k one, by mass:
 *          the first key whose running mass in rank order reaches top_p of
 *          the kept mass (the reference's `while (acc < top_p * mass)`);
 *   draw:  u = shmrt_rng_uniform(seed, seq_id, step), as on the CPU, and
 *          the first kept token in id order whose running mass exceeds u
 *          times the kept mass (a block-wide prefix sum).
 * Masses are sums of p in fixed point (p * 2^shift, shift chosen so that a
 * whole row sums below 2^62): integer sums do not depend on the order of
 * the atomics, so a call gives the same token every time, and exact ties
 * (flat rows, repeated logits) are decided as the reference's double sums
 * decide them. p is expf of the same fp32 value as on the CPU; CUDA's
 * expf is within 2 ulp (CUDA C++ Programming Guide, "Mathematical
 * Functions"), so the backends can differ only where a boundary falls
 * within that rounding. p is recomputed from the logits at every pass
 * instead of stored: no workspace, and a row stays in L2. */
#include <limits.h>
#include <math.h>

#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}
#include "philox.h"

namespace {

typedef unsigned long long u64;

constexpr int THREADS = 1024, WARPS = THREADS / 32, BINS = 256;

struct sample_smem {
	unsigned cnt[BINS];
	u64 mass[BINS];
	u64 r64[WARPS]; /* reduction scratch */
	float rf[WARPS];
	int ri[WARPS];
	int sel_bin, sel_cnt;
	u64 sel_need;
};

struct max_f {
	__device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct min_i {
	__device__ int operator()(int a, int b) const { return min(a, b); }
};
struct min_u64 {
	__device__ u64 operator()(u64 a, u64 b) const { return a < b ? a : b; }
};
struct max_u64 {
	__device__ u64 operator()(u64 a, u64 b) const { return a > b ? a : b; }
};
struct sum_u64 {
	__device__ u64 operator()(u64 a, u64 b) const { return a + b; }
};

/* op over the block; every thread gets the result. Deterministic: the
 * warps' partials are combined in warp order. */
template <typename T, typename Op> __device__ T block_reduce(T v, T *scratch, Op op)
{
	for (int o = 16; o > 0; o >>= 1)
		v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
	__syncthreads(); /* scratch may still be read by the previous reduction */
	if (threadIdx.x % 32 == 0)
		scratch[threadIdx.x / 32] = v;
	__syncthreads();
	v = scratch[0];
	for (int w = 1; w < WARPS; w++)
		v = op(v, scratch[w]);
	return v;
}

/* Sum of v over the threads before this one. */
__device__ u64 block_exclusive_sum(u64 v, u64 *scratch)
{
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	u64 incl = v;
	for (int o = 1; o < 32; o <<= 1) {
		u64 t = __shfl_up_sync(0xffffffffu, incl, o);
		if (lane >= o)
			incl += t;
	}
	__syncthreads();
	if (lane == 31)
		scratch[warp] = incl;
	__syncthreads();
	u64 before = 0;
	for (int w = 0; w < warp; w++)
		before += scratch[w];
	return before + incl - v;
}

/* One row of logits and what p needs. */
struct row_view {
	const void *x;
	int64_t base;
	enum shmrt_dtype dt;
	int vocab;
	float max, temperature;
	int shift; /* fixed point: p * 2^shift */

	__device__ float logit(int i) const { return load_dt(x, dt, base + i); }
	/* The reference's p: expf((logit - max) / T), NaN (inf - inf) as 0. */
	__device__ float p(int i) const
	{
		float v = expf((logit(i) - max) / temperature);
		return isnan(v) ? 0.0f : v;
	}
	__device__ u64 fixed(float p) const { return __float2ull_rn(scalbnf(p, shift)); }
};

__device__ __forceinline__ u64 rank_key(float p, int id)
{
	return (u64)__float_as_uint(p) << 32 | (0xffffffffu - (unsigned)id);
}

__device__ __forceinline__ int key_id(u64 key)
{
	return (int)(0xffffffffu - (unsigned)key);
}

/* Walks down the ranking of the keys >= floor and returns the key where
 * `need` is used up: by count (top-k: need = k gives the k-th key), or by
 * mass (top-p: the first key whose running mass is >= need). Where the
 * keys run out first (rounding), the last key. */
template <bool BY_MASS> __device__ u64 walk_down(const row_view &r, u64 floor, u64 need, sample_smem &sm)
{
	u64 prefix = 0, mask = 0;
	for (int shift = 56; shift >= 0; shift -= 8) {
		for (int b = threadIdx.x; b < BINS; b += THREADS)
			sm.cnt[b] = 0, sm.mass[b] = 0;
		__syncthreads();
		for (int i = threadIdx.x; i < r.vocab; i += THREADS) {
			float p = r.p(i);
			u64 key = rank_key(p, i);
			if (key >= floor && (key & mask) == prefix) {
				int b = (int)(key >> shift) & (BINS - 1);
				atomicAdd(&sm.cnt[b], 1u);
				if (BY_MASS)
					atomicAdd(&sm.mass[b], r.fixed(p));
			}
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			int lo = 0, b = BINS - 1;
			while (sm.cnt[lo] == 0) /* the key at floor is always in */
				lo++;
			for (;; b--) {
				if (sm.cnt[b] == 0)
					continue;
				u64 here = BY_MASS ? sm.mass[b] : sm.cnt[b];
				if (need <= here || b == lo)
					break;
				need -= here;
			}
			sm.sel_bin = b, sm.sel_cnt = (int)sm.cnt[b], sm.sel_need = need;
		}
		__syncthreads();
		prefix |= (u64)sm.sel_bin << shift;
		mask |= (u64)(BINS - 1) << shift;
		need = sm.sel_need;
		if (sm.sel_cnt == 1 && shift > 0) { /* one key left: find it */
			u64 found = 0;
			for (int i = threadIdx.x; i < r.vocab; i += THREADS) {
				u64 key = rank_key(r.p(i), i);
				if (key >= floor && (key & mask) == prefix)
					found = key;
			}
			return block_reduce(found, sm.r64, max_u64());
		}
	}
	return prefix;
}

/* Fixed-point mass of the tokens ranked at or before `last`. */
__device__ u64 kept_mass(const row_view &r, u64 last, sample_smem &sm)
{
	u64 m = 0;
	for (int i = threadIdx.x; i < r.vocab; i += THREADS) {
		float p = r.p(i);
		if (rank_key(p, i) >= last)
			m += r.fixed(p);
	}
	return block_reduce(m, sm.r64, sum_u64());
}

/* The first kept token in id order whose running mass exceeds thr, or
 * INT_MAX. Each thread takes a contiguous run of ids. */
__device__ int first_over(const row_view &r, u64 last, u64 thr, sample_smem &sm)
{
	int run = (r.vocab + THREADS - 1) / THREADS;
	int begin = min((int)threadIdx.x * run, r.vocab), end = min(begin + run, r.vocab);
	u64 own = 0;
	for (int i = begin; i < end; i++) {
		float p = r.p(i);
		if (rank_key(p, i) >= last)
			own += r.fixed(p);
	}
	u64 acc = block_exclusive_sum(own, sm.r64);
	int tok = INT_MAX;
	if (acc <= thr && acc + own > thr) /* the crossing is in this run */
		for (int i = begin; i < end; i++) {
			float p = r.p(i);
			if (rank_key(p, i) >= last && (acc += r.fixed(p)) > thr) {
				tok = i;
				break;
			}
		}
	return block_reduce(tok, sm.ri, min_i());
}

__global__ void __launch_bounds__(THREADS)
sample_kernel(int vocab, const void *logits, int64_t stride, enum shmrt_dtype dt,
	      const struct shmrt_sample_params *params, int32_t *tokens)
{
	__shared__ sample_smem sm;
	int s = blockIdx.x;
	const struct shmrt_sample_params sp = params[s];
	row_view r = {logits, (int64_t)s * stride, dt, vocab, 0.0f, 1.0f, 0};

	float mx = -INFINITY;
	for (int i = threadIdx.x; i < vocab; i += THREADS)
		mx = fmaxf(mx, r.logit(i));
	mx = block_reduce(mx, sm.rf, max_f());

	if (!(sp.temperature > 0)) { /* greedy: the lowest id holding the max */
		int best = INT_MAX;
		for (int i = threadIdx.x; i < vocab; i += THREADS)
			if (r.logit(i) == mx) {
				best = i;
				break;
			}
		best = block_reduce(best, sm.ri, min_i());
		if (threadIdx.x == 0)
			tokens[s] = best == INT_MAX ? 0 : best;
		return;
	}

	r.max = mx, r.temperature = sp.temperature;
	r.shift = 62 - (32 - __clz(vocab)); /* vocab * 1.0 * 2^shift < 2^62 */
	int k = sp.top_k > 0 && sp.top_k < vocab ? sp.top_k : vocab;
	u64 last = 0; /* every key is >= 0: all kept */
	if (k < vocab)
		last = walk_down<false>(r, 0, (u64)k, sm);
	if (sp.top_p < 1) {
		double need = (double)sp.top_p * (double)kept_mass(r, last, sm);
		last = walk_down<true>(r, last, __double2ull_ru(fmax(need, 0.0)), sm);
	}
	/* acc > u * mass, acc an integer: acc > floor(u * mass) */
	float u = shmrt_rng_uniform(sp.seed, sp.seq_id, sp.step);
	u64 thr = __double2ull_rd((double)u * (double)kept_mass(r, last, sm));
	int tok = first_over(r, last, thr, sm);
	if (tok == INT_MAX) { /* no mass kept (NaN logits): the reference's last kept token */
		u64 low = ~0ull;
		for (int i = threadIdx.x; i < vocab; i += THREADS) {
			u64 key = rank_key(r.p(i), i);
			if (key >= last && key < low)
				low = key;
		}
		tok = key_id(block_reduce(low, sm.r64, min_u64()));
	}
	if (threadIdx.x == 0)
		tokens[s] = tok;
}

} // namespace

extern "C" int shmrt_cuda_sample(void *stream, const struct shmrt_sample_args *a)
{
	int rc = shmrt_check_sample(a);
	if (rc || a->n_seqs == 0)
		return rc;
	sample_kernel<<<a->n_seqs, THREADS, 0, (cudaStream_t)stream>>>(a->vocab, a->logits, a->logits_stride, a->dtype,
								       a->params, a->tokens);
	return cuda_launch_check("sample");
}
