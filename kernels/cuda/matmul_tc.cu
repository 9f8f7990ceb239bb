/* Large-m matmul (prefill) on tensor cores: Y = X W^T (+ bias), bf16 x and
 * w, fp32 accumulation, y f32 or bf16. CPU reference:
 * kernels/cpu/ref_matmul.c.
 *
 * The classic shared-memory tiling (as in NVIDIA's "CUDA C++ Programming
 * Guide", Warp Matrix Functions, and the Ampere GEMM write-ups): a block
 * computes a BM x BN tile of Y, stepping through k BK at a time; the X and
 * W slices of the next step are copied into shared memory with cp.async
 * while the tensor cores (WMMA 16x16x16 bf16) work on the current one
 * (double buffering). W rows are read as WMMA's column-major B operand, so
 * neither matrix is transposed. Edges (m, n, k not multiples of the tile)
 * are zero-filled by cp.async. Needs k % 8 == 0 and 16-byte aligned x and
 * w: a 16-byte copy must not straddle a row. */
#include <mma.h>

#include "cuda_common.cuh"

namespace {

using namespace nvcuda;

constexpr int BK = 32;
/* Shared rows of BK + 8 elements (80 bytes): 16-byte aligned for cp.async,
 * and the 8 rows one fragment load touches fall in distinct banks. */
constexpr int LDS = BK + 8;

template <int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)
tc_kernel(int M, int N, int K, const bf16 *__restrict__ x, const bf16 *__restrict__ w, const bf16 *__restrict__ bias,
	  void *__restrict__ y, enum shmrt_dtype y_dt)
{
	constexpr int WARPS_N = BN / WN, THREADS = (BM / WM) * WARPS_N * 32;
	constexpr int FM = WM / 16, FN = WN / 16;
	constexpr int CHUNKS = BK / 8; /* 16-byte pieces per tile row */

	__shared__ __align__(128) bf16 As[2][BM][LDS];
	__shared__ __align__(128) bf16 Bs[2][BN][LDS];
	static_assert(THREADS / 32 * 256 * sizeof(float) <= sizeof(As), "epilogue scratch fits in the A buffers");

	int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	int wm = warp / WARPS_N, wn = warp % WARPS_N;
	int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

	/* Copies the k0 .. k0+BK slice of this block's X rows and W rows into
	 * buffer `stage`, as one cp.async group. */
	auto load_stage = [&](int stage, int k0) {
		for (int c = tid; c < BM * CHUNKS; c += THREADS) {
			int r = c / CHUNKS, kc = (c % CHUNKS) * 8;
			bool ok = m0 + r < M && k0 + kc < K;
			cp_async16(&As[stage][r][kc], ok ? x + (int64_t)(m0 + r) * K + k0 + kc : x, ok);
		}
		for (int c = tid; c < BN * CHUNKS; c += THREADS) {
			int r = c / CHUNKS, kc = (c % CHUNKS) * 8;
			bool ok = n0 + r < N && k0 + kc < K;
			cp_async16(&Bs[stage][r][kc], ok ? w + (int64_t)(n0 + r) * K + k0 + kc : w, ok);
		}
		cp_async_commit();
	};

	wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
	for (int i = 0; i < FM; i++)
#pragma unroll
		for (int j = 0; j < FN; j++)
			wmma::fill_fragment(acc[i][j], 0.0f);

	int steps = div_up(K, BK);
	load_stage(0, 0);
	for (int s = 0; s < steps; s++) {
		int cur = s & 1;
		if (s + 1 < steps) {
			load_stage(cur ^ 1, (s + 1) * BK); /* that buffer was released by the
							    * barrier ending step s - 1 */
			cp_async_wait<1>();                /* step s's group has landed */
		} else {
			cp_async_wait<0>();
		}
		__syncthreads();
#pragma unroll
		for (int kk = 0; kk < BK; kk += 16) {
			wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[FM];
			wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb[FN];
#pragma unroll
			for (int i = 0; i < FM; i++)
				wmma::load_matrix_sync(fa[i], &As[cur][wm * WM + i * 16][kk], LDS);
#pragma unroll
			for (int j = 0; j < FN; j++)
				wmma::load_matrix_sync(fb[j], &Bs[cur][wn * WN + j * 16][kk], LDS);
#pragma unroll
			for (int i = 0; i < FM; i++)
#pragma unroll
				for (int j = 0; j < FN; j++)
					wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
		}
		__syncthreads(); /* everyone is done with buffer cur */
	}

	/* Epilogue: each warp stages one 16x16 fragment at a time through its
	 * own 1 KiB of the (now idle) A buffers; lane l writes 8 elements of
	 * row l/2. */
	float *scratch = (float *)&As[0][0][0] + warp * 256;
	int r = lane / 2, c0 = (lane % 2) * 8;
#pragma unroll
	for (int i = 0; i < FM; i++)
#pragma unroll
		for (int j = 0; j < FN; j++) {
			wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
			__syncwarp();
			int m = m0 + wm * WM + i * 16 + r, n = n0 + wn * WN + j * 16 + c0;
			if (m < M)
				for (int e = 0; e < 8 && n + e < N; e++) {
					float v = scratch[r * 16 + c0 + e];
					if (bias)
						v += __bfloat162float(bias[n + e]);
					store_dt(y, y_dt, (int64_t)m * N + n + e, v);
				}
			__syncwarp();
		}
}

template <int BM, int BN, int WM, int WN> int launch(cudaStream_t stream, const struct shmrt_matmul_args *a)
{
	dim3 grid(div_up(a->n, BN), div_up(a->m, BM));
	tc_kernel<BM, BN, WM, WN><<<grid, (BM / WM) * (BN / WN) * 32, 0, stream>>>(
		a->m, a->n, a->k, (const bf16 *)a->x, (const bf16 *)a->w, (const bf16 *)a->bias, a->y, a->y_dtype);
	return cuda_launch_check("matmul (tensor cores)");
}

} // namespace

/* tile 64: 4 warps of 32x32; tile 128: 8 warps of 64x32. */
extern "C" int shmrt_cuda_mm_tc(cudaStream_t stream, const struct shmrt_matmul_args *a, int tile)
{
	if (a->x_dtype != SHMRT_BF16 || a->w_dtype != SHMRT_BF16 || a->y_dtype == SHMRT_F16)
		return shmrt_fail(ENOTSUP, "matmul (tensor cores): needs bf16 x and w, f32 or bf16 y");
	if (a->k % 8 || (uintptr_t)a->x % 16 || (uintptr_t)a->w % 16)
		return shmrt_fail(ENOTSUP, "matmul (tensor cores): needs k %% 8 == 0 and 16-byte aligned x, w");
	if (a->m == 0)
		return 0;
	if (tile == 128)
		return launch<128, 128, 64, 32>(stream, a);
	return launch<64, 64, 32, 32>(stream, a);
}
