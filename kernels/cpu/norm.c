/* Fast RMSNorm: x f32, weight f32|bf16|f16; rows over the pool. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "vec.h"

struct job {
	const struct shmrt_rmsnorm_args *a;
	const float *w; /* weight as f32 */
};

static void run(void *ctx, int tid, int n_threads)
{
	const struct job *j = ctx;
	const struct shmrt_rmsnorm_args *a = j->a;
	int64_t r0, r1;
	shmrt_pool_part(a->rows, tid, n_threads, &r0, &r1);
	for (int64_t r = r0; r < r1; r++) {
		const float *x = (const float *)a->x + r * a->dim;
		float *out = (float *)a->out + r * a->dim;
		v16f acc = {0};
		int i = 0;
		for (; i + 16 <= a->dim; i += 16) {
			v16f v = VLOAD(v16f, x + i);
			acc += v * v;
		}
		float ss = v16_sum(acc);
		for (; i < a->dim; i++)
			ss += x[i] * x[i];
		float inv = 1.0f / sqrtf(ss / a->dim + a->eps);
		for (i = 0; i < a->dim; i++)
			out[i] = x[i] * inv * j->w[i];
	}
}

int shmrt_cpu_rmsnorm(void *stream, const struct shmrt_rmsnorm_args *a)
{
	(void)stream;
	int rc = shmrt_check_rmsnorm(a);
	if (rc)
		return rc;
	if (a->dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "rmsnorm (cpu): x must be f32, not %s", shmrt_dtype_name(a->dtype));
	struct job j = {a, a->weight};
	float *converted = NULL;
	if (a->w_dtype != SHMRT_F32) {
		if (!(converted = malloc(sizeof(float) * a->dim)))
			return shmrt_fail(ENOMEM, "rmsnorm: no memory");
		for (int i = 0; i < a->dim; i++)
			converted[i] = shmrt_load(a->weight, a->w_dtype, i);
		j.w = converted;
	}
	shmrt_pool_run_sized((int64_t)a->rows * a->dim, run, &j);
	free(converted);
	return 0;
}
