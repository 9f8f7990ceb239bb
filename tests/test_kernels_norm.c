/* RMSNorm: the backend under test against the reference (kernel_test.h),
 * rows of odd and model-sized widths, f32 and bf16 activations, weights in
 * every dtype, in place and not.
 * Tolerance: |y - y_ref| <= 1e-6 * |x w| + ulp(y) * |y_ref|: the fp32 sum
 * of squares and 1/sqrt carry a few 2^-24, the output one rounding. */
#include "kernel_test.h"
#include "array_size.h"

static double worst;

static int run_case(const struct kt *kt, int rows, int dim, enum shmrt_dtype xd, enum shmrt_dtype wd, int in_place)
{
	size_t n = (size_t)rows * dim;
	void *x = kt_random(n, xd, -3, 3), *w = kt_random(dim, wd, -2, 2);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(be[i], x, n * shmrt_dtype_size(xd)), *dw = kt_upload(be[i], w, dim * shmrt_dtype_size(wd));
		void *dy = in_place ? dx : kt_upload(be[i], NULL, n * shmrt_dtype_size(xd));
		struct shmrt_rmsnorm_args a = {.rows = rows, .dim = dim, .eps = 1e-5f, .x = dx, .dtype = xd,
					       .weight = dw, .w_dtype = wd, .out = dy};
		int rc = be[i]->rmsnorm(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dx), be[0]->free(dw);
			if (!in_place)
				be[0]->free(dy);
			free(x), free(w);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, n, xd);
		be[i]->free(dx), be[i]->free(dw);
		if (!in_place)
			be[i]->free(dy);
	}
	for (size_t e = 0; e < n; e++) {
		char what[128];
		snprintf(what, sizeof(what), "rmsnorm %dx%d x %s w %s in place %d", rows, dim, shmrt_dtype_name(xd),
			 shmrt_dtype_name(wd), in_place);
		double xw = fabs(shmrt_load(x, xd, (int64_t)e) * shmrt_load(w, wd, (int64_t)(e % dim)));
		worst = fmax(worst, kt_compare(what, &y[0][e], &y[1][e], 1, 1e-6 * xw + 1e-30, kt_eps(xd)));
	}
	free(y[0]), free(y[1]), free(x), free(w);
	return 1;
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	static const int shapes[][2] = {{1, 1}, {1, 15}, {3, 64}, {2, 4096}, {17, 100}, {5, 5000}, {64, 2048}};
	static const enum shmrt_dtype dts[] = {SHMRT_F32, SHMRT_BF16, SHMRT_F16};
	int ran = 0;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (int xi = 0; xi < 2; xi++)
			for (int wi = 0; wi < 3; wi++)
				ran += run_case(&kt, shapes[s][0], shapes[s][1], dts[xi], dts[wi], (int)(s & 1));
	fprintf(stderr, "%d cases (worst error %.3f of the bound)\n", ran, worst);
	CHECK(ran > 0, "the backend implements no dtype combination");
	return 0;
}
