/* Reference embedding lookup; rows of a block-format table dequantized
 * with quant_blocks.h. */
#include <errno.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"
#include "fail.h"
#include "quant_blocks.h"

int shmrt_ref_embedding(void *stream, const struct shmrt_embedding_args *a)
{
	(void)stream;
	int rc = shmrt_check_embedding(a);
	if (rc)
		return rc;
	bool quant = shmrt_dtype_is_quantized(a->table_dtype);
	float *row = malloc(sizeof(float) * a->dim);
	if (!row)
		return shmrt_fail(ENOMEM, "embedding (cpu-ref): no memory for a row");
	for (int t = 0; t < a->n_tokens; t++) {
		int id = a->tokens[t];
		int valid = id >= 0 && id < a->vocab;
		if (valid && quant)
			shmrt_dequant_row((const char *)a->table +
						  (int64_t)id * shmrt_dtype_row_bytes(a->table_dtype, a->dim),
					  a->table_dtype, a->dim, row);
		for (int d = 0; d < a->dim; d++) {
			float v = !valid ? 0.0f
				  : quant ? row[d]
					  : shmrt_load(a->table, a->table_dtype, (int64_t)id * a->dim + d);
			shmrt_store(a->out, a->out_dtype, (int64_t)t * a->dim + d, v);
		}
	}
	free(row);
	return 0;
}
