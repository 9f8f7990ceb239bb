/* matmul: the backend under test against the reference (kernel_test.h)
 * over odd and even shapes on both sides of the decode/prefill switch,
 * every dtype combination the backend implements, with and without bias.
 *
 * Tolerance: |y - y_ref| <= 1e-5 * sum_k |x_k w_k| + eps(y) * |y_ref|.
 * The first term is fp32 accumulation of up to ~5000 products (rounding
 * errors grow like sqrt(K) * 2^-24 of that sum in practice, K * 2^-24 at
 * worst); the second one ulp of the output (kt_eps: 2^-7 for bf16). The
 * reference accumulates in double from the same (already rounded) inputs.
 * Where the cpu backend takes AVX512-BF16's dot product (bf16 W, several
 * rows of X: shmrt_cpu_bf16dot_used) it rounds X to bf16, at
 * most 2^-9 of each |x|: 2^-9 * sum_k |x_k w_k| more. The float cases run
 * at every x86 level the CPU has, as the block formats do.
 *
 * Block-format W (Q8_0 ... Q6_K: random blocks, kt_random_blocks) with an
 * f32 bias, x and y f32 (and bf16 where the backend takes them), at every
 * x86 level this CPU has when the backend is
 * "cpu" (shmrt_cpu_set_isa). The cpu backend rounds each block of 32 of X
 * to int8 (d = max |x| / 127, matmul_quant.c), an error of at most d / 2
 * an element, so its bound adds sum over blocks of d/2 * sum |w| to the
 * 1e-5 * sum |x w| of fp32 accumulation (the reference dequantizes W with
 * the same formulas and keeps X exact); cuda keeps X as it is: 1e-5 * sum
 * |x w| alone, plus one ulp of a bf16 y. */
#include "kernel_test.h"
#include "array_size.h"
#include "cpu_isa.h"
#include "cpu_kernels.h"

static double worst; /* largest error / bound seen */

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
					      .bias = bias ? db : NULL, .bias_dtype = wd, .y = dy, .y_dtype = yd};
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
	struct shmrt_matmul_args probe = {.m = m, .n = n, .k = k, .w_dtype = wd};
	bool x_to_bf16 = !strcmp(kt->test->name, "cpu") && shmrt_cpu_bf16dot_used(&probe);
	for (int r = 0; r < m; r++)
		for (int c = 0; c < n; c++) {
			double mag = 0;
			for (int i = 0; i < k; i++)
				mag += fabs(shmrt_load(x, xd, (int64_t)r * k + i) * shmrt_load(w, wd, (int64_t)c * k + i));
			double bound = (1e-5 + (x_to_bf16 ? 0x1p-9 : 0)) * mag + 1e-30;
			if (bias)
				bound += 1e-5 * fabs(shmrt_load(b, wd, c));
			size_t at = (size_t)r * n + c;
			char what[160];
			snprintf(what, sizeof(what), "matmul m=%d n=%d k=%d x %s w %s y %s bias %d isa %s, y[%d][%d]", m,
				 n, k, shmrt_dtype_name(xd), shmrt_dtype_name(wd), shmrt_dtype_name(yd), bias,
				 strcmp(kt->test->name, "cpu") ? "-" : shmrt_cpu_isa_name(shmrt_cpu_isa()), r, c);
			worst = fmax(worst, kt_compare(what, &y[0][at], &y[1][at], 1, bound, kt_eps(yd)));
		}
	free(y[0]), free(y[1]), free(x), free(w), free(b);
	return 1;
}

static double worst_q; /* largest error / bound seen with a block-format w */

static const enum shmrt_dtype qtypes[] = {SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_1, SHMRT_Q4_K, SHMRT_Q5_K, SHMRT_Q6_K};

/* The bound on |y - y_ref| for one output (comment at the top); the X
 * rounding term only where the backend rounds X to int8 blocks (cpu): cuda
 * keeps X as it is, and its W values are the reference's exactly. */
static double quant_bound(const float *x, const float *w, int k, bool xq_rounds)
{
	double mag = 0, xq = 0;
	for (int b = 0; b < k; b += 32) {
		double amax = 0, wsum = 0;
		for (int i = b; i < b + 32; i++) {
			amax = fmax(amax, fabs(x[i]));
			wsum += fabs(w[i]);
			mag += fabs((double)x[i] * w[i]);
		}
		xq += amax / 127 / 2 * 1.0001 * wsum; /* the slack: d and 1/d rounded to fp32 */
	}
	return 1e-5 * mag + (xq_rounds ? xq : 0) + 1e-30;
}

/* x in xd (rounded to it), x_off elements past an aligned start (the
 * kernels' scalar loads), y in yd, bias f32. */
