/* cuBLASLt as a matmul implementation: Y = X W^T (+ bias) with x and w
 * both bf16 or both f32, y f32 or bf16, fp32 accumulation. CPU reference:
 * kernels/cpu/ref_matmul.c.
 *
 * cuBLASLt is column-major. Our row-major Y[m][n] is the column-major
 * n x m matrix D = W^T-op(A) * B with A = W seen as a column-major k x n
 * matrix (transposed by the op) and B = X seen as a column-major k x m
 * matrix; the bias then runs along D's rows, which is what
 * CUBLASLT_EPILOGUE_BIAS adds (cuBLAS library guide, cublasLtMatmul and
 * cublasLtEpilogue_t). The heuristic is asked once per shape, as NVIDIA
 * recommends (its answer costs tens of microseconds of CPU). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cuda_internal.h"
#include "fail.h"
#include "array_size.h"

static cudaDataType_t lt_type(enum shmrt_dtype dt)
{
	return dt == SHMRT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static unsigned ptr_align(const void *p)
{
	uintptr_t u = (uintptr_t)p | 256;
	return (unsigned)(u & -u);
}

unsigned shmrt_cuda_mm_align(const struct shmrt_matmul_args *a)
{
	unsigned al = ptr_align(a->x);
	if (ptr_align(a->w) < al)
		al = ptr_align(a->w);
	if (ptr_align(a->y) < al)
		al = ptr_align(a->y);
	if (a->bias && ptr_align(a->bias) < al)
		al = ptr_align(a->bias);
	return al;
}

void shmrt_cuda_lt_plan_free(struct shmrt_cuda_lt_plan *p)
{
	if (p->y)
		cublasLtMatrixLayoutDestroy(p->y);
	if (p->x)
		cublasLtMatrixLayoutDestroy(p->x);
	if (p->w)
		cublasLtMatrixLayoutDestroy(p->w);
	if (p->op)
		cublasLtMatmulDescDestroy(p->op);
	memset(p, 0, sizeof(*p));
}

static int lt_fail(struct shmrt_cuda_lt_plan *p, int err, const char *what, cublasStatus_t st)
{
	shmrt_cuda_lt_plan_free(p);
	return shmrt_fail(err, "matmul (cuBLASLt): %s: %s", what, cublasLtGetStatusString(st));
}

/* Which combinations we hand to cuBLASLt: the bias must have y's dtype
 * (cuBLASLt's default bias type is D's). */
static int lt_takes(const struct shmrt_matmul_args *a)
{
	int same_in = a->x_dtype == a->w_dtype && (a->x_dtype == SHMRT_BF16 || a->x_dtype == SHMRT_F32);
	int y_ok = a->y_dtype == SHMRT_BF16 || a->y_dtype == SHMRT_F32;
	return same_in && y_ok && (!a->bias || a->w_dtype == a->y_dtype);
}

int shmrt_cuda_lt_plan_make(struct shmrt_cuda_dev *dev, const struct shmrt_matmul_args *a,
			    struct shmrt_cuda_lt_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (!dev->lt || !lt_takes(a))
		return shmrt_fail(ENOTSUP, "matmul (cuBLASLt): not for these dtypes");
	cudaDataType_t in = lt_type(a->x_dtype), out = lt_type(a->y_dtype);
	cublasStatus_t st = cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
	if (st != CUBLAS_STATUS_SUCCESS)
		return lt_fail(p, EIO, "descriptor", st);
	cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
	cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t));
	cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n));
	if (a->bias) {
		cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
		cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
		/* the heuristic reads the pointer's alignment */
		cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a->bias, sizeof(a->bias));
	}
	if ((st = cublasLtMatrixLayoutCreate(&p->w, in, a->k, a->n, a->k)) != CUBLAS_STATUS_SUCCESS ||
	    (st = cublasLtMatrixLayoutCreate(&p->x, in, a->k, a->m, a->k)) != CUBLAS_STATUS_SUCCESS ||
	    (st = cublasLtMatrixLayoutCreate(&p->y, out, a->n, a->m, a->n)) != CUBLAS_STATUS_SUCCESS)
		return lt_fail(p, EIO, "layout", st);

	cublasLtMatmulPreference_t pref;
	if ((st = cublasLtMatmulPreferenceCreate(&pref)) != CUBLAS_STATUS_SUCCESS)
		return lt_fail(p, EIO, "preference", st);
	uint32_t al = shmrt_cuda_mm_align(a);
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &dev->lt_ws_bytes,
					     sizeof(dev->lt_ws_bytes));
	cublasLtMatmulPreferenceAttributes_t al_attr[] = {
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
	for (size_t i = 0; i < ARRAY_SIZE(al_attr); i++)
		cublasLtMatmulPreferenceSetAttribute(pref, al_attr[i], &al, sizeof(al));
	cublasLtMatmulHeuristicResult_t res;
	int found = 0;
	st = cublasLtMatmulAlgoGetHeuristic(dev->lt, p->op, p->w, p->x, p->y, p->y, pref, 1, &res, &found);
	cublasLtMatmulPreferenceDestroy(pref);
	if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
		shmrt_cuda_lt_plan_free(p);
		return shmrt_fail(ENOTSUP, "matmul (cuBLASLt): no algorithm for m=%d n=%d k=%d", a->m, a->n, a->k);
	}
	p->algo = res.algo;
	return 0;
}

int shmrt_cuda_lt_run(struct shmrt_cuda_dev *dev, cudaStream_t stream, const struct shmrt_cuda_lt_plan *p,
		      const struct shmrt_matmul_args *a)
{
	const float one = 1.0f, zero = 0.0f;
	if (a->bias)
		cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a->bias, sizeof(a->bias));
	cublasStatus_t st = cublasLtMatmul(dev->lt, p->op, &one, a->w, p->w, a->x, p->x, &zero, a->y, p->y, a->y,
					   p->y, &p->algo, dev->lt_ws, dev->lt_ws_bytes, stream);
	if (st != CUBLAS_STATUS_SUCCESS)
		return shmrt_fail(EIO, "matmul (cuBLASLt) m=%d n=%d k=%d: %s", a->m, a->n, a->k,
				  cublasLtGetStatusString(st));
	return 0;
}
