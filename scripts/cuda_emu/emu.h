/* CPU emulation of the CUDA features kernels/cuda uses, so that its device
 * code runs (slowly) where there is no GPU: blocks run one after another,
 * a block's threads are coroutines switched at barriers, a warp's lanes
 * exchange values (shuffles, WMMA) through buffers at warp barriers,
 * __shared__ is `static` (run.sh passes -D__shared__=static), atomics are
 * plain read-modify-writes (one OS thread). Types and conversions (bf16,
 * fp16, dim3, float4) are the CUDA headers' own host versions. What it
 * cannot show: races between warps that real hardware would expose, the
 * real WMMA fragment layout (mma.h has its own), timing. Force-included
 * into each .cu file by run.sh after prep.py rewrote its launches. */
#pragma once
#include <cuda_runtime.h>
#undef __launch_bounds__
#define __launch_bounds__(...)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
using std::max;
using std::min;

extern uint3 emu_tid, emu_bid;
extern dim3 emu_bdim, emu_gdim;
#define threadIdx emu_tid
#define blockIdx emu_bid
#define blockDim emu_bdim
#define gridDim emu_gdim

void emu_barrier_block();
void emu_barrier_warp();
unsigned char *emu_dyn_smem();
extern unsigned long long emu_xbuf[32][32];
/* kernel<<<grid, block, smem, stream>>>(args) becomes
 * emu_launch([&] { kernel(args); }, grid, block, smem, stream). */
void emu_launch(std::function<void()> fn, dim3 grid, dim3 block, size_t smem = 0, cudaStream_t s = 0);

/* The runtime's template overloads taking a kernel (nvcc only). */
template <class T> cudaError_t cudaFuncSetAttribute(T *f, cudaFuncAttribute a, int v)
{
	return cudaFuncSetAttribute((const void *)f, a, v);
}
template <class T> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, T *f)
{
	return cudaFuncGetAttributes(a, (const void *)f);
}

static inline void __syncthreads() { emu_barrier_block(); }
static inline void __syncwarp(unsigned = 0xffffffffu) { emu_barrier_warp(); }

template <typename T> static T emu_shfl(T v, int src)
{
	static_assert(sizeof(T) <= 8, "shuffles of up to 8 bytes");
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	memcpy(&emu_xbuf[warp][lane], &v, sizeof(T));
	emu_barrier_warp();
	T r;
	memcpy(&r, &emu_xbuf[warp][src], sizeof(T));
	emu_barrier_warp();
	return r;
}
template <typename T> static T __shfl_xor_sync(unsigned, T v, int o, int = 32)
{
	return emu_shfl(v, (int)(threadIdx.x % 32) ^ o);
}
template <typename T> static T __shfl_up_sync(unsigned, T v, unsigned o, int = 32)
{
	int lane = threadIdx.x % 32;
	return emu_shfl(v, lane >= (int)o ? lane - (int)o : lane);
}
static inline float atomicAdd(float *p, float v) { float o = *p; *p += v; return o; }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { unsigned o = *p; *p += v; return o; }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
	unsigned long long o = *p;
	*p += v;
	return o;
}
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline unsigned long long __float2ull_rn(float f) { return (unsigned long long)std::nearbyint((double)f); }
static inline unsigned long long __double2ull_ru(double d) { return (unsigned long long)std::ceil(d); }
static inline unsigned long long __double2ull_rd(double d) { return (unsigned long long)std::floor(d); }
/* Single roundings: g++ fuses nothing without -mfma / -ffp-contract. */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
