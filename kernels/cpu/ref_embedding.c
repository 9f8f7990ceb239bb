/* Reference embedding lookup. */
#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"

int shmrt_ref_embedding(void *stream, const struct shmrt_embedding_args *a)
{
	(void)stream;
	int rc = shmrt_check_embedding(a);
	if (rc)
		return rc;
	for (int t = 0; t < a->n_tokens; t++) {
		int id = a->tokens[t];
		int valid = id >= 0 && id < a->vocab;
		for (int d = 0; d < a->dim; d++)
			shmrt_store(a->out, a->out_dtype, (int64_t)t * a->dim + d,
				    valid ? shmrt_load(a->table, a->table_dtype, (int64_t)id * a->dim + d) : 0.0f);
	}
	return 0;
}
