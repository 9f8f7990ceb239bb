/* Split-KV ("flash-decoding") attention over the paged cache, one query
 * token at a time. CPU reference: kernels/cpu/ref_attention.c.
 *
 * A block takes one token, one kv head (so the GQA group's query heads
 * share every key and value it reads) and one split: a contiguous range of
 * that token's visible keys. With few tokens the splits give the GPU
 * enough blocks to reach memory bandwidth (Dao et al., "Flash-Decoding for
 * long-context inference", 2023); each split leaves its unnormalised
 * output, running max and sum, and a second kernel combines them. With
 * enough tokens there is one split and the block writes the output itself.
 *
 * Inside a split the block walks TILE keys at a time with an online
 * softmax (Milakov and Gimelshein, 2018):
 *   1. scores: D/8 threads share a key row, 8 dims each (one 16-byte load
 *      of bf16), and reduce the dot products with shuffles;
 *   2. per query head, the tile's max and exp-sum update the running ones;
 *   3. values: the same threads accumulate p * v for their 8 dims.
 * Works for any q/cache dtype pair of f32 and bf16, in fp32; this is also
 * the exact-fp32 path for prefill when the tensor-core kernel does not
 * apply (it then re-reads the cache per query token). */
#include <math.h>

#include "cuda_common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int TILE = 64; /* keys per step of the online softmax */

struct decode_params {
	int n_seqs, n_heads, n_kv_heads, group, block_size;
	float scale;
	const int32_t *cu_q_lens, *ctx_lens, *block_tables;
	int table_stride;
	const void *q;
	int64_t q_stride;
	void *out;
	const void *k, *v;
	int chunk;      /* keys per split, a multiple of TILE */
	int n_splits;
	float *part_o;  /* [n_tokens][n_heads][n_splits][D] unnormalised outputs */
	float2 *part_ml; /* [n_tokens][n_heads][n_splits] running (max, sum) */
	enum shmrt_cuda_attn_rows rows;
};

__device__ __forceinline__ bool wanted(enum shmrt_cuda_attn_rows rows, int q_len)
{
	return rows == SHMRT_CUDA_ATTN_ALL || (rows == SHMRT_CUDA_ATTN_DECODES) == (q_len == 1);
}

