/* matmul: the backend under test against the reference (kernel_test.h)
 * over odd and even shapes on both sides of the decode/prefill switch,
 * every dtype combination the backend implements, with and without bias.
 *
 * Tolerance: |y - y_ref| <= 1e-5 * sum_k |x_k w_k| + eps(y) * |y_ref|.
 * The first term is fp32 accumulation of up to ~5000 products (rounding
 * errors grow like sqrt(K) * 2^-24 of that sum in practice, K * 2^-24 at
 * worst); the second one ulp of the output (kt_eps: 2^-7 for bf16). The
 * reference accumulates in double from the same (already rounded) inputs.
 * W also in each block format (Q8_0 ... Q6_K), against the reference's
 * dequantization. */
#include "kernel_test.h"
#include "array_size.h"

static double worst;  /* largest error / bound seen */
static double qworst; /* the same, block formats only */

static const enum shmrt_dtype dtypes[] = {SHMRT_F32, SHMRT_BF16, SHMRT_F16};

static int run_case(const struct kt *kt, int m, int n, int k, enum shmrt_dtype xd, enum shmrt_dtype wd,
		    enum shmrt_dtype yd, int bias)
{
	void *x = kt_random((size_t)m * k, xd, -1, 1), *w = kt_random((size_t)n * k, wd, -1, 1);
	void *b = kt_random(n, wd, -1, 1);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(be[i], x, (size_t)m * k * shmrt_dtype_size(xd));
		void *dw = kt_upload(be[i], w, (size_t)n * k * shmrt_dtype_size(wd));
		void *db = kt_upload(be[i], b, n * shmrt_dtype_size(wd));
		void *dy = kt_upload(be[i], NULL, (size_t)m * n * shmrt_dtype_size(yd));
		struct shmrt_matmul_args a = {.m = m, .n = n, .k = k, .x = dx, .x_dtype = xd, .w = dw, .w_dtype = wd,
					      .bias = bias ? db : NULL, .y = dy, .y_dtype = yd};
		int rc = be[i]->matmul(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dx), be[0]->free(dw), be[0]->free(db), be[0]->free(dy);
			free(x), free(w), free(b);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, (size_t)m * n, yd);
		be[i]->free(dx), be[i]->free(dw), be[i]->free(db), be[i]->free(dy);
	}
	for (int r = 0; r < m; r++)
		for (int c = 0; c < n; c++) {
			double mag = bias ? fabs(shmrt_load(b, wd, c)) : 0;
			for (int i = 0; i < k; i++)
				mag += fabs(shmrt_load(x, xd, (int64_t)r * k + i) * shmrt_load(w, wd, (int64_t)c * k + i));
			size_t at = (size_t)r * n + c;
			char what[160];
			snprintf(what, sizeof(what), "matmul m=%d n=%d k=%d x %s w %s y %s bias %d, y[%d][%d]", m, n, k,
				 shmrt_dtype_name(xd), shmrt_dtype_name(wd), shmrt_dtype_name(yd), bias, r, c);
			worst = fmax(worst, kt_compare(what, &y[0][at], &y[1][at], 1, 1e-5 * mag + 1e-30, kt_eps(yd)));
		}
	free(y[0]), free(y[1]), free(x), free(w), free(b);
	return 1;
}

/* W in a block format (quant_blocks.h): random blocks, a bias in f32
 * (shmrt/backend.h's "bias in w_dtype" cannot hold for these). The want is
 * the reference backend's where it takes block formats, else the one
 * written here, double sums over the reference dequantization
 * (shmrt_dequant_row); the tolerance as above, W's values being exactly
 * those dequantized ones. x_off: x one element past an aligned start (the
 * kernels' scalar path). Returns 0 where the backend under test does not
 * take block formats: -ENOTSUP, or -EINVAL from kernels/args.c, which
 * knows the plain dtypes only until a backend's quantized path lands. */
