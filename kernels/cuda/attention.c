/* The CUDA attention entry: splits a ragged batch between the two
 * attention kernels. CPU reference: kernels/cpu/ref_attention.c.
 *
 * A batch of decodes only (max_q_len 1) goes to the split-KV decode
 * kernel. Otherwise, where the tensor-core prefill kernel applies (bf16 q
 * and cache), it takes the sequences with q_len > 1 and the decode kernel
 * the rest; where it does not (fp32), the decode kernel takes every token
 * (exact, but it reads the cache once per query token). */
#include <errno.h>

#include "cuda_internal.h"
#include "args.h"

int shmrt_cuda_attention(void *stream, const struct shmrt_attention_args *a)
{
	struct shmrt_cuda_dev *dev;
	int rc = shmrt_check_attention(a);
	if (rc || (rc = shmrt_cuda_dev_get(&dev)))
		return rc;
	cudaStream_t s = (cudaStream_t)stream;
	if (a->n_tokens == 0)
		return 0;
	if (a->max_q_len <= 1)
		return shmrt_cuda_attention_decode(dev, s, a, SHMRT_CUDA_ATTN_ALL);
	rc = shmrt_cuda_attention_prefill(dev, s, a, SHMRT_CUDA_ATTN_PREFILLS);
	if (rc == -ENOTSUP)
		return shmrt_cuda_attention_decode(dev, s, a, SHMRT_CUDA_ATTN_ALL);
	if (rc)
		return rc;
	return shmrt_cuda_attention_decode(dev, s, a, SHMRT_CUDA_ATTN_DECODES);
}
