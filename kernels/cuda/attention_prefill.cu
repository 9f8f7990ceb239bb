/* Tiled causal attention for prefill on tensor cores: bf16 q and cache,
 * fp32 accumulation and softmax. CPU reference:
 * kernels/cpu/ref_attention.c.
 *
 * FlashAttention-2's loop order (Dao, 2023): a block owns BM = 64 new
 * tokens of one sequence and one query head, four warps of 16 rows each,
 * and walks that sequence's keys BN = 64 at a time up to the last row's
 * position, keeping a running max and sum per row so the scores never
 * leave shared memory:
 *   K, V tile -> shared memory (cp.async, paged through the block table;
 *                V's copy overlaps the score and softmax work)
 *   S = Q K^T        (WMMA 16x16x16 bf16, per warp its 16 rows)
 *   causal mask, online softmax on S in shared memory, P rounded to bf16
 *   O = O * alpha + P V   (O stays in accumulator fragments)
 * Rescaling O by a per-row factor needs to know which row each fragment
 * element holds; WMMA leaves that unspecified, so it is read once from a
 * fragment loaded from a matrix whose entries are their own row numbers.
 * Rows are new tokens at positions ctx_len - q_len + j: chunked prefill
 * (cached tokens before the new ones) is the same loop with a longer
 * key range. */
#include <math.h>
#include <mma.h>

#include "cuda_common.cuh"

