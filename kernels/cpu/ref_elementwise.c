/* Reference element-wise kernels: SwiGLU and the residual add. */
#include <math.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"

int shmrt_ref_swiglu(void *stream, const struct shmrt_swiglu_args *a)
{
	(void)stream;
	int rc = shmrt_check_swiglu(a);
	if (rc)
		return rc;
	for (int r = 0; r < a->rows; r++)
		for (int i = 0; i < a->dim; i++) {
			double g = shmrt_load(a->gate, a->dtype, r * a->in_stride + i);
			double u = shmrt_load(a->up, a->dtype, r * a->in_stride + i);
			shmrt_store(a->out, a->dtype, (int64_t)r * a->dim + i, (float)(g / (1 + exp(-g)) * u));
		}
	return 0;
}

int shmrt_ref_add(void *stream, const struct shmrt_add_args *a)
{
	(void)stream;
	int rc = shmrt_check_add(a);
	if (rc)
		return rc;
	for (int64_t i = 0; i < a->n; i++)
		shmrt_store(a->out, a->dtype, i,
			    (float)((double)shmrt_load(a->a, a->dtype, i) + shmrt_load(a->b, a->dtype, i)));
	return 0;
}
