/* Writing new tokens' K and V rows into their paged-cache slots (vLLM's
 * reshape_and_cache). CPU reference: kernels/cpu/ref_attention.c
 * (shmrt_ref_kv_write).
 *
 * One block per token; its threads copy the token's n_kv_heads * head_dim
 * elements of k and v, converting to the cache dtype. Slot -1 (padding)
 * is skipped; so is a slot outside the cache, which the CPU backends
 * report as an error but a GPU kernel cannot, so that it never writes
 * out of bounds. */
#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}

namespace {

struct kv_write_params {
	const void *k, *v;
	int64_t k_stride, v_stride;
	enum shmrt_dtype dtype;
	const int32_t *slots;
	void *kc, *vc;
	enum shmrt_dtype cache_dtype;
	int64_t n_slots;
	int n_kv_heads, block_size, head_dim;
};

__global__ void kv_write_kernel(kv_write_params p)
{
	int t = blockIdx.x;
	int slot = p.slots[t];
	if (slot < 0 || slot >= p.n_slots)
		return;
	int block = slot / p.block_size, in_block = slot % p.block_size;
	int row = p.n_kv_heads * p.head_dim;
	for (int i = threadIdx.x; i < row; i += blockDim.x) {
		int h = i / p.head_dim, d = i % p.head_dim;
		int64_t dst = kv_offset(block, h, in_block, p.n_kv_heads, p.block_size, p.head_dim) + d;
		store_dt(p.kc, p.cache_dtype, dst, load_dt(p.k, p.dtype, t * p.k_stride + i));
		store_dt(p.vc, p.cache_dtype, dst, load_dt(p.v, p.dtype, t * p.v_stride + i));
	}
}

} // namespace

extern "C" int shmrt_cuda_kv_write(void *stream, const struct shmrt_kv_write_args *a)
{
	int rc = shmrt_check_kv_write(a);
	if (rc || a->n_tokens == 0)
		return rc;
	const struct shmrt_kv_cache *c = &a->cache;
	kv_write_params p = {a->k, a->v, a->k_stride, a->v_stride, a->dtype, a->slots, c->k, c->v, c->dtype,
			     (int64_t)c->num_blocks * c->block_size, c->n_kv_heads, c->block_size, c->head_dim};
	kv_write_kernel<<<a->n_tokens, 256, 0, (cudaStream_t)stream>>>(p);
	return cuda_launch_check("kv_write");
}
