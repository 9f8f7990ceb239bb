/* Reference RMSNorm, in double. */
#include <math.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"

int shmrt_ref_rmsnorm(void *stream, const struct shmrt_rmsnorm_args *a)
{
	(void)stream;
	int rc = shmrt_check_rmsnorm(a);
	if (rc)
		return rc;
	for (int r = 0; r < a->rows; r++) {
		int64_t row = (int64_t)r * a->dim;
		double ss = 0;
		for (int i = 0; i < a->dim; i++) {
			double x = shmrt_load(a->x, a->dtype, row + i);
			ss += x * x;
		}
		double inv = 1.0 / sqrt(ss / a->dim + a->eps);
		for (int i = 0; i < a->dim; i++) /* out may be x: read before write */
			shmrt_store(a->out, a->dtype, row + i,
				    (float)(shmrt_load(a->x, a->dtype, row + i) * inv *
					    shmrt_load(a->weight, a->w_dtype, i)));
	}
	return 0;
}
