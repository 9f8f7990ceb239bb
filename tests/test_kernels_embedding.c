/* Embedding lookup (kernel_test.h): every table dtype into f32 and bf16
 * rows; conversion is deterministic, so the result must be exact (zeros
 * for ids outside the vocabulary). Block-format tables (random blocks,
 * kt_random_blocks) too: the same dequantization formulas, so exact as
 * well. */
#include "kernel_test.h"
#include "array_size.h"

static int run_case(const struct kt *kt, int n_tokens, int dim, int vocab, enum shmrt_dtype td, enum shmrt_dtype od)
{
	bool quant = shmrt_dtype_is_quantized(td);
	void *table = quant ? kt_random_blocks(td, vocab, dim, 0.05f) : kt_random((size_t)vocab * dim, td, -1, 1);
	size_t table_bytes = quant ? shmrt_dtype_row_bytes(td, dim) * vocab
				   : (size_t)vocab * dim * shmrt_dtype_size(td);
	int32_t *ids = malloc(sizeof(int32_t) * n_tokens);
	CHECK(ids, "no memory");
	for (int t = 0; t < n_tokens; t++)
		ids[t] = t == 1 ? -1 : t == 2 ? vocab : kt_int(0, vocab - 1);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dt = kt_upload(be[i], table, table_bytes);
		void *di = kt_upload(be[i], ids, sizeof(int32_t) * n_tokens);
		void *dy = kt_upload(be[i], NULL, (size_t)n_tokens * dim * shmrt_dtype_size(od));
		struct shmrt_embedding_args a = {.n_tokens = n_tokens, .dim = dim, .vocab = vocab, .tokens = di,
						 .table = dt, .table_dtype = td, .out = dy, .out_dtype = od};
		int rc = be[i]->embedding(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dt), be[0]->free(di), be[0]->free(dy), free(table), free(ids);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, (size_t)n_tokens * dim, od);
		be[i]->free(dt), be[i]->free(di), be[i]->free(dy);
	}
	kt_compare("embedding", y[0], y[1], (size_t)n_tokens * dim, 0, 0);
	for (int t = 1; t < 3 && t < n_tokens; t++) /* the reference's zeros for bad ids */
		for (int d = 0; d < dim; d++)
			CHECK(y[1][t * dim + d] == 0, "id %d gave a non-zero row", ids[t]);
	free(y[0]), free(y[1]), free(table), free(ids);
	return 1;
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	static const enum shmrt_dtype dts[] = {SHMRT_F32, SHMRT_BF16, SHMRT_F16};
	static const int shapes[][3] = {{1, 1, 1}, {5, 17, 100}, {64, 256, 1000}, {3, 4096, 50}};
	int ran = 0;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (int ti = 0; ti < 3; ti++)
			for (int oi = 0; oi < 2; oi++)
				ran += run_case(&kt, shapes[s][0], shapes[s][1], shapes[s][2], dts[ti], dts[oi]);
	static const enum shmrt_dtype qts[] = {SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_1, SHMRT_Q4_K, SHMRT_Q5_K, SHMRT_Q6_K};
	static const int qshapes[][3] = {{1, 256, 3}, {7, 512, 100}, {64, 4096, 50}};
	int ran_q = 0;
	for (size_t s = 0; s < ARRAY_SIZE(qshapes); s++)
		for (size_t ti = 0; ti < ARRAY_SIZE(qts); ti++)
			for (int oi = 0; oi < 2; oi++)
				ran_q += run_case(&kt, qshapes[s][0], qshapes[s][1], qshapes[s][2], qts[ti], dts[oi]);
	/* a row of a block format must be whole blocks */
	int32_t id = 0;
	uint8_t tab[64] = {0};
	float out[48];
	struct shmrt_embedding_args bad = {.n_tokens = 1, .dim = 48, .vocab = 1, .tokens = &id, .table = tab,
					   .table_dtype = SHMRT_Q4_0, .out = out, .out_dtype = SHMRT_F32};
	CHECK(kt.ref->embedding(NULL, &bad) == -EINVAL, "a q4_0 table with rows of 48 was accepted");
	fprintf(stderr, "%d cases, %d with block-format tables\n", ran, ran_q);
	if (!strcmp(kt.test->name, "cpu"))
		CHECK(ran_q > 0, "cpu reads no block-format table");
	CHECK(ran > 0, "the backend implements no dtype combination");
	return 0;
}
