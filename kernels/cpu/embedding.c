/* Fast embedding lookup: rows of any table dtype into f32, tokens over
 * the pool; a block-format table's rows dequantized with quant_blocks.h
 * (one row is a few KiB: the plain loops are not worth vectorising). */
#include <errno.h>
#include <string.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "quant_blocks.h"
#include "vec.h"

static void run(void *ctx, int tid, int n_threads)
{
	const struct shmrt_embedding_args *a = ctx;
	int64_t t0, t1;
	shmrt_pool_part(a->n_tokens, tid, n_threads, &t0, &t1);
	for (int64_t t = t0; t < t1; t++) {
		float *out = (float *)a->out + t * a->dim;
		int64_t id = a->tokens[t];
		if (id < 0 || id >= a->vocab) {
			memset(out, 0, sizeof(float) * a->dim);
		} else if (shmrt_dtype_is_quantized(a->table_dtype)) {
			uint64_t row_bytes = shmrt_dtype_row_bytes(a->table_dtype, a->dim);
			shmrt_dequant_row((const char *)a->table + id * row_bytes, a->table_dtype, a->dim, out);
		} else if (a->table_dtype == SHMRT_F32) {
			memcpy(out, (const float *)a->table + id * a->dim, sizeof(float) * a->dim);
		} else if (a->table_dtype == SHMRT_BF16) {
			const uint16_t *row = (const uint16_t *)a->table + id * a->dim;
			int i = 0;
			for (; i + 16 <= a->dim; i += 16)
				VSTORE(out + i, v16_load_bf16(row + i));
			for (; i < a->dim; i++)
				out[i] = shmrt_bf16_to_f32(row[i]);
		} else {
			const uint16_t *row = (const uint16_t *)a->table + id * a->dim;
			for (int i = 0; i < a->dim; i++)
				out[i] = shmrt_f16_to_f32(row[i]);
		}
	}
}

int shmrt_cpu_embedding(void *stream, const struct shmrt_embedding_args *a)
{
	(void)stream;
	int rc = shmrt_check_embedding(a);
	if (rc)
		return rc;
	if (a->out_dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "embedding (cpu): out must be f32, not %s", shmrt_dtype_name(a->out_dtype));
	shmrt_pool_run_sized((int64_t)a->n_tokens * a->dim, run, (void *)a);
	return 0;
}