namespace {

using namespace nvcuda;

constexpr int BM = 64, BN = 64, WARPS = 4, THREADS = WARPS * 32;

/* Row pitches of D + 8 bf16 (and BN + 4 floats): 16-byte aligned rows
 * whose 8-row fragment loads fall in distinct banks; every fragment
 * pointer stays 32-byte aligned as WMMA requires. */
template <int D> struct prefill_smem {
	bf16 q[BM][D + 8];
	bf16 k[BN][D + 8];
	bf16 v[BN][D + 8];
	float s[BM][BN + 4];
	bf16 p[BM][BN + 8];
	float m[BM], l[BM], alpha[BM];
};

struct prefill_params {
	int n_seqs, n_heads, n_kv_heads, group, block_size;
	float scale;
	const int32_t *cu_q_lens, *ctx_lens, *block_tables;
	int table_stride;
	const bf16 *q;
	int64_t q_stride;
	bf16 *out;
	const bf16 *k, *v;
	enum shmrt_cuda_attn_rows rows;
};

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc_frag;

template <int D> __global__ void __launch_bounds__(THREADS) prefill_kernel(prefill_params p)
{
	extern __shared__ __align__(128) unsigned char smem_raw[];
	prefill_smem<D> &sm = *reinterpret_cast<prefill_smem<D> *>(smem_raw);

	int tile = blockIdx.x, s = blockIdx.y, hq = blockIdx.z;
	int q0 = p.cu_q_lens[s], q_len = p.cu_q_lens[s + 1] - q0;
	if (p.rows != SHMRT_CUDA_ATTN_ALL && (p.rows == SHMRT_CUDA_ATTN_PREFILLS) != (q_len > 1))
		return;
	int j0 = tile * BM;
	if (j0 >= q_len)
		return;
	int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	int past = p.ctx_lens[s] - q_len; /* cached keys before the first new token */
	int rows_here = min(BM, q_len - j0);
	int kv_end = past + j0 + rows_here; /* the last row sees keys 0 .. kv_end-1 */
	int hk = hq / p.group;
	const int32_t *table = p.block_tables + (int64_t)s * p.table_stride;

	for (int i = tid; i < BM * D; i += THREADS) {
		int r = i / D, d = i % D;
		sm.q[r][d] = r < rows_here ? p.q[(int64_t)(q0 + j0 + r) * p.q_stride + (int64_t)hq * D + d]
					   : __float2bfloat16(0.0f);
	}
	if (tid < BM) {
		sm.m[tid] = -INFINITY;
		sm.l[tid] = 0.0f;
	}

	/* The row (0..15) of each accumulator element of this lane. */
	float *mine = &sm.s[warp * 16][0];
	for (int i = lane; i < 16 * 16; i += 32)
		mine[i / 16 * (BN + 4) + i % 16] = (float)(i / 16);
	__syncwarp();
	acc_frag rowf;
	wmma::load_matrix_sync(rowf, mine, BN + 4, wmma::mem_row_major);
	int rowof[acc_frag::num_elements];
#pragma unroll
	for (int i = 0; i < acc_frag::num_elements; i++)
		rowof[i] = (int)rowf.x[i];

	acc_frag o[D / 16];
#pragma unroll
	for (int db = 0; db < D / 16; db++)
		wmma::fill_fragment(o[db], 0.0f);
	__syncthreads(); /* q, m, l in place */

	wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[D / 16];
#pragma unroll
	for (int kd = 0; kd < D / 16; kd++)
		wmma::load_matrix_sync(qf[kd], &sm.q[warp * 16][kd * 16], D + 8);

	int r = lane / 2, R = warp * 16 + r;  /* softmax: two lanes per row ... */
	int c0 = (lane % 2) * (BN / 2);       /* ... each half of the columns */
	int row_pos = past + j0 + R;          /* position of row R's token */

	for (int n0 = 0; n0 < kv_end; n0 += BN) {
		/* K then V as two cp.async groups; keys past kv_end read as 0 */
		for (int half = 0; half < 2; half++) {
			const bf16 *src = half ? p.v : p.k;
			bf16(*dst)[D + 8] = half ? sm.v : sm.k;
			for (int c = tid; c < BN * (D / 8); c += THREADS) {
				int kr = c / (D / 8), d = c % (D / 8) * 8, pos = n0 + kr;
				bool ok = pos < kv_end;
				int64_t off = ok ? kv_offset(table[pos / p.block_size], hk, pos % p.block_size, p.n_kv_heads,
							     p.block_size, D) + d
						 : 0;
				cp_async16(&dst[kr][d], src + off, ok);
			}
			cp_async_commit();
		}
		cp_async_wait<1>(); /* K has landed */
		__syncthreads();

#pragma unroll
		for (int nb = 0; nb < BN / 16; nb++) {
			acc_frag sf;
			wmma::fill_fragment(sf, 0.0f);
#pragma unroll
			for (int kd = 0; kd < D / 16; kd++) {
				wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kf;
				wmma::load_matrix_sync(kf, &sm.k[nb * 16][kd * 16], D + 8);
				wmma::mma_sync(sf, qf[kd], kf, sf);
			}
			wmma::store_matrix_sync(&sm.s[warp * 16][nb * 16], sf, BN + 4, wmma::mem_row_major);
		}
		__syncwarp();

		{
			float *srow = &sm.s[R][0];
			float mx = -INFINITY;
			for (int c = c0; c < c0 + BN / 2; c++) {
				int key = n0 + c;
				float x = key <= row_pos && key < kv_end ? srow[c] * p.scale : -INFINITY;
				srow[c] = x;
				mx = fmaxf(mx, x);
			}
			mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
			float m_old = sm.m[R], m_new = fmaxf(m_old, mx);
			float m_use = m_new == -INFINITY ? 0.0f : m_new; /* no key seen yet */
			float sum = 0.0f;
			for (int c = c0; c < c0 + BN / 2; c++) {
				float e = expf(srow[c] - m_use);
				sm.p[R][c] = __float2bfloat16(e);
				sum += e;
			}
			sum += __shfl_xor_sync(0xffffffffu, sum, 1); /* both lanes have read m_old */
			if (lane % 2 == 0) {
				float alpha = expf(m_old - m_use);
				sm.alpha[R] = alpha;
				sm.l[R] = sm.l[R] * alpha + sum;
				sm.m[R] = m_new;
			}
		}
		__syncwarp();

#pragma unroll
		for (int db = 0; db < D / 16; db++)
#pragma unroll
			for (int i = 0; i < acc_frag::num_elements; i++)
				o[db].x[i] *= sm.alpha[warp * 16 + rowof[i]];

		cp_async_wait<0>(); /* V has landed */
		__syncthreads();
#pragma unroll
		for (int kb = 0; kb < BN / 16; kb++) {
			wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pf;
			wmma::load_matrix_sync(pf, &sm.p[warp * 16][kb * 16], BN + 8);
#pragma unroll
			for (int db = 0; db < D / 16; db++) {
				wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vf;
				wmma::load_matrix_sync(vf, &sm.v[kb * 16][db * 16], D + 8);
				wmma::mma_sync(o[db], pf, vf, o[db]);
			}
		}
		__syncthreads(); /* K and V are overwritten next step */
	}

	/* O / l, out through the warp's rows of sm.s, 16 columns at a time;
	 * lane writes 8 elements of row lane/2. Every row saw key 0: l > 0. */
	int oc = (lane % 2) * 8;
#pragma unroll
	for (int db = 0; db < D / 16; db++) {
#pragma unroll
		for (int i = 0; i < acc_frag::num_elements; i++)
			o[db].x[i] /= sm.l[warp * 16 + rowof[i]];
		wmma::store_matrix_sync(mine, o[db], BN + 4, wmma::mem_row_major);
		__syncwarp();
		if (r < rows_here - warp * 16) {
			bf16 *dst = p.out + ((int64_t)(q0 + j0 + R) * p.n_heads + hq) * D + db * 16 + oc;
			for (int e = 0; e < 8; e++)
				dst[e] = __float2bfloat16(sm.s[R][oc + e]);
		}
		__syncwarp();
	}
}

template <int D> int launch(struct shmrt_cuda_dev *dev, cudaStream_t stream, const prefill_params &p, int max_q_len)
{
	size_t smem = sizeof(prefill_smem<D>);
	if (smem > dev->smem_optin)
		return shmrt_fail(ENOTSUP, "attention (cuda prefill): needs %zu bytes of shared memory, the GPU has %zu",
				  smem, dev->smem_optin);
	cudaFuncSetAttribute(prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
	dim3 grid(div_up(max_q_len, BM), p.n_seqs, p.n_heads);
	prefill_kernel<D><<<grid, THREADS, smem, stream>>>(p);
	return cuda_launch_check("attention (prefill)");
}

} // namespace

extern "C" int shmrt_cuda_attention_prefill(struct shmrt_cuda_dev *dev, cudaStream_t stream,
					    const struct shmrt_attention_args *a, enum shmrt_cuda_attn_rows rows)
{
	const struct shmrt_kv_cache *c = &a->cache;
	if (a->dtype != SHMRT_BF16 || c->dtype != SHMRT_BF16 || (c->head_dim != 64 && c->head_dim != 128))
		return shmrt_fail(ENOTSUP, "attention (cuda prefill): needs bf16 q and cache, head_dim 64 or 128");
	if (a->n_tokens == 0 || a->n_seqs == 0)
		return 0;
	prefill_params p = {};
	p.n_seqs = a->n_seqs, p.n_heads = a->n_heads, p.n_kv_heads = c->n_kv_heads;
	p.group = a->n_heads / c->n_kv_heads, p.block_size = c->block_size;
	p.scale = a->scale;
	p.cu_q_lens = a->cu_q_lens, p.ctx_lens = a->ctx_lens, p.block_tables = a->block_tables;
	p.table_stride = a->block_table_stride;
	p.q = (const bf16 *)a->q, p.q_stride = a->q_stride, p.out = (bf16 *)a->out;
	p.k = (const bf16 *)c->k, p.v = (const bf16 *)c->v;
	p.rows = rows;
	if (c->head_dim == 64)
		return launch<64>(dev, stream, p, a->max_q_len);
	return launch<128>(dev, stream, p, a->max_q_len);
}
