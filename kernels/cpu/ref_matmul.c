/* Reference matmul: Y = X W^T (+ bias), one dot product per output in
 * double. Every dtype combination. */
#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"

int shmrt_ref_matmul(void *stream, const struct shmrt_matmul_args *a)
{
	(void)stream;
	int rc = shmrt_check_matmul(a);
	if (rc)
		return rc;
	for (int m = 0; m < a->m; m++)
		for (int n = 0; n < a->n; n++) {
			double acc = a->bias ? shmrt_load(a->bias, a->w_dtype, n) : 0.0;
			for (int k = 0; k < a->k; k++)
				acc += (double)shmrt_load(a->x, a->x_dtype, (int64_t)m * a->k + k) *
				       shmrt_load(a->w, a->w_dtype, (int64_t)n * a->k + k);
			shmrt_store(a->y, a->y_dtype, (int64_t)m * a->n + n, (float)acc);
		}
	return 0;
}
