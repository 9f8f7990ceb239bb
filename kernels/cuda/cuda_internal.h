/* Internal: the CUDA backend's pieces, as the table (backend_cuda.c), the
 * kernel files (*.cu) and the GPU benchmark (bench/kernels_gpu.c) see them.
 * C linkage throughout; the kernels take the argument structs of
 * shmrt/backend.h, already checked by kernels/args.h. */
#ifndef SHMRT_CUDA_INTERNAL_H
#define SHMRT_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <pthread.h>

#include "shmrt/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one device keeps between calls. Made on first use of the device
 * (the current device of the calling thread) and never freed: buffers are
 * allocated once there and reused, so a step allocates nothing.
 *
 * The attention workspace is shared by every stream of the device: the
 * split-KV partials of two attention calls on different streams must not
 * overlap in time. One worker drives one device with one stream (the
 * runtime's shape), so this holds. */
struct shmrt_cuda_dev {
	int device;
	int n_sm;               /* streaming multiprocessors */
	size_t smem_optin;      /* dynamic shared memory a block may opt into */
	void *attn_ws;          /* split-KV partial results */
	size_t attn_ws_bytes;
	void *lt_ws;            /* cuBLASLt's workspace */
	size_t lt_ws_bytes;
	cublasLtHandle_t lt;    /* NULL if cuBLASLt could not start */
	pthread_mutex_t lock;   /* guards the matmul plan cache */
	struct shmrt_cuda_mm_cache *mm_cache;
};

/* The state of the calling thread's current device. 0 or -errno. */
int shmrt_cuda_dev_get(struct shmrt_cuda_dev **out);

/* cudaSuccess when this build's kernels can run on the current device
 * (probe.cu); cudaErrorNoKernelImageForDevice when no -gencode fits it. */
cudaError_t shmrt_cuda_probe_kernels(void);

/* ---- matmul: three implementations and the per-shape choice ---- */

enum shmrt_cuda_mm_impl {
	SHMRT_CUDA_MM_AUTO = 0, /* the fastest measured for the shape (cached) */
	SHMRT_CUDA_MM_GEMV,     /* matmul_gemv.cu: memory-bound, small m, any dtype */
	SHMRT_CUDA_MM_TC64,     /* matmul_tc.cu: tensor cores, 64x64 tiles, bf16 */
	SHMRT_CUDA_MM_TC128,    /* matmul_tc.cu: tensor cores, 128x128 tiles, bf16 */
	SHMRT_CUDA_MM_CUBLASLT, /* matmul_lt.c: cuBLASLt, its heuristic's first algorithm */
	SHMRT_CUDA_MM_N_IMPL,
};

/* "auto", "gemv", "tc64", "tc128", "cublaslt". */
const char *shmrt_cuda_mm_impl_name(enum shmrt_cuda_mm_impl impl);

/* Runs one implementation; -ENOTSUP where it does not take these dtypes,
 * this k or these pointers' alignment. */
int shmrt_cuda_matmul_with(cudaStream_t stream, const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl impl);

/* The plan cache (matmul.c): NULL when out of memory. */
struct shmrt_cuda_mm_cache *shmrt_cuda_mm_cache_new(void);
void shmrt_cuda_mm_cache_free(struct shmrt_cuda_mm_cache *c);

/* Runs a as AUTO does and tells which implementation that was (timing
 * the candidates first if the shape is new). */
int shmrt_cuda_matmul_choice(cudaStream_t stream, const struct shmrt_matmul_args *a, enum shmrt_cuda_mm_impl *impl);

int shmrt_cuda_mm_gemv(cudaStream_t stream, const struct shmrt_matmul_args *a);
int shmrt_cuda_mm_tc(cudaStream_t stream, const struct shmrt_matmul_args *a, int tile);

/* W in a block format (matmul_quant.cu): the dequantizing GEMV, or with
 * tiled the tiled kernel for larger m. The automatic choice takes the GEMV
 * up to m = 16 without timing; a forced GEMV runs the GEMV, a forced
 * TC64/TC128 the tiled kernel, cuBLASLt none (-ENOTSUP). */
int shmrt_cuda_mm_quant(cudaStream_t stream, const struct shmrt_matmul_args *a, int tiled);

/* cuBLASLt for one shape (matmul_lt.c): descriptors and the algorithm its
 * heuristic ranks first, made once and kept in the plan cache. */
struct shmrt_cuda_lt_plan {
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t w, x, y;
	cublasLtMatmulAlgo_t algo;
};

/* The largest power of two (at most 256) dividing every pointer of a:
 * what cuBLASLt may assume about their alignment. */
unsigned shmrt_cuda_mm_align(const struct shmrt_matmul_args *a);

/* 0, or -ENOTSUP where cuBLASLt takes not these dtypes or has no
 * algorithm; plan_free undoes a successful make. */
int shmrt_cuda_lt_plan_make(struct shmrt_cuda_dev *dev, const struct shmrt_matmul_args *a,
			    struct shmrt_cuda_lt_plan *p);
void shmrt_cuda_lt_plan_free(struct shmrt_cuda_lt_plan *p);
int shmrt_cuda_lt_run(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_cuda_lt_plan *p,
		      const struct shmrt_matmul_args *a);

/* ---- attention ---- */

/* How a batch is split between the two attention kernels. */
enum shmrt_cuda_attn_rows {
	SHMRT_CUDA_ATTN_ALL = 0,      /* every token */
	SHMRT_CUDA_ATTN_DECODES = 1,  /* only sequences with q_len == 1 */
	SHMRT_CUDA_ATTN_PREFILLS = 2, /* only sequences with q_len > 1 */
};

/* Split-KV decode attention (attention_decode.cu): one query row at a
 * time, any dtype, head_dim 64 or 128. */
int shmrt_cuda_attention_decode(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_attention_args *a,
				enum shmrt_cuda_attn_rows rows);

/* Tiled causal prefill attention on tensor cores (attention_prefill.cu):
 * bf16 q and cache, head_dim 64 or 128. */
int shmrt_cuda_attention_prefill(struct shmrt_cuda_dev *dev, cudaStream_t stream,
				 const struct shmrt_attention_args *a, enum shmrt_cuda_attn_rows rows);

/* ---- the table's entries (one .cu file each) ---- */

int shmrt_cuda_matmul(void *stream, const struct shmrt_matmul_args *a);
int shmrt_cuda_kv_write(void *stream, const struct shmrt_kv_write_args *a);
int shmrt_cuda_attention(void *stream, const struct shmrt_attention_args *a);
int shmrt_cuda_rmsnorm(void *stream, const struct shmrt_rmsnorm_args *a);
int shmrt_cuda_rope(void *stream, const struct shmrt_rope_args *a);
int shmrt_cuda_swiglu(void *stream, const struct shmrt_swiglu_args *a);
int shmrt_cuda_add(void *stream, const struct shmrt_add_args *a);
int shmrt_cuda_embedding(void *stream, const struct shmrt_embedding_args *a);
int shmrt_cuda_sample(void *stream, const struct shmrt_sample_args *a);

#ifdef __cplusplus
}
#endif

#endif
