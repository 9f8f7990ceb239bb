/* Reference rotary embedding (rotate_half pairing, shmrt/backend.h). */
#include <math.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"
#include "rope_freq.h"

/* Rotates the n_heads heads of n_tokens rows of x in place. */
static void rotate(const struct shmrt_rope_args *a, void *x, int64_t stride, int n_heads)
{
	int half = a->head_dim / 2;
	for (int t = 0; t < a->n_tokens; t++)
		for (int i = 0; i < half; i++) {
			/* fp32 angle, as HF computes position * inv_freq */
			float angle = (float)a->positions[t] * shmrt_rope_inv_freq(&a->cfg, a->head_dim, i);
			double c = cos(angle), s = sin(angle);
			for (int h = 0; h < n_heads; h++) {
				int64_t i0 = t * stride + (int64_t)h * a->head_dim + i, i1 = i0 + half;
				double x0 = shmrt_load(x, a->dtype, i0), x1 = shmrt_load(x, a->dtype, i1);
				shmrt_store(x, a->dtype, i0, (float)(x0 * c - x1 * s));
				shmrt_store(x, a->dtype, i1, (float)(x1 * c + x0 * s));
			}
		}
}

int shmrt_ref_rope(void *stream, const struct shmrt_rope_args *a)
{
	(void)stream;
	int rc = shmrt_check_rope(a);
	if (rc)
		return rc;
	rotate(a, a->q, a->q_stride, a->n_heads);
	if (a->k)
		rotate(a, a->k, a->k_stride, a->n_kv_heads);
	return 0;
}
