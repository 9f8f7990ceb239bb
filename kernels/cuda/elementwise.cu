/* Element-wise kernels: SwiGLU and the residual add, in fp32 whatever the
 * storage dtype. CPU reference: kernels/cpu/ref_elementwise.c. */
#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}

namespace {

constexpr int THREADS = 256;

/* Enough blocks to fill the GPU; each thread then strides. */
static unsigned grid_for(int64_t n)
{
	int64_t b = (n + THREADS - 1) / THREADS;
	return (unsigned)(b < 65536 ? b : 65536);
}

__global__ void swiglu_kernel(int rows, int dim, const void *gate, const void *up, int64_t in_stride,
			      enum shmrt_dtype dt, void *out)
{
	int64_t n = (int64_t)rows * dim;
	for (int64_t i = blockIdx.x * (int64_t)THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * THREADS) {
		int64_t r = i / dim, in = r * in_stride + i % dim;
		float g = load_dt(gate, dt, in), u = load_dt(up, dt, in);
		store_dt(out, dt, i, g / (1.0f + expf(-g)) * u);
	}
}

__global__ void add_kernel(int64_t n, const void *a, const void *b, enum shmrt_dtype dt, void *out)
{
	for (int64_t i = blockIdx.x * (int64_t)THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * THREADS)
		store_dt(out, dt, i, load_dt(a, dt, i) + load_dt(b, dt, i));
}

} // namespace

extern "C" int shmrt_cuda_swiglu(void *stream, const struct shmrt_swiglu_args *a)
{
	int rc = shmrt_check_swiglu(a);
	if (rc || a->rows == 0)
		return rc;
	swiglu_kernel<<<grid_for((int64_t)a->rows * a->dim), THREADS, 0, (cudaStream_t)stream>>>(
		a->rows, a->dim, a->gate, a->up, a->in_stride, a->dtype, a->out);
	return cuda_launch_check("swiglu");
}

extern "C" int shmrt_cuda_add(void *stream, const struct shmrt_add_args *a)
{
	int rc = shmrt_check_add(a);
	if (rc || a->n == 0)
		return rc;
	add_kernel<<<grid_for(a->n), THREADS, 0, (cudaStream_t)stream>>>(a->n, a->a, a->b, a->dtype, a->out);
	return cuda_launch_check("add");
}
