/* Small-m matmul (decode): Y = X W^T (+ bias), bound by reading W once.
 * CPU reference: kernels/cpu/ref_matmul.c.
 *
 * Each warp owns COLS consecutive output columns for MB rows of X: its
 * lanes stream the W rows with 16-byte loads (8 elements a lane, 256 a
 * warp per step), multiply by the same 8 elements of each X row (small,
 * cached in L1/L2) and sum across the warp at the end. Any dtypes, any
 * shape; the vector loads need k % 8 == 0 and 16-byte aligned x and w,
 * otherwise the same loop runs one element a lane. */
#include "cuda_common.cuh"

namespace {

constexpr int WARPS = 4; /* small blocks: n = 1024 still fills the GPU */
constexpr int COLS = 2;  /* output columns per warp */

template <typename TX, typename TW, int MB>
__global__ void __launch_bounds__(WARPS * 32)
gemv_kernel(int M, int N, int K, const TX *__restrict__ x, const TW *__restrict__ w, const TW *__restrict__ bias,
	    void *__restrict__ y, enum shmrt_dtype y_dt, bool vec)
{
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	int n0 = (blockIdx.x * WARPS + warp) * COLS;
	int m0 = blockIdx.y * MB;
	if (n0 >= N)
		return; /* the whole warp leaves together */

	/* Rows and columns past the edge are clamped to the last one: their
	 * loads stay in bounds and their sums are never stored. */
	const TW *wr[COLS];
	const TX *xr[MB];
#pragma unroll
	for (int c = 0; c < COLS; c++)
		wr[c] = w + (int64_t)min(n0 + c, N - 1) * K;
#pragma unroll
	for (int r = 0; r < MB; r++)
		xr[r] = x + (int64_t)min(m0 + r, M - 1) * K;

	float acc[MB][COLS];
#pragma unroll
	for (int r = 0; r < MB; r++)
#pragma unroll
		for (int c = 0; c < COLS; c++)
			acc[r][c] = 0.0f;

	if (vec) {
#pragma unroll 4
		for (int k = lane * 8; k < K; k += 32 * 8) {
			float wv[COLS][8];
#pragma unroll
			for (int c = 0; c < COLS; c++)
				load8(wr[c] + k, wv[c]);
#pragma unroll
			for (int r = 0; r < MB; r++) {
				float xv[8];
				load8(xr[r] + k, xv);
#pragma unroll
				for (int c = 0; c < COLS; c++)
#pragma unroll
					for (int i = 0; i < 8; i++)
						acc[r][c] = fmaf(xv[i], wv[c][i], acc[r][c]);
			}
		}
	} else {
		for (int k = lane; k < K; k += 32) {
			float wv[COLS];
#pragma unroll
			for (int c = 0; c < COLS; c++)
				wv[c] = to_f32(wr[c][k]);
#pragma unroll
			for (int r = 0; r < MB; r++) {
				float xv = to_f32(xr[r][k]);
#pragma unroll
				for (int c = 0; c < COLS; c++)
					acc[r][c] = fmaf(xv, wv[c], acc[r][c]);
			}
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
					v += to_f32(bias[n]);
				store_dt(y, y_dt, (int64_t)m * N + n, v);
			}
		}
}

template <typename TX, typename TW, int MB> int launch(cudaStream_t stream, const struct shmrt_matmul_args *a)
{
	static_assert(MB * COLS <= 32, "one lane stores each output");
	bool vec = a->k % 8 == 0 && (uintptr_t)a->x % 16 == 0 && (uintptr_t)a->w % 16 == 0;
	dim3 grid(div_up(a->n, WARPS * COLS), div_up(a->m, MB));
	gemv_kernel<TX, TW, MB><<<grid, WARPS * 32, 0, stream>>>(a->m, a->n, a->k, (const TX *)a->x, (const TW *)a->w,
								 (const TW *)a->bias, a->y, a->y_dtype, vec);
	return cuda_launch_check("matmul (gemv)");
}

/* Rows per block: the smallest power of two covering m, at most 16 (a
 * larger m takes several blocks along y, each re-reading W from L2). */
template <typename TX, typename TW> int launch_rows(cudaStream_t stream, const struct shmrt_matmul_args *a)
{
	if (a->m <= 1)
		return launch<TX, TW, 1>(stream, a);
	if (a->m <= 2)
		return launch<TX, TW, 2>(stream, a);
	if (a->m <= 4)
		return launch<TX, TW, 4>(stream, a);
	if (a->m <= 8)
		return launch<TX, TW, 8>(stream, a);
	return launch<TX, TW, 16>(stream, a);
}

template <typename TX> int launch_w(cudaStream_t stream, const struct shmrt_matmul_args *a)
{
	switch (a->w_dtype) {
	case SHMRT_BF16:
		return launch_rows<TX, bf16>(stream, a);
	case SHMRT_F16:
		return launch_rows<TX, __half>(stream, a);
	case SHMRT_F32:
		return launch_rows<TX, float>(stream, a);
	default: /* block formats: matmul_quant.cu */
		break;
	}
	return shmrt_fail(ENOTSUP, "matmul (gemv): weight dtype %d", (int)a->w_dtype);
}

} // namespace

extern "C" int shmrt_cuda_mm_gemv(cudaStream_t stream, const struct shmrt_matmul_args *a)
{
	if (a->y_dtype == SHMRT_F16)
		return shmrt_fail(ENOTSUP, "matmul (cuda): y must be f32 or bf16");
	if (a->m == 0)
		return 0;
	switch (a->x_dtype) {
	case SHMRT_BF16:
		return launch_w<bf16>(stream, a);
	case SHMRT_F32:
		return launch_w<float>(stream, a);
	default:
		return shmrt_fail(ENOTSUP, "matmul (cuda): x must be f32 or bf16, not %s",
				  shmrt_dtype_name(a->x_dtype));
	}
}