template <typename TQ, typename TKV, int D, int GMAX>
__global__ void __launch_bounds__(THREADS) decode_kernel(decode_params p)
{
	constexpr int TPR = D / 8;         /* threads per key row */
	constexpr int RPI = THREADS / TPR; /* key rows per pass */
	static_assert(32 % TPR == 0 && TILE % RPI == 0, "row groups tile warps and TILE");
	/* Queries, pre-scaled, each thread's 8 dims padded to 12 floats: the
	 * 16-byte reads of 8 neighbouring threads then hit distinct banks. */
	__shared__ __align__(16) float q_s[GMAX][TPR * 12];
	__shared__ float s_s[GMAX][TILE]; /* scores, then probabilities */
	__shared__ float o_s[GMAX][D];
	__shared__ float m_s[GMAX], l_s[GMAX], alpha_s[GMAX];

	int t = blockIdx.x, hk = blockIdx.y, split = blockIdx.z;
	int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	int row = tid / TPR, sub = tid % TPR;
	int s = seq_of_token(p.cu_q_lens, p.n_seqs, t);
	int q0 = p.cu_q_lens[s], q_len = p.cu_q_lens[s + 1] - q0;
	if (!wanted(p.rows, q_len))
		return;
	const int G = p.group;
	int n_keys = p.ctx_lens[s] - q_len + (t - q0) + 1; /* causal: keys 0 .. position */
	int k_begin = split * p.chunk, k_end = min(k_begin + p.chunk, n_keys);
	int64_t part = ((int64_t)t * p.n_heads + hk * G) * p.n_splits + split; /* + g * n_splits */
	if (k_begin >= k_end) { /* a split past this token's keys: an empty part */
		if (tid < G)
			p.part_ml[part + tid * p.n_splits] = make_float2(-INFINITY, 0.0f);
		return;
	}
	const int32_t *table = p.block_tables + (int64_t)s * p.table_stride;
	const TKV *kc = (const TKV *)p.k, *vc = (const TKV *)p.v;

	for (int i = tid; i < GMAX * D; i += THREADS) {
		int g = i / D, d = i % D;
		const TQ *q = (const TQ *)p.q + t * p.q_stride + (int64_t)(hk * G + g) * D;
		q_s[g][d / 8 * 12 + d % 8] = g < G ? to_f32(q[d]) * p.scale : 0.0f;
		o_s[g][d] = 0.0f;
	}
	if (tid < GMAX) {
		m_s[tid] = -INFINITY;
		l_s[tid] = 0.0f;
	}
	float acc[GMAX][8];
#pragma unroll
	for (int g = 0; g < GMAX; g++)
#pragma unroll
		for (int i = 0; i < 8; i++)
			acc[g][i] = 0.0f;
	__syncthreads();

	for (int k0 = k_begin; k0 < k_end; k0 += TILE) {
		int n = min(TILE, k_end - k0);

		/* 1. scores. The loop bound is the same for the whole warp, so
		 * every lane reaches the shuffles; rows past n compute zeros. */
		for (int base = 0; base < n; base += RPI) {
			int r = base + row;
			float kv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
			if (r < n) {
				int pos = k0 + r;
				load8(kc + kv_offset(table[pos / p.block_size], hk, pos % p.block_size, p.n_kv_heads,
						     p.block_size, D) + sub * 8,
				      kv);
			}
#pragma unroll
			for (int g = 0; g < GMAX; g++) {
				if (g >= G)
					break;
				float4 qa = *(const float4 *)&q_s[g][sub * 12];
				float4 qb = *(const float4 *)&q_s[g][sub * 12 + 4];
				float dot = qa.x * kv[0] + qa.y * kv[1] + qa.z * kv[2] + qa.w * kv[3] + qb.x * kv[4] +
					    qb.y * kv[5] + qb.z * kv[6] + qb.w * kv[7];
#pragma unroll
				for (int o = TPR / 2; o > 0; o >>= 1)
					dot += __shfl_xor_sync(0xffffffffu, dot, o);
				if (sub == 0 && r < n)
					s_s[g][r] = dot;
			}
		}
		__syncthreads();

		/* 2. online softmax, one warp per query head */
		for (int g = warp; g < G; g += THREADS / 32) {
			float mx = -INFINITY;
			for (int c = lane; c < n; c += 32)
				mx = fmaxf(mx, s_s[g][c]);
			mx = warp_max(mx);
			float m_old = m_s[g], m_new = fmaxf(m_old, mx);
			float sum = 0.0f;
			for (int c = lane; c < n; c += 32) {
				float e = expf(s_s[g][c] - m_new);
				s_s[g][c] = e;
				sum += e;
			}
			sum = warp_sum(sum); /* every lane has read m_s[g] by now */
			if (lane == 0) {
				float alpha = expf(m_old - m_new); /* 0 on the first tile */
				alpha_s[g] = alpha;
				l_s[g] = l_s[g] * alpha + sum;
				m_s[g] = m_new;
			}
		}
		__syncthreads();

		/* 3. values */
#pragma unroll
		for (int g = 0; g < GMAX; g++) {
			float alpha = g < G ? alpha_s[g] : 0.0f;
#pragma unroll
			for (int i = 0; i < 8; i++)
				acc[g][i] *= alpha;
		}
		for (int r = row; r < n; r += RPI) {
			int pos = k0 + r;
			float vv[8];
			load8(vc + kv_offset(table[pos / p.block_size], hk, pos % p.block_size, p.n_kv_heads, p.block_size,
					     D) + sub * 8,
			      vv);
#pragma unroll
			for (int g = 0; g < GMAX; g++) {
				if (g >= G)
					break;
				float pr = s_s[g][r];
#pragma unroll
				for (int i = 0; i < 8; i++)
					acc[g][i] = fmaf(pr, vv[i], acc[g][i]);
			}
		}
		__syncthreads(); /* s_s is rewritten by the next tile */
	}

	/* Sum the row groups: inside a warp with shuffles (lanes TPR apart
	 * hold the same dims), then the warps' first groups in shared memory. */
#pragma unroll
	for (int g = 0; g < GMAX; g++) {
		if (g >= G)
			break;
#pragma unroll
		for (int i = 0; i < 8; i++) {
			float v = acc[g][i];
#pragma unroll
			for (int o = TPR; o < 32; o <<= 1)
				v += __shfl_xor_sync(0xffffffffu, v, o);
			if (lane < TPR)
				atomicAdd(&o_s[g][sub * 8 + i], v);
		}
	}
	__syncthreads();

	for (int i = tid; i < G * D; i += THREADS) {
		int g = i / D, d = i % D, hq = hk * G + g;
		if (p.n_splits == 1)
			((TQ *)p.out)[((int64_t)t * p.n_heads + hq) * D + d] = from_f32<TQ>(o_s[g][d] / l_s[g]);
		else
			p.part_o[(part + (int64_t)g * p.n_splits) * D + d] = o_s[g][d];
	}
	if (p.n_splits > 1 && tid < G)
		p.part_ml[part + tid * p.n_splits] = make_float2(m_s[tid], l_s[tid]);
}

