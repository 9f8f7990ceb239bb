/* Embedding lookup: out[t] = table[tokens[t]], a row of zeros for an id
 * outside [0, vocab). CPU reference: kernels/cpu/ref_embedding.c. One
 * block per token. */
#include "cuda_common.cuh"

extern "C" {
#include "args.h"
}

namespace {

__global__ void embedding_kernel(int dim, int vocab, const int32_t *tokens, const void *table,
				 enum shmrt_dtype table_dt, void *out, enum shmrt_dtype out_dt)
{
	int t = blockIdx.x, id = tokens[t];
	bool valid = id >= 0 && id < vocab;
	for (int d = threadIdx.x; d < dim; d += blockDim.x)
		store_dt(out, out_dt, (int64_t)t * dim + d, valid ? load_dt(table, table_dt, (int64_t)id * dim + d) : 0.0f);
}

} // namespace

extern "C" int shmrt_cuda_embedding(void *stream, const struct shmrt_embedding_args *a)
{
	int rc = shmrt_check_embedding(a);
	if (rc || a->n_tokens == 0)
		return rc;
	if (shmrt_dtype_is_quantized(a->table_dtype))
		return shmrt_fail(ENOTSUP, "embedding (cuda): %s tables are not implemented",
				  shmrt_dtype_name(a->table_dtype));
	embedding_kernel<<<a->n_tokens, 256, 0, (cudaStream_t)stream>>>(a->dim, a->vocab, a->tokens, a->table,
									 a->table_dtype, a->out, a->out_dtype);
	return cuda_launch_check("embedding");
}
