/* Embedding lookup (kernel_test.h): every table dtype, the block formats
 * (Q8_0 ... Q6_K) included, into f32 and bf16 rows; conversion and
 * dequantization are deterministic, so the result must be exact (zeros for
 * ids outside the vocabulary). */
#include "kernel_test.h"
#include "array_size.h"

static int run_case(const struct kt *kt, int n_tokens, int dim, int vocab, enum shmrt_dtype td, enum shmrt_dtype od)
{
	void *table = kt_random((size_t)vocab * dim, td, -1, 1);
	int32_t *ids = malloc(sizeof(int32_t) * n_tokens);
	CHECK(ids, "no memory");
	for (int t = 0; t < n_tokens; t++)
		ids[t] = t == 1 ? -1 : t == 2 ? vocab : kt_int(0, vocab - 1);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dt = kt_upload(be[i], table, (size_t)vocab * dim * shmrt_dtype_size(td));
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

/* A table in a block format (quant_blocks.h): its rows must come out as
 * the reference dequantization's values (shmrt_dequant_row), exactly: the
 * reference backend's where it takes block formats, else this test's own.
 * 0 where the backend under test does not take them (-ENOTSUP, or -EINVAL
 * from kernels/args.c, which knows plain dtypes only). */
static int run_quant_case(const struct kt *kt, int n_tokens, int dim, int vocab, enum shmrt_dtype td,
			  enum shmrt_dtype od)
{
	void *table = kt_random_blocks(td, vocab, dim);
	float *rows = kt_dequant(table, td, vocab, dim);
	int32_t *ids = malloc(sizeof(int32_t) * n_tokens);
	CHECK(ids, "no memory");
	for (int t = 0; t < n_tokens; t++)
		ids[t] = t == 1 ? -1 : t == 2 ? vocab : kt_int(0, vocab - 1);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++) {
		void *dt = kt_upload(be[i], table, (size_t)vocab * shmrt_dtype_row_bytes(td, dim));
		void *di = kt_upload(be[i], ids, sizeof(int32_t) * n_tokens);
		void *dy = kt_upload(be[i], NULL, (size_t)n_tokens * dim * shmrt_dtype_size(od));
		struct shmrt_embedding_args a = {.n_tokens = n_tokens, .dim = dim, .vocab = vocab, .tokens = di,
						 .table = dt, .table_dtype = td, .out = dy, .out_dtype = od};
		int rc = be[i]->embedding(NULL, &a);
		if (rc == -ENOTSUP || rc == -EINVAL) {
			be[i]->free(dt), be[i]->free(di), be[i]->free(dy);
			if (i == 0) {
				free(table), free(rows), free(ids);
				return 0;
			}
			break;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, (size_t)n_tokens * dim, od);
		be[i]->free(dt), be[i]->free(di), be[i]->free(dy);
	}
	if (!y[1]) { /* the reference lacks block formats */
		y[1] = malloc(sizeof(float) * n_tokens * dim + 1);
		CHECK(y[1], "no memory");
		for (int t = 0; t < n_tokens; t++)
			for (int d = 0; d < dim; d++)
				y[1][(size_t)t * dim + d] = ids[t] < 0 || ids[t] >= vocab ? 0.0f
							    : kt_round(od, rows[(size_t)ids[t] * dim + d]);
	}
	char what[96];
	snprintf(what, sizeof(what), "embedding, table %s, out %s, dim %d", shmrt_dtype_name(td), shmrt_dtype_name(od),
		 dim);
	kt_compare(what, y[0], y[1], (size_t)n_tokens * dim, 0, 0);
	free(y[0]), free(y[1]), free(table), free(rows), free(ids);
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
	static const enum shmrt_dtype qtypes[] = {SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_1,
						  SHMRT_Q4_K, SHMRT_Q5_K, SHMRT_Q6_K};
	static const int qshapes[][3] = {{5, 256, 100}, {64, 512, 1000}, {3, 4096, 50}, {4, 96, 30}};
	int qskipped = 0;
	for (size_t s = 0; s < ARRAY_SIZE(qshapes); s++)
		for (size_t qi = 0; qi < ARRAY_SIZE(qtypes); qi++)
			for (int oi = 0; oi < 2 && qshapes[s][1] % shmrt_dtype_block(qtypes[qi]) == 0; oi++) {
				int ok = run_quant_case(&kt, qshapes[s][0], qshapes[s][1], qshapes[s][2], qtypes[qi],
							dts[oi]);
				ran += ok;
				qskipped += !ok;
			}
	fprintf(stderr, "%d cases\n", ran);
	if (qskipped)
		fprintf(stderr, "%s took no block-format tables in %d cases\n", kt.test->name, qskipped);
	CHECK(ran > 0, "the backend implements no dtype combination");
	return 0;
}
