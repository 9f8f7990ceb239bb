/* Embedding lookup: out[t] = table[tokens[t]], a row of zeros for an id
 * outside [0, vocab). CPU reference: kernels/cpu/ref_embedding.c. One
 * block per token. A table in a block format (quant_blocks.h) has its row
 * dequantized 8 elements a thread (quant.cuh), bit for bit the reference
 * dequantization's values. */
#include "quant.cuh"

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

template <enum shmrt_dtype DT>
__global__ void embedding_quant_kernel(int dim, int vocab, const int32_t *tokens, const uint8_t *table,
				       int64_t row_bytes, void *out, enum shmrt_dtype out_dt)
{
	int t = blockIdx.x, id = tokens[t];
	bool valid = id >= 0 && id < vocab;
	const uint8_t *row = table + (valid ? (int64_t)id * row_bytes : 0);
	for (int i = threadIdx.x; i < dim / 8; i += blockDim.x) {
		float v[8];
		if (valid)
			deq8<DT>(row, i / 4, i % 4, v);
#pragma unroll
		for (int j = 0; j < 8; j++)
			store_dt(out, out_dt, (int64_t)t * dim + 8 * i + j, valid ? v[j] : 0.0f);
	}
}

template <enum shmrt_dtype DT> void launch_quant(cudaStream_t stream, const struct shmrt_embedding_args *a)
{
	embedding_quant_kernel<DT><<<a->n_tokens, 256, 0, stream>>>(
		a->dim, a->vocab, a->tokens, (const uint8_t *)a->table,
		(int64_t)shmrt_dtype_row_bytes(a->table_dtype, a->dim), a->out, a->out_dtype);
}

int embedding_quant(cudaStream_t stream, const struct shmrt_embedding_args *a)
{
	/* args.c checked dim against the blocks */
	if ((uintptr_t)a->table % quant_row_align(a->table_dtype))
		return shmrt_fail(EINVAL, "embedding (cuda): a %s table must be %u-byte aligned",
				  shmrt_dtype_name(a->table_dtype), quant_row_align(a->table_dtype));
	if (a->n_tokens == 0)
		return 0;
	switch (a->table_dtype) {
	case SHMRT_Q8_0:
		launch_quant<SHMRT_Q8_0>(stream, a);
		break;
	case SHMRT_Q4_0:
		launch_quant<SHMRT_Q4_0>(stream, a);
		break;
	case SHMRT_Q4_1:
		launch_quant<SHMRT_Q4_1>(stream, a);
		break;
	case SHMRT_Q4_K:
		launch_quant<SHMRT_Q4_K>(stream, a);
		break;
	case SHMRT_Q5_K:
		launch_quant<SHMRT_Q5_K>(stream, a);
		break;
	case SHMRT_Q6_K:
		launch_quant<SHMRT_Q6_K>(stream, a);
		break;
	default:
		return shmrt_fail(ENOTSUP, "embedding (cuda): table dtype %s", shmrt_dtype_name(a->table_dtype));
	}
	return cuda_launch_check("embedding (quantized)");
}

} // namespace

extern "C" int shmrt_cuda_embedding(void *stream, const struct shmrt_embedding_args *a)
{
	int rc = shmrt_check_embedding(a);
	if (rc)
		return rc;
	if (shmrt_dtype_is_quantized(a->table_dtype))
		return embedding_quant((cudaStream_t)stream, a);
	if (a->n_tokens == 0)
		return 0;
	embedding_kernel<<<a->n_tokens, 256, 0, (cudaStream_t)stream>>>(a->dim, a->vocab, a->tokens, a->table,
									 a->table_dtype, a->out, a->out_dtype);
	return cuda_launch_check("embedding");
}