static int run_quant_case(const struct kt *kt, int m, int n, int k, enum shmrt_dtype xd, enum shmrt_dtype wd,
			  enum shmrt_dtype yd, int bias, int x_off)
{
	size_t xs = shmrt_dtype_size(xd), w_bytes = (size_t)n * shmrt_dtype_row_bytes(wd, k);
	void *x = kt_random((size_t)m * k, xd, -1, 1), *w = kt_random_blocks(wd, n, k);
	float *b = kt_random(n, SHMRT_F32, -1, 1), *wf = kt_dequant(w, wd, n, k);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(be[i], NULL, ((size_t)m * k + 1) * xs);
		CHECK_OK(be[i]->copy_to_device(NULL, (char *)dx + x_off * xs, x, (size_t)m * k * xs));
		void *dw = kt_upload(be[i], w, w_bytes);
		void *db = kt_upload(be[i], b, n * sizeof(float));
		void *dy = kt_upload(be[i], NULL, (size_t)m * n * shmrt_dtype_size(yd));
		struct shmrt_matmul_args a = {.m = m, .n = n, .k = k, .x = (char *)dx + x_off * xs, .x_dtype = xd,
					      .w = dw, .w_dtype = wd, .bias = bias ? db : NULL, .y = dy, .y_dtype = yd};
		int rc = be[i]->matmul(NULL, &a);
		if (rc == -ENOTSUP || rc == -EINVAL) {
			be[i]->free(dx), be[i]->free(dw), be[i]->free(db), be[i]->free(dy);
			if (i == 0) {
				free(x), free(w), free(b), free(wf);
				return 0;
			}
			break; /* the reference lacks block formats: the want below */
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, (size_t)m * n, yd);
		be[i]->free(dx), be[i]->free(dw), be[i]->free(db), be[i]->free(dy);
	}
	int own = !y[1];
	if (own) {
		y[1] = malloc(sizeof(float) * m * n + 1);
		CHECK(y[1], "no memory");
	}
	for (int r = 0; r < m; r++)
		for (int c = 0; c < n; c++) {
			double mag = bias ? fabs(b[c]) : 0, want = bias ? b[c] : 0;
			for (int i = 0; i < k; i++) {
				double p = shmrt_load(x, xd, (int64_t)r * k + i) * (double)wf[(size_t)c * k + i];
				want += p, mag += fabs(p);
			}
			size_t at = (size_t)r * n + c;
			if (own)
				y[1][at] = kt_round(yd, (float)want);
			char what[200];
			snprintf(what, sizeof(what), "matmul m=%d n=%d k=%d x %s%s w %s y %s bias %d (want: %s), y[%d][%d]",
				 m, n, k, shmrt_dtype_name(xd), x_off ? " unaligned" : "", shmrt_dtype_name(wd),
				 shmrt_dtype_name(yd), bias, own ? "this test's" : kt->ref->name, r, c);
			qworst = fmax(qworst, kt_compare(what, &y[0][at], &y[1][at], 1, 1e-5 * mag + 1e-30, kt_eps(yd)));
		}
	worst = fmax(worst, qworst);
	free(y[0]), free(y[1]), free(x), free(w), free(b), free(wf);
	return 1;
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	static const int shapes[][3] = {
		{1, 1, 1},     {1, 33, 17},  {2, 64, 64},   {3, 100, 257},  {4, 37, 300},  {5, 16, 15},
		{8, 130, 129}, {16, 64, 512}, {17, 31, 129}, {31, 40, 100},  {32, 40, 300}, {33, 65, 515},
		{64, 48, 1000}, {100, 130, 260}, {1, 7, 4096}, {130, 17, 33},
		/* several 128-row tiles, odd n, k a multiple of 8 but not of
		 * the 32 a tensor-core tile steps by */
		{150, 97, 264},
		/* prefill (m >= 32) with k over two of the CPU's 1024-wide K
		 * slices: partial sums carried in y from slice to slice */
		{40, 33, 2100},
	};
	int ran = 0, skipped = 0;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (int xi = 0; xi < 2; xi++)
			for (int wi = 0; wi < 3; wi++)
				for (int yi = 0; yi < 2; yi++) {
					int ok = run_case(&kt, shapes[s][0], shapes[s][1], shapes[s][2], dtypes[xi],
							  dtypes[wi], dtypes[yi], (int)(s & 1));
					ran += ok;
					skipped += !ok;
				}
	/* Block formats: decode (m 1..8: the GEMV over up to 8 rows of X) and
	 * prefill shapes, n not a multiple of any kernel's rows or tiles, k
	 * whole K-quant super-blocks (and one k of 32-element blocks only). */
	static const enum shmrt_dtype qtypes[] = {SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_1,
						  SHMRT_Q4_K, SHMRT_Q5_K, SHMRT_Q6_K};
	static const int qshapes[][3] = {
		{1, 37, 256}, {4, 67, 512}, {8, 130, 256}, {64, 37, 512}, {3, 19, 1024}, {100, 67, 256}, {5, 33, 96},
	};
	int qran = 0, qskipped = 0;
	for (size_t s = 0; s < ARRAY_SIZE(qshapes); s++)
		for (size_t qi = 0; qi < ARRAY_SIZE(qtypes); qi++) {
			if (qshapes[s][2] % shmrt_dtype_block(qtypes[qi]))
				continue;
			for (int xi = 0; xi < 2; xi++)
				for (int yi = 0; yi < 2; yi++) {
					int ok = run_quant_case(&kt, qshapes[s][0], qshapes[s][1], qshapes[s][2],
								dtypes[xi], qtypes[qi], dtypes[yi], (int)(s & 1),
								(int)(s == 4));
					qran += ok;
					qskipped += !ok;
				}
		}
	fprintf(stderr, "%d cases compared (worst error %.3f of the bound), %d dtype combinations not implemented by %s\n",
		ran + qran, worst, skipped + qskipped, kt.test->name);
	if (qskipped)
		fprintf(stderr, "%s took no block-format weights in %d cases\n", kt.test->name, qskipped);
	else
		fprintf(stderr, "block formats: %d cases, worst error %.3f of the bound\n", qran, qworst);
	CHECK(ran > 0, "the backend implements no dtype combination");
	return 0;
}