/* out = sum_i e^(m_i - M) o_i / sum_i e^(m_i - M) l_i over the non-empty
 * splits of (token, query head), M the largest m_i. */
template <typename TQ, int D> __global__ void __launch_bounds__(D) combine_kernel(decode_params p)
{
	int t = blockIdx.x, hq = blockIdx.y, d = threadIdx.x;
	int s = seq_of_token(p.cu_q_lens, p.n_seqs, t);
	if (!wanted(p.rows, p.cu_q_lens[s + 1] - p.cu_q_lens[s]))
		return;
	int64_t base = ((int64_t)t * p.n_heads + hq) * p.n_splits;
	float M = -INFINITY;
	for (int i = 0; i < p.n_splits; i++)
		M = fmaxf(M, p.part_ml[base + i].x);
	float num = 0.0f, den = 0.0f;
	for (int i = 0; i < p.n_splits; i++) {
		float2 ml = p.part_ml[base + i];
		if (ml.y > 0.0f) { /* an empty split's o was never written */
			float w = expf(ml.x - M);
			num += w * p.part_o[(base + i) * D + d];
			den += w * ml.y;
		}
	}
	((TQ *)p.out)[((int64_t)t * p.n_heads + hq) * D + d] = from_f32<TQ>(num / den);
}

template <typename TQ, typename TKV, int D, int GMAX>
int launch(cudaStream_t stream, const decode_params &p, int n_tokens)
{
	dim3 grid(n_tokens, p.n_kv_heads, p.n_splits);
	decode_kernel<TQ, TKV, D, GMAX><<<grid, THREADS, 0, stream>>>(p);
	int rc = cuda_launch_check("attention (decode)");
	if (rc || p.n_splits == 1)
		return rc;
	combine_kernel<TQ, D><<<dim3(n_tokens, p.n_heads), D, 0, stream>>>(p);
	return cuda_launch_check("attention (split combine)");
}

/* The query heads of a group, rounded up to a compiled size. */
template <typename TQ, typename TKV, int D>
int launch_group(cudaStream_t stream, const decode_params &p, int n_tokens)
{
	if (p.group <= 1)
		return launch<TQ, TKV, D, 1>(stream, p, n_tokens);
	if (p.group <= 2)
		return launch<TQ, TKV, D, 2>(stream, p, n_tokens);
	if (p.group <= 4)
		return launch<TQ, TKV, D, 4>(stream, p, n_tokens);
	if (p.group <= 8)
		return launch<TQ, TKV, D, 8>(stream, p, n_tokens);
	if (p.group <= 16)
		return launch<TQ, TKV, D, 16>(stream, p, n_tokens);
	return shmrt_fail(ENOTSUP, "attention (cuda): %d query heads per kv head; at most 16", p.group);
}

