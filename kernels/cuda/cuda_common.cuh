/* Internal: helpers the CUDA kernels share: dtype loads and stores, warp
 * reductions, cp.async, launch-error checks. Device code only sees the
 * dtype through templates; the host picks the instantiation. */
#ifndef SHMRT_CUDA_COMMON_CUH
#define SHMRT_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>

#include "cuda_internal.h"

extern "C" {
#include "fail.h"
}

typedef __nv_bfloat16 bf16;

static __host__ __device__ inline int div_up(int a, int b)
{
	return (a + b - 1) / b;
}

/* The status of the launch just made (a bad configuration, or a fault of
 * earlier work on the device): 0 or -EIO naming the kernel. */
static inline int cuda_launch_check(const char *kernel)
{
	cudaError_t e = cudaGetLastError();
	if (e == cudaSuccess)
		return 0;
	return shmrt_fail(EIO, "cuda %s: %s", kernel, cudaGetErrorString(e));
}

/* A CUDA runtime call's status as 0 or -errno with the message set. */
static inline int cuda_status(cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	return shmrt_fail(e == cudaErrorMemoryAllocation ? ENOMEM : EIO, "cuda %s: %s", what,
			  cudaGetErrorString(e));
}

/* ---- scalar loads and stores in any storage dtype ---- */

__device__ __forceinline__ float to_f32(float x)
{
	return x;
}
__device__ __forceinline__ float to_f32(bf16 x)
{
	return __bfloat162float(x);
}
__device__ __forceinline__ float to_f32(__half x)
{
	return __half2float(x);
}

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x)
{
	return x;
}
/* __float2bfloat16 and __float2half round to nearest even, as the
 * reference's shmrt_store does. */
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float x)
{
	return __float2bfloat16(x);
}
template <> __device__ __forceinline__ __half from_f32<__half>(float x)
{
	return __float2half(x);
}

/* Stores into an array whose dtype is known only at run time (epilogues,
 * where one branch per element costs nothing next to the main loop). */
__device__ __forceinline__ void store_dt(void *p, enum shmrt_dtype dt, int64_t i, float v)
{
	if (dt == SHMRT_BF16)
		((bf16 *)p)[i] = __float2bfloat16(v);
	else if (dt == SHMRT_F16)
		((__half *)p)[i] = __float2half(v);
	else
		((float *)p)[i] = v;
}

__device__ __forceinline__ float load_dt(const void *p, enum shmrt_dtype dt, int64_t i)
{
	if (dt == SHMRT_BF16)
		return __bfloat162float(((const bf16 *)p)[i]);
	if (dt == SHMRT_F16)
		return __half2float(((const __half *)p)[i]);
	return ((const float *)p)[i];
}

/* ---- 8 consecutive elements as fp32 (one 16-byte load for 16-bit types,
 * two for fp32); p must be 16-byte aligned. ---- */

__device__ __forceinline__ void load8(const float *p, float out[8])
{
	float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
	out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
	out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}

__device__ __forceinline__ void load8(const bf16 *p, float out[8])
{
	uint4 u = *(const uint4 *)p;
	const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
	for (int i = 0; i < 4; i++) {
		float2 f = __bfloat1622float2(h[i]);
		out[2 * i] = f.x, out[2 * i + 1] = f.y;
	}
}

__device__ __forceinline__ void load8(const __half *p, float out[8])
{
	uint4 u = *(const uint4 *)p;
	const __half2 *h = (const __half2 *)&u;
	for (int i = 0; i < 4; i++) {
		float2 f = __half22float2(h[i]);
		out[2 * i] = f.x, out[2 * i + 1] = f.y;
	}
}

/* ---- warp reductions (all 32 lanes take part) ---- */

__device__ __forceinline__ float warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the total. scratch: 32 floats of shared memory. */
__device__ __forceinline__ float block_sum(float v, float *scratch)
{
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
	v = warp_sum(v);
	__syncthreads(); /* scratch may still be read by a previous call */
	if (lane == 0)
		scratch[warp] = v;
	__syncthreads();
	v = lane < n_warps ? scratch[lane] : 0.0f;
	return warp_sum(v);
}

/* ---- cp.async (sm_80+): 16 bytes global -> shared, bypassing L1; with
 * valid false the 16 bytes are zero-filled and nothing is read (PTX ISA,
 * "cp.async": src-size 0). ---- */

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid)
{
	unsigned s = (unsigned)__cvta_generic_to_shared(smem);
	int n = valid ? 16 : 0;
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n) : "memory");
}

__device__ __forceinline__ void cp_async_commit()
{
	asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Waits until at most n of this thread's committed groups are pending. */
template <int n> __device__ __forceinline__ void cp_async_wait()
{
	asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory");
}

/* ---- the ragged-batch metadata (shmrt/backend.h) ---- */

/* The sequence owning token t: the s with cu_q_lens[s] <= t <
 * cu_q_lens[s + 1] (binary search; empty sequences are skipped). */
__device__ __forceinline__ int seq_of_token(const int32_t *cu_q_lens, int n_seqs, int t)
{
	int lo = 0, hi = n_seqs - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (cu_q_lens[mid] <= t)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Element offset of (block, kv head, slot in block, dim 0) in a cache
 * array: k[block][kv_head][slot][head_dim]. */
__device__ __forceinline__ int64_t kv_offset(int64_t block, int head, int slot, int n_kv_heads, int block_size,
					     int head_dim)
{
	return ((block * n_kv_heads + head) * block_size + slot) * (int64_t)head_dim;
}

#endif
