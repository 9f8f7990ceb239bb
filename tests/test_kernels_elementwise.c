/* SwiGLU and the residual add (kernel_test.h).
 * SwiGLU, fused gate_up rows (stride 2*dim) and separate ones, tolerance
 * |y - y_ref| <= 1e-6 * |g u| + ulp(y) * |y_ref| (a vector exp of a few
 * ulp). The add is exact in f32 (one rounding of the exact sum in both);
 * in bf16 it may differ by the output's ulp (an fp32 sum rounded again). */
#include "kernel_test.h"
#include "array_size.h"

static double worst;

static int swiglu_case(const struct kt *kt, int rows, int dim, int fused, enum shmrt_dtype dt)
{
	int64_t stride = fused ? 2 * (int64_t)dim : dim + 1;
	size_t n_in = (size_t)rows * stride, n_out = (size_t)rows * dim, esz = shmrt_dtype_size(dt);
	void *g = kt_random(n_in, dt, -8, 8), *u = kt_random(n_in, dt, -2, 2);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		/* fused: one buffer [rows][gate | up]; else two buffers */
		void *dg = kt_upload(be[i], g, n_in * esz), *du = kt_upload(be[i], u, n_in * esz);
		void *dy = kt_upload(be[i], NULL, n_out * esz);
		struct shmrt_swiglu_args a = {.rows = rows, .dim = dim, .gate = dg,
					      .up = fused ? (char *)dg + dim * esz : du, .in_stride = stride,
					      .dtype = dt, .out = dy};
		int rc = be[i]->swiglu(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dg), be[0]->free(du), be[0]->free(dy), free(g), free(u);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, n_out, dt);
		be[i]->free(dg), be[i]->free(du), be[i]->free(dy);
	}
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < dim; c++) {
			const void *ub = fused ? g : u;
			int64_t at = r * stride + c, uat = at + (fused ? dim : 0);
			double gu = fabs(shmrt_load(g, dt, at) * shmrt_load(ub, dt, uat));
			char what[96];
			snprintf(what, sizeof(what), "swiglu %dx%d fused %d %s", rows, dim, fused, shmrt_dtype_name(dt));
			size_t o = (size_t)r * dim + c;
			worst = fmax(worst, kt_compare(what, &y[0][o], &y[1][o], 1, 1e-6 * gu + 1e-30, kt_eps(dt)));
		}
	free(y[0]), free(y[1]), free(g), free(u);
	return 1;
}

static int add_case(const struct kt *kt, int64_t n, int in_place, enum shmrt_dtype dt)
{
	void *x = kt_random(n, dt, -100, 100), *z = kt_random(n, dt, -1, 1);
	size_t bytes = n * shmrt_dtype_size(dt);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *y[2];
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(be[i], x, bytes), *dz = kt_upload(be[i], z, bytes);
		void *dy = in_place ? dx : kt_upload(be[i], NULL, bytes);
		struct shmrt_add_args a = {.n = n, .a = dx, .b = dz, .dtype = dt, .out = dy};
		int rc = be[i]->add(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dx), be[0]->free(dz);
			if (!in_place)
				be[0]->free(dy);
			free(x), free(z);
			return 0;
		}
		CHECK_OK(rc);
		y[i] = kt_download(be[i], dy, n, dt);
		be[i]->free(dx), be[i]->free(dz);
		if (!in_place)
			be[i]->free(dy);
	}
	kt_compare("add", y[0], y[1], n, 0, dt == SHMRT_F32 ? 0 : kt_eps(dt));
	free(y[0]), free(y[1]), free(x), free(z);
	return 1;
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	static const int shapes[][2] = {{1, 1}, {1, 17}, {3, 64}, {2, 11008}, {9, 100}, {40, 1000}};
	int ran = 0;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (int f = 0; f < 2; f++)
			for (int d = 0; d < 2; d++)
				ran += swiglu_case(&kt, shapes[s][0], shapes[s][1], f, d ? SHMRT_BF16 : SHMRT_F32);
	static const int64_t sizes[] = {1, 15, 4096, 100003};
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
		for (int d = 0; d < 2; d++)
			ran += add_case(&kt, sizes[s], (int)(s & 1), d ? SHMRT_BF16 : SHMRT_F32);
	fprintf(stderr, "%d cases (swiglu worst error %.3f of the bound)\n", ran, worst);
	CHECK(ran > 0, "the backend implements no dtype");
	return 0;
}
