/* Fast rotary embedding: f32, tokens over the pool; each token's cos/sin
 * computed once and applied to all its q and k heads. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_pool.h"
#include "fail.h"
#include "rope_freq.h"

#define MAX_HALF 512 /* head_dim up to 1024 */

struct job {
	const struct shmrt_rope_args *a;
	float inv_freq[MAX_HALF];
};

static void rotate_heads(float *x, int n_heads, int head_dim, const float *c, const float *s)
{
	int half = head_dim / 2;
	for (int h = 0; h < n_heads; h++, x += head_dim)
		for (int i = 0; i < half; i++) {
			float x0 = x[i], x1 = x[i + half];
			x[i] = x0 * c[i] - x1 * s[i];
			x[i + half] = x1 * c[i] + x0 * s[i];
		}
}

static void run(void *ctx, int tid, int n_threads)
{
	const struct job *j = ctx;
	const struct shmrt_rope_args *a = j->a;
	int half = a->head_dim / 2;
	float c[MAX_HALF], s[MAX_HALF];
	int64_t t0, t1;
	shmrt_pool_part(a->n_tokens, tid, n_threads, &t0, &t1);
	for (int64_t t = t0; t < t1; t++) {
		for (int i = 0; i < half; i++) {
			float angle = (float)a->positions[t] * j->inv_freq[i];
			c[i] = cosf(angle);
			s[i] = sinf(angle);
		}
		rotate_heads((float *)a->q + t * a->q_stride, a->n_heads, a->head_dim, c, s);
		if (a->k)
			rotate_heads((float *)a->k + t * a->k_stride, a->n_kv_heads, a->head_dim, c, s);
	}
}

int shmrt_cpu_rope(void *stream, const struct shmrt_rope_args *a)
{
	(void)stream;
	int rc = shmrt_check_rope(a);
	if (rc)
		return rc;
	if (a->dtype != SHMRT_F32 || a->head_dim > 2 * MAX_HALF)
		return shmrt_fail(ENOTSUP, "rope (cpu): needs f32 (not %s) and head_dim <= %d",
				  shmrt_dtype_name(a->dtype), 2 * MAX_HALF);
	struct job j = {.a = a};
	for (int i = 0; i < a->head_dim / 2; i++)
		j.inv_freq[i] = shmrt_rope_inv_freq(&a->cfg, a->head_dim, i);
	shmrt_pool_run_sized((int64_t)a->n_tokens * (a->n_heads + (a->k ? a->n_kv_heads : 0)) * a->head_dim, run, &j);
	return 0;
}