static int run_quant_case(const struct kt *kt, int m, int n, int k, enum shmrt_dtype wd, int bias,
			  enum shmrt_dtype xd, enum shmrt_dtype yd, int x_off)
{
	float *x = kt_random((size_t)m * k, SHMRT_F32, -1, 1), *b = kt_random(n, SHMRT_F32, -1, 1);
	size_t xs = shmrt_dtype_size(xd);
	void *xh = calloc((size_t)m * k + x_off, xs);
	CHECK(xh, "no memory");
	for (size_t i = 0; i < (size_t)m * k; i++) {
		x[i] = kt_round(xd, x[i]); /* the values the backends see */
		shmrt_store(xh, xd, (int64_t)(i + x_off), x[i]);
	}
	void *w = kt_random_blocks(wd, n, k, 0.02f);
	float *wf = kt_dequant(wd, w, n, k);
	size_t w_bytes = shmrt_dtype_row_bytes(wd, k) * n;
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(be[i], xh, xs * ((size_t)m * k + x_off)), *dw = kt_upload(be[i], w, w_bytes);
		void *db = kt_upload(be[i], b, sizeof(float) * n);
		void *dy = kt_upload(be[i], NULL, shmrt_dtype_size(yd) * m * n);
		struct shmrt_matmul_args a = {.m = m, .n = n, .k = k, .x = (char *)dx + xs * x_off, .x_dtype = xd,
					      .w = dw, .w_dtype = wd, .bias = bias ? db : NULL,
					      .bias_dtype = SHMRT_F32, .y = dy, .y_dtype = yd};
		int rc = be[i]->matmul(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dx), be[0]->free(dw), be[0]->free(db), be[0]->free(dy);
			free(x), free(xh), free(w), free(wf), free(b);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, (size_t)m * n, yd);
		be[i]->free(dx), be[i]->free(dw), be[i]->free(db), be[i]->free(dy);
	}
	bool cpu = !strcmp(kt->test->name, "cpu");
	for (int r = 0; r < m; r++)
		for (int c = 0; c < n; c++) {
			size_t at = (size_t)r * n + c;
			char what[200];
			snprintf(what, sizeof(what), "matmul m=%d n=%d k=%d x %s%s w %s y %s bias %d isa %s, y[%d][%d]",
				 m, n, k, shmrt_dtype_name(xd), x_off ? " unaligned" : "", shmrt_dtype_name(wd),
				 shmrt_dtype_name(yd), bias, cpu ? shmrt_cpu_isa_name(shmrt_cpu_isa()) : "-", r, c);
			double bound = quant_bound(x + (size_t)r * k, wf + (size_t)c * k, k, cpu);
			worst_q = fmax(worst_q, kt_compare(what, &y[0][at], &y[1][at], 1, bound, kt_eps(yd)));
		}
	free(y[0]), free(y[1]), free(x), free(xh), free(w), free(wf), free(b);
	return 1;
}

/* Every block format over m = 1 .. 64 (decode tiles of 4, 2, 1 rows and
 * prefill), n off the 4-row strips and 16-row thread grains, k from one
 * block to 4096; at each level the CPU has. Then bf16 x and y where the
 * backend takes them. */
static int run_quant(const struct kt *kt)
{
	static const int ms[] = {1, 2, 3, 8, 33, 64};
	static const int ns[] = {1, 7, 37};
	static const int ks[] = {32, 96, 256, 768, 4096};
	bool cpu = !strcmp(kt->test->name, "cpu");
	int best = cpu ? (int)shmrt_cpu_isa_best() : 0, ran = 0;
	for (int isa = 0; isa <= best; isa++) {
		if (cpu)
			CHECK_OK(shmrt_cpu_set_isa((enum shmrt_cpu_isa)isa));
		for (size_t t = 0; t < ARRAY_SIZE(qtypes); t++)
			for (size_t mi = 0; mi < ARRAY_SIZE(ms); mi++)
				for (size_t ki = 0; ki < ARRAY_SIZE(ks); ki++) {
					int k = ks[ki];
					if (k % shmrt_dtype_block(qtypes[t]))
						continue;
					/* the largest shapes once, with m = 1 and 64 */
					if (k == 4096 && ms[mi] != 1 && ms[mi] != 64)
						continue;
					int n = ns[(mi + ki) % ARRAY_SIZE(ns)] + (k == 4096 ? 0 : 16 * (int)(mi & 1));
					ran += run_quant_case(kt, ms[mi], n, k, qtypes[t], (int)((mi + ki) & 1),
							      SHMRT_F32, SHMRT_F32, 0);
				}
	}
	if (cpu)
		CHECK_OK(shmrt_cpu_set_isa(shmrt_cpu_isa_best()));
	/* bf16 activations and outputs (the CUDA backend's), decode batches
	 * of 4 and 8 and a prefill over two row tiles, x off its alignment */
	static const int more[][3] = {{4, 67, 512}, {8, 130, 256}, {100, 67, 256}, {3, 19, 1024}};
	static const enum shmrt_dtype xy[][2] = {{SHMRT_BF16, SHMRT_BF16}, {SHMRT_BF16, SHMRT_F32},
						 {SHMRT_F32, SHMRT_BF16}};
	for (size_t t = 0; t < ARRAY_SIZE(qtypes); t++)
		for (size_t s = 0; s < ARRAY_SIZE(more); s++)
			for (size_t d = 0; d < ARRAY_SIZE(xy); d++)
				ran += run_quant_case(kt, more[s][0], more[s][1], more[s][2], qtypes[t], (int)(s & 1),
						      xy[d][0], xy[d][1], s == 3);
	fprintf(stderr, "%d block-format cases at %d levels (worst error %.3f of the bound)\n", ran, best + 1,
		worst_q);
	return ran;
}

