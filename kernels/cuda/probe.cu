/* Whether this build's kernels can run on the current device: a device
 * of an architecture no -gencode covers (meson option gpu_archs) has no
 * kernel image, and every launch would fail. */
#include "cuda_common.cuh"

namespace {

__global__ void probe_kernel() {}

} // namespace

extern "C" cudaError_t shmrt_cuda_probe_kernels(void)
{
	struct cudaFuncAttributes attr;
	return cudaFuncGetAttributes(&attr, probe_kernel);
}
