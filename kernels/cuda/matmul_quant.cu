/* Matmul with W in one of llama.cpp's block formats (Q8_0, Q4_0, Q4_1,
 * Q4_K, Q5_K, Q6_K; quant_blocks.h): Y = X W^T (+ bias), W dequantized
 * inside the kernel, never expanded in memory. CPU reference:
 * kernels/cpu/ref_matmul.c.
 *
 * Two kernels, both reading W through quant.cuh's deq8 (8 elements of a
 * 32-element unit a thread):
 *  - GEMV (decode, small m): as matmul_gemv.cu, each warp owns COLS rows
 *    of W and MB (up to 8) rows of X; consecutive lanes read consecutive
 *    8-element pieces of a row (four lanes a unit, eight units a warp
 *    step), dequantize them in registers, multiply by the same 8 elements
 *    of each X row and sum across the warp at the end. Each W byte is read
 *    once for every MB rows of X: batched decode reuses it. ggml-cuda's
 *    mmvq.cu does the same with int8 dot products on X quantized to Q8_1;
 *    here X stays in fp32 and the results are those of the fp32
 *    reference's dequantized W.
 *  - tiled (prefill, larger m): 64 x 64 tiles of Y, 256 threads of 4 x 4
 *    outputs each; per 32-wide step of k, the X tile and the dequantized
 *    W tile go to shared memory as fp32 and every thread runs its
 *    outer products from there. No tensor cores: correct and simple, and
 *    the prefill of a quantized model is bound by it until a tensor-core
 *    tile replaces it (ggml-cuda's mmq.cu runs int8 mma on the blocks).
 *
 * x: f32 or bf16 (the CUDA backend's activations; what matmul_gemv.cu
 * takes); y: f32 or bf16; k a whole number of W's blocks (args.c); the
 * bias in its own bias_dtype (f32 in llama.cpp's files). */
#include "quant.cuh"

