/* Rotary embedding in place on q and k, rotate_half pairing (dims i and
 * i + head_dim/2). CPU reference: kernels/cpu/ref_rope.c.
 *
 * inv_freq (default or Llama-3 scaled, kernels/rope_freq.h) is computed
 * on the host, head_dim/2 values, and passed by value. The angle is
 * position * inv_freq in fp32 as Hugging Face computes it; sincosf's full
 * range reduction keeps large positions accurate. One block per token;
 * its threads take (head, pair) of q, then of k. */
#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}
#include "rope_freq.h"

namespace {

constexpr int MAX_HALF = 128; /* head_dim up to 256 */

struct inv_freq_table {
	float f[MAX_HALF];
};

struct rope_params {
	int n_heads, n_kv_heads, half;
	void *q, *k;
	int64_t q_stride, k_stride;
	enum shmrt_dtype dtype;
	const int32_t *positions;
	inv_freq_table inv;
};

__global__ void rope_kernel(rope_params p)
{
	int t = blockIdx.x, hd = 2 * p.half;
	float pos = (float)p.positions[t];
	int n_q = p.n_heads * p.half, n = n_q + (p.k ? p.n_kv_heads * p.half : 0);
	for (int j = threadIdx.x; j < n; j += blockDim.x) {
		bool is_q = j < n_q;
		int jj = is_q ? j : j - n_q, h = jj / p.half, i = jj % p.half;
		void *x = is_q ? p.q : p.k;
		int64_t i0 = t * (is_q ? p.q_stride : p.k_stride) + (int64_t)h * hd + i, i1 = i0 + p.half;
		float sn, cs;
		sincosf(pos * p.inv.f[i], &sn, &cs);
		float x0 = load_dt(x, p.dtype, i0), x1 = load_dt(x, p.dtype, i1);
		store_dt(x, p.dtype, i0, x0 * cs - x1 * sn);
		store_dt(x, p.dtype, i1, x1 * cs + x0 * sn);
	}
}

} // namespace

extern "C" int shmrt_cuda_rope(void *stream, const struct shmrt_rope_args *a)
{
	int rc = shmrt_check_rope(a);
	if (rc || a->n_tokens == 0)
		return rc;
	int half = a->head_dim / 2;
	if (half > MAX_HALF)
		return shmrt_fail(ENOTSUP, "rope (cuda): head_dim %d; at most %d", a->head_dim, 2 * MAX_HALF);
	rope_params p = {};
	p.n_heads = a->n_heads, p.n_kv_heads = a->n_kv_heads, p.half = half;
	p.q = a->q, p.k = a->k, p.q_stride = a->q_stride, p.k_stride = a->k_stride;
	p.dtype = a->dtype, p.positions = a->positions;
	for (int i = 0; i < half; i++)
		p.inv.f[i] = shmrt_rope_inv_freq(&a->cfg, a->head_dim, i);
	rope_kernel<<<a->n_tokens, 256, 0, (cudaStream_t)stream>>>(p);
	return cuda_launch_check("rope");
}