template <typename TQ, typename TKV> int launch_dim(cudaStream_t stream, const decode_params &p, int n_tokens, int D)
{
	if (D == 64)
		return launch_group<TQ, TKV, 64>(stream, p, n_tokens);
	return launch_group<TQ, TKV, 128>(stream, p, n_tokens);
}

/* Splits: enough blocks for about four per SM, at most one per TILE
 * keys, and no more than the workspace holds. */
void plan_splits(const struct shmrt_cuda_dev *dev, const struct shmrt_attention_args *a, decode_params &p)
{
	int D = a->cache.head_dim;
	int64_t blocks = (int64_t)a->n_tokens * a->cache.n_kv_heads;
	int64_t want = (4 * (int64_t)dev->n_sm + blocks - 1) / blocks;
	int max_ctx = a->max_ctx_len > 0 ? a->max_ctx_len : 1;
	int64_t most = div_up(max_ctx, TILE);
	int64_t per_split = (int64_t)a->n_tokens * a->n_heads * (D * sizeof(float) + sizeof(float2));
	int64_t fits = (int64_t)dev->attn_ws_bytes / per_split;
	int64_t n = want < most ? want : most;
	if (n > fits)
		n = fits;
	if (n < 1)
		n = 1;
	p.chunk = div_up(div_up(max_ctx, (int)n), TILE) * TILE;
	p.n_splits = div_up(max_ctx, p.chunk);
	p.part_o = (float *)dev->attn_ws;
	p.part_ml = (float2 *)((char *)dev->attn_ws + (size_t)p.n_splits * a->n_tokens * a->n_heads * D * sizeof(float));
}

} // namespace

extern "C" int shmrt_cuda_attention_decode(struct shmrt_cuda_dev *dev, cudaStream_t stream,
					   const struct shmrt_attention_args *a, enum shmrt_cuda_attn_rows rows)
{
	const struct shmrt_kv_cache *c = &a->cache;
	if (c->head_dim != 64 && c->head_dim != 128)
		return shmrt_fail(ENOTSUP, "attention (cuda): head_dim %d; 64 or 128", c->head_dim);
	bool q_ok = a->dtype == SHMRT_F32 || a->dtype == SHMRT_BF16;
	bool kv_ok = c->dtype == SHMRT_F32 || c->dtype == SHMRT_BF16;
	if (!q_ok || !kv_ok)
		return shmrt_fail(ENOTSUP, "attention (cuda): q %s, cache %s; f32 or bf16", shmrt_dtype_name(a->dtype),
				  shmrt_dtype_name(c->dtype));
	if (a->n_tokens == 0)
		return 0;
	decode_params p = {};
	p.n_seqs = a->n_seqs, p.n_heads = a->n_heads, p.n_kv_heads = c->n_kv_heads;
	p.group = a->n_heads / c->n_kv_heads, p.block_size = c->block_size;
	p.scale = a->scale;
	p.cu_q_lens = a->cu_q_lens, p.ctx_lens = a->ctx_lens, p.block_tables = a->block_tables;
	p.table_stride = a->block_table_stride;
	p.q = a->q, p.q_stride = a->q_stride, p.out = a->out;
	p.k = c->k, p.v = c->v;
	p.rows = rows;
	plan_splits(dev, a, p);
	int D = c->head_dim;
	if (a->dtype == SHMRT_BF16)
		return c->dtype == SHMRT_BF16 ? launch_dim<bf16, bf16>(stream, p, a->n_tokens, D)
					      : launch_dim<bf16, float>(stream, p, a->n_tokens, D);
	return c->dtype == SHMRT_BF16 ? launch_dim<float, bf16>(stream, p, a->n_tokens, D)
				      : launch_dim<float, float>(stream, p, a->n_tokens, D);
}