namespace {

/* ---- GEMV ---- */

constexpr int WARPS = 4;
constexpr int COLS = 2; /* rows of W per warp */

template <enum shmrt_dtype DT, typename TX, int MB>
__global__ void __launch_bounds__(WARPS * 32)
qgemv_kernel(int M, int N, int K, const TX *__restrict__ x, const uint8_t *__restrict__ w, int64_t row_bytes,
	     const void *__restrict__ bias, enum shmrt_dtype bias_dt, void *__restrict__ y, enum shmrt_dtype y_dt,
	     bool vec)
{
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	int n0 = (blockIdx.x * WARPS + warp) * COLS;
	int m0 = blockIdx.y * MB;
	if (n0 >= N)
		return; /* the whole warp leaves together */

	/* Rows past the edge are clamped to the last one: their loads stay in
	 * bounds and their sums are never stored. */
	const uint8_t *wr[COLS];
	const TX *xr[MB];
#pragma unroll
	for (int c = 0; c < COLS; c++)
		wr[c] = w + (int64_t)min(n0 + c, N - 1) * row_bytes;
#pragma unroll
	for (int r = 0; r < MB; r++)
		xr[r] = x + (int64_t)min(m0 + r, M - 1) * K;

	float acc[MB][COLS];
#pragma unroll
	for (int r = 0; r < MB; r++)
#pragma unroll
		for (int c = 0; c < COLS; c++)
			acc[r][c] = 0.0f;

#pragma unroll 2
	for (int i = lane; i < K / 8; i += 32) {
		float wv[COLS][8];
#pragma unroll
		for (int c = 0; c < COLS; c++)
			deq8<DT>(wr[c], i >> 2, i & 3, wv[c]);
#pragma unroll
		for (int r = 0; r < MB; r++) {
			float xv[8];
			if (vec) {
				load8(xr[r] + 8 * i, xv);
			} else {
#pragma unroll
				for (int j = 0; j < 8; j++)
					xv[j] = to_f32(xr[r][8 * i + j]);
			}
#pragma unroll
			for (int c = 0; c < COLS; c++)
#pragma unroll
				for (int j = 0; j < 8; j++)
					acc[r][c] = fmaf(xv[j], wv[c][j], acc[r][c]);
		}
	}

	/* After the butterfly every lane holds every sum; lane r*COLS+c
	 * stores output (r, c). */
#pragma unroll
	for (int r = 0; r < MB; r++)
#pragma unroll
		for (int c = 0; c < COLS; c++) {
			float v = warp_sum(acc[r][c]);
			int m = m0 + r, n = n0 + c;
			if (lane == r * COLS + c && m < M && n < N) {
				if (bias)
					v += load_dt(bias, bias_dt, n);
				store_dt(y, y_dt, (int64_t)m * N + n, v);
			}
		}
}

template <enum shmrt_dtype DT, typename TX, int MB>
int launch_gemv(cudaStream_t stream, const struct shmrt_matmul_args *a, bool vec)
{
	static_assert(MB * COLS <= 32, "one lane stores each output");
	dim3 grid(div_up(a->n, WARPS * COLS), div_up(a->m, MB));
	qgemv_kernel<DT, TX, MB><<<grid, WARPS * 32, 0, stream>>>(
		a->m, a->n, a->k, (const TX *)a->x, (const uint8_t *)a->w,
		(int64_t)shmrt_dtype_row_bytes(a->w_dtype, a->k), a->bias, a->bias_dtype, a->y, a->y_dtype, vec);
	return cuda_launch_check("matmul (quantized gemv)");
}

/* Rows of X per block: the smallest power of two covering m, at most 8
 * (a larger m takes several blocks along y, each re-reading W from L2). */
template <enum shmrt_dtype DT, typename TX>
int gemv_rows(cudaStream_t stream, const struct shmrt_matmul_args *a, bool vec)
{
	if (a->m <= 1)
		return launch_gemv<DT, TX, 1>(stream, a, vec);
	if (a->m <= 2)
		return launch_gemv<DT, TX, 2>(stream, a, vec);
	if (a->m <= 4)
		return launch_gemv<DT, TX, 4>(stream, a, vec);
	return launch_gemv<DT, TX, 8>(stream, a, vec);
}

/* ---- tiled ---- */

constexpr int BM = 64, BN = 64, BK = 32; /* BK: one unit of deq8 */
constexpr int THREADS = 256;             /* 16 x 16, 4 x 4 outputs each */
constexpr int PAD = 1; /* row stride 65: the loaders' stores hit 32 banks */

template <enum shmrt_dtype DT, typename TX>
__global__ void __launch_bounds__(THREADS)
qtile_kernel(int M, int N, int K, const TX *__restrict__ x, const uint8_t *__restrict__ w, int64_t row_bytes,
	     const void *__restrict__ bias, enum shmrt_dtype bias_dt, void *__restrict__ y, enum shmrt_dtype y_dt,
	     bool vec)
{
	static_assert(BM * BK == THREADS * 8 && BN * BK == THREADS * 8, "each thread loads 8 of X and 8 of W");
	__shared__ float xs[BK][BM + PAD]; /* k-major: a thread's 4 rows are one load each */
	__shared__ float ws[BK][BN + PAD];
	int t = threadIdx.x, tx = t % 16, ty = t / 16;
	int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

	/* Loader: row lr of the tile, elements 8 lq .. 8 lq + 7 of the step;
	 * rows past the edge clamped as in the GEMV. */
	int lr = t / 4, lq = t % 4;
	const TX *xrow = x + (int64_t)min(m0 + lr, M - 1) * K;
	const uint8_t *wrow = w + (int64_t)min(n0 + lr, N - 1) * row_bytes;

	float acc[4][4];
#pragma unroll
	for (int i = 0; i < 4; i++)
#pragma unroll
		for (int j = 0; j < 4; j++)
			acc[i][j] = 0.0f;

	for (int g = 0; g < K / BK; g++) {
		float xv[8], wv[8];
		int k = g * BK + lq * 8;
		if (vec) {
			load8(xrow + k, xv);
		} else {
#pragma unroll
			for (int j = 0; j < 8; j++)
				xv[j] = to_f32(xrow[k + j]);
		}
		deq8<DT>(wrow, g, lq, wv);
		__syncthreads(); /* the previous step's reads are done */
#pragma unroll
		for (int j = 0; j < 8; j++) {
			xs[lq * 8 + j][lr] = xv[j];
			ws[lq * 8 + j][lr] = wv[j];
		}
		__syncthreads();
#pragma unroll 8
		for (int kk = 0; kk < BK; kk++) {
			float xa[4], wb[4];
#pragma unroll
			for (int i = 0; i < 4; i++)
				xa[i] = xs[kk][ty + 16 * i], wb[i] = ws[kk][tx + 16 * i];
#pragma unroll
			for (int i = 0; i < 4; i++)
#pragma unroll
				for (int j = 0; j < 4; j++)
					acc[i][j] = fmaf(xa[i], wb[j], acc[i][j]);
		}
	}

#pragma unroll
	for (int i = 0; i < 4; i++)
#pragma unroll
		for (int j = 0; j < 4; j++) {
			int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
			if (m < M && n < N)
				store_dt(y, y_dt, (int64_t)m * N + n, acc[i][j] + (bias ? load_dt(bias, bias_dt, n) : 0.0f));
		}
}

template <enum shmrt_dtype DT, typename TX>
int launch_tiled(cudaStream_t stream, const struct shmrt_matmul_args *a, bool vec)
{
	dim3 grid(div_up(a->n, BN), div_up(a->m, BM));
	qtile_kernel<DT, TX><<<grid, THREADS, 0, stream>>>(a->m, a->n, a->k, (const TX *)a->x, (const uint8_t *)a->w,
							  (int64_t)shmrt_dtype_row_bytes(a->w_dtype, a->k),
							  a->bias, a->bias_dtype, a->y, a->y_dtype, vec);
	return cuda_launch_check("matmul (quantized tiled)");
}

template <enum shmrt_dtype DT, typename TX>
int launch_kernel(cudaStream_t stream, const struct shmrt_matmul_args *a, bool tiled)
{
	/* k is a multiple of 32: every 8-element piece of an X row is 16-byte
	 * aligned when the row start is */
	bool vec = (uintptr_t)a->x % 16 == 0;
	return tiled ? launch_tiled<DT, TX>(stream, a, vec) : gemv_rows<DT, TX>(stream, a, vec);
}

template <typename TX> int launch_w(cudaStream_t stream, const struct shmrt_matmul_args *a, bool tiled)
{
	switch (a->w_dtype) {
	case SHMRT_Q8_0:
		return launch_kernel<SHMRT_Q8_0, TX>(stream, a, tiled);
	case SHMRT_Q4_0:
		return launch_kernel<SHMRT_Q4_0, TX>(stream, a, tiled);
	case SHMRT_Q4_1:
		return launch_kernel<SHMRT_Q4_1, TX>(stream, a, tiled);
	case SHMRT_Q4_K:
		return launch_kernel<SHMRT_Q4_K, TX>(stream, a, tiled);
	case SHMRT_Q5_K:
		return launch_kernel<SHMRT_Q5_K, TX>(stream, a, tiled);
	case SHMRT_Q6_K:
		return launch_kernel<SHMRT_Q6_K, TX>(stream, a, tiled);
	default:
		return shmrt_fail(ENOTSUP, "matmul (cuda): w %s is not a block format", shmrt_dtype_name(a->w_dtype));
	}
}

} // namespace

extern "C" int shmrt_cuda_mm_quant(cudaStream_t stream, const struct shmrt_matmul_args *a, int tiled)
{
	unsigned align = quant_row_align(a->w_dtype);
	if (!align)
		return shmrt_fail(ENOTSUP, "matmul (cuda): w %s is not a block format", shmrt_dtype_name(a->w_dtype));
	if ((uintptr_t)a->w % align)
		return shmrt_fail(EINVAL, "matmul (cuda): %s weights must be %u-byte aligned", shmrt_dtype_name(a->w_dtype),
				  align);
	if (a->y_dtype == SHMRT_F16)
		return shmrt_fail(ENOTSUP, "matmul (cuda): y must be f32 or bf16");
	if (a->m == 0)
		return 0;
	switch (a->x_dtype) {
	case SHMRT_BF16:
		return launch_w<bf16>(stream, a, tiled);
	case SHMRT_F32:
		return launch_w<float>(stream, a, tiled);
	default:
		return shmrt_fail(ENOTSUP, "matmul (cuda): x must be f32 or bf16, not %s",
				  shmrt_dtype_name(a->x_dtype));
	}
}
