/* RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight, per row, in fp32.
 * CPU reference: kernels/cpu/ref_norm.c.
 *
 * One block per row: a block-wide sum of squares, then each thread
 * scales the elements it read. out may be x: every element is read
 * before the same thread writes it. */
#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}

namespace {

constexpr int THREADS = 256;

__global__ void __launch_bounds__(THREADS)
rmsnorm_kernel(int dim, float eps, const void *x, enum shmrt_dtype dt, const void *w, enum shmrt_dtype w_dt, void *out)
{
	__shared__ float scratch[32];
	int64_t row = (int64_t)blockIdx.x * dim;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < dim; i += THREADS) {
		float v = load_dt(x, dt, row + i);
		ss = fmaf(v, v, ss);
	}
	ss = block_sum(ss, scratch);
	float inv = 1.0f / sqrtf(ss / dim + eps);
	for (int i = threadIdx.x; i < dim; i += THREADS)
		store_dt(out, dt, row + i, load_dt(x, dt, row + i) * inv * load_dt(w, w_dt, i));
}

} // namespace

extern "C" int shmrt_cuda_rmsnorm(void *stream, const struct shmrt_rmsnorm_args *a)
{
	int rc = shmrt_check_rmsnorm(a);
	if (rc || a->rows == 0)
		return rc;
	rmsnorm_kernel<<<a->rows, THREADS, 0, (cudaStream_t)stream>>>(a->dim, a->eps, a->x, a->dtype, a->weight,
								       a->w_dtype, a->out);
	return cuda_launch_check("rmsnorm");
}
