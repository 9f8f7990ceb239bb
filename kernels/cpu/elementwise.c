/* Fast element-wise kernels, f32: SwiGLU (with the vector exp of vec.h)
 * and the residual add; rows or ranges over the pool. */
#include <errno.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_pool.h"
#include "fail.h"
#include "vec.h"

static void swiglu_run(void *ctx, int tid, int n_threads)
{
	const struct shmrt_swiglu_args *a = ctx;
	int64_t r0, r1;
	shmrt_pool_part(a->rows, tid, n_threads, &r0, &r1);
	for (int64_t r = r0; r < r1; r++) {
		const float *g = (const float *)a->gate + r * a->in_stride;
		const float *u = (const float *)a->up + r * a->in_stride;
		float *out = (float *)a->out + r * a->dim;
		int i = 0;
		for (; i + 16 <= a->dim; i += 16) {
			v16f gv = VLOAD(v16f, g + i);
			VSTORE(out + i, gv / (1.0f + v16_exp(-gv)) * VLOAD(v16f, u + i));
		}
		for (; i < a->dim; i++) {
			v16f e = v16_exp(v16_splat(-g[i])); /* the same exp as the lanes */
			out[i] = g[i] / (1.0f + e[0]) * u[i];
		}
	}
}

int shmrt_cpu_swiglu(void *stream, const struct shmrt_swiglu_args *a)
{
	(void)stream;
	int rc = shmrt_check_swiglu(a);
	if (rc)
		return rc;
	if (a->dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "swiglu (cpu): needs f32, not %s", shmrt_dtype_name(a->dtype));
	shmrt_pool_run_sized((int64_t)a->rows * a->dim, swiglu_run, (void *)a);
	return 0;
}

static void add_run(void *ctx, int tid, int n_threads)
{
	const struct shmrt_add_args *a = ctx;
	const float *x = a->a, *y = a->b;
	float *out = a->out;
	int64_t i0, i1;
	shmrt_pool_part(a->n, tid, n_threads, &i0, &i1);
	for (int64_t i = i0; i < i1; i++)
		out[i] = x[i] + y[i];
}

int shmrt_cpu_add(void *stream, const struct shmrt_add_args *a)
{
	(void)stream;
	int rc = shmrt_check_add(a);
	if (rc)
		return rc;
	if (a->dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "add (cpu): needs f32, not %s", shmrt_dtype_name(a->dtype));
	shmrt_pool_run_sized(a->n, add_run, (void *)a);
	return 0;
}
