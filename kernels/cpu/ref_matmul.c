/* Reference matmul: Y = X W^T (+ bias), one dot product per output in
 * double. Every dtype combination; a block-format W is dequantized a row at
 * a time with quant_blocks.h's formulas (ggml's dequantize_row_*), the
 * readable truth the fast kernels are tested against. */
#include <errno.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"
#include "fail.h"
#include "quant_blocks.h"

/* Row n of W as fp32 into buf (k floats): plain dtypes element by element. */
static void w_row(const struct shmrt_matmul_args *a, int n, float *buf)
{
	if (shmrt_dtype_is_quantized(a->w_dtype)) {
		const char *row = (const char *)a->w + (int64_t)n * shmrt_dtype_row_bytes(a->w_dtype, a->k);
		shmrt_dequant_row(row, a->w_dtype, a->k, buf);
		return;
	}
	for (int k = 0; k < a->k; k++)
		buf[k] = shmrt_load(a->w, a->w_dtype, (int64_t)n * a->k + k);
}

int shmrt_ref_matmul(void *stream, const struct shmrt_matmul_args *a)
{
	(void)stream;
	int rc = shmrt_check_matmul(a);
	if (rc)
		return rc;
	float *w = malloc(sizeof(float) * a->k);
	if (!w)
		return shmrt_fail(ENOMEM, "matmul (cpu-ref): no memory for a row of w");
	for (int n = 0; n < a->n; n++) {
		w_row(a, n, w);
		for (int m = 0; m < a->m; m++) {
			double acc = a->bias ? shmrt_load(a->bias, a->bias_dtype, n) : 0.0;
			for (int k = 0; k < a->k; k++)
				acc += (double)shmrt_load(a->x, a->x_dtype, (int64_t)m * a->k + k) * w[k];
			shmrt_store(a->y, a->y_dtype, (int64_t)m * a->n + n, (float)acc);
		}
	}
	free(w);
	return 0;
}