/* A block format needs k a whole number of blocks. */
static void check_quant_refused(const struct kt *kt)
{
	float x[48] = {0}, y[1];
	uint8_t w[64] = {0};
	struct shmrt_matmul_args a = {.m = 1, .n = 1, .k = 48, .x = x, .x_dtype = SHMRT_F32, .w = w,
				      .w_dtype = SHMRT_Q8_0, .y = y, .y_dtype = SHMRT_F32};
	CHECK(kt->ref->matmul(NULL, &a) == -EINVAL, "q8_0 with k = 48 was accepted");
	CHECK(strstr(shmrt_last_error(), "blocks of 32"), "unclear error: %s", shmrt_last_error());
	a.k = 32, a.w_dtype = SHMRT_Q4_K;
	CHECK(kt->ref->matmul(NULL, &a) == -EINVAL, "q4_k with k = 32 was accepted");
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
		/* prefill (m >= 32 on the CPU: panels of 32 rows, K in equal
		 * slices of at most 768 or 1536, partial sums carried in y
		 * from slice to slice) with k over several slices; the decode
		 * tiles at m = 31 (4-row passes, then 2 and 1); rows past one
		 * chunk of 256 */
		{31, 37, 2100}, {300, 19, 600},
		{130, 33, 2100}, {40, 33, 2100}, {127, 37, 200},
		/* the bf16 dot product's K slices of 2048 and X chunks of 64 */
		{16, 33, 4133}, {200, 21, 2050},
	};
	int ran = 0, skipped = 0;
	bool cpu = !strcmp(kt.test->name, "cpu");
	int best = cpu ? (int)shmrt_cpu_isa_best() : 0;
	for (int isa = 0; isa <= best; isa++) {
		if (cpu)
			CHECK_OK(shmrt_cpu_set_isa((enum shmrt_cpu_isa)isa));
		for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
			for (int xi = 0; xi < 2; xi++)
				for (int wi = 0; wi < 3; wi++)
					for (int yi = 0; yi < 2; yi++) {
						int ok = run_case(&kt, shapes[s][0], shapes[s][1], shapes[s][2],
								  dtypes[xi], dtypes[wi], dtypes[yi], (int)(s & 1));
						ran += ok;
						skipped += !ok;
					}
	}
	if (cpu)
		CHECK_OK(shmrt_cpu_set_isa(shmrt_cpu_isa_best()));
	/* The bf16 dot product (off unless asked for: matmul_bf16dot.c) */
	int dot_cases = 0;
	if (cpu && best >= SHMRT_ISA_AVX512BF16) {
		shmrt_cpu_set_bf16dot(SHMRT_BF16DOT_ON);
		for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
			dot_cases += run_case(&kt, shapes[s][0], shapes[s][1], shapes[s][2], SHMRT_F32, SHMRT_BF16,
					      SHMRT_F32, (int)(s & 1));
		shmrt_cpu_set_bf16dot(SHMRT_BF16DOT_OFF);
		CHECK(dot_cases == (int)ARRAY_SIZE(shapes), "bf16 dot: %d of %zu shapes ran", dot_cases,
		      ARRAY_SIZE(shapes));
	}
	ran += dot_cases;
	fprintf(stderr, "%d cases compared at %d levels (worst error %.3f of the bound), %d dtype combinations not implemented by %s\n",
		ran, best + 1, worst, skipped, kt.test->name);
	CHECK(ran > 0, "the backend implements no dtype combination");
	check_quant_refused(&kt);
	int ran_q = run_quant(&kt);
	if (!strcmp(kt.test->name, "cpu"))
		CHECK(ran_q > 0, "cpu implements no block format");
	return 0;
}
