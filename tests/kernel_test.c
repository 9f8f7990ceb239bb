/* The kernel tests' helpers (kernel_test.h). */
#include <stddef.h>

#include "kernel_test.h"
#include "quant_blocks.h"

void kt_init(struct kt *kt, int argc, char **argv)
{
	const char *names[2] = {argc > 1 ? argv[1] : "cpu", argc > 2 ? argv[2] : "cpu-ref"};
	const struct shmrt_backend **b[2] = {&kt->test, &kt->ref};
	for (int i = 0; i < 2; i++) {
		int rc = shmrt_backend_get(names[i], b[i]);
		if (rc == -ENODEV)
			SKIP("backend %s: %s", names[i], shmrt_last_error());
		CHECK_OK(rc);
	}
	fprintf(stderr, "testing %s against %s\n", kt->test->name, kt->ref->name);
}

/* splitmix64: the inputs' generator (any fixed sequence would do). */
static uint64_t kt_state = 0x5eed;

uint64_t kt_next(void)
{
	uint64_t z = (kt_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float kt_uniform(float lo, float hi)
{
	return lo + (hi - lo) * (float)(kt_next() >> 40) * 0x1p-24f;
}

int kt_int(int lo, int hi)
{
	return lo + (int)(kt_next() % (uint64_t)(hi - lo + 1));
}

void *kt_random(size_t n, enum shmrt_dtype dt, float lo, float hi)
{
	void *p = malloc(n * shmrt_dtype_size(dt) + 1);
	CHECK(p, "no memory");
	for (size_t i = 0; i < n; i++)
		shmrt_store(p, dt, (int64_t)i, kt_uniform(lo, hi));
	return p;
}

void *kt_random_blocks(enum shmrt_dtype dt, int64_t rows, int64_t cols, float scale)
{
	size_t block = shmrt_dtype_block_bytes(dt), n = (size_t)rows * (size_t)(cols / shmrt_dtype_block(dt));
	uint8_t *p = malloc(n * block + 1);
	CHECK(p, "no memory");
	for (size_t i = 0; i < n * block; i++)
		p[i] = (uint8_t)kt_next();
	/* byte offsets of the fp16 scales in each block (quant_blocks.h) */
	int at[2] = {0, dt == SHMRT_Q8_0 || dt == SHMRT_Q4_0 ? -1 : 2};
	if (dt == SHMRT_Q6_K)
		at[0] = (int)offsetof(struct shmrt_block_q6_k, d), at[1] = -1;
	for (size_t b = 0; b < n; b++)
		for (int i = 0; i < 2; i++)
			if (at[i] >= 0) {
				uint16_t h = shmrt_f32_to_f16(kt_uniform(-scale, scale));
				memcpy(p + b * block + at[i], &h, sizeof(h));
			}
	return p;
}

float *kt_dequant(enum shmrt_dtype dt, const void *blocks, int64_t rows, int64_t cols)
{
	float *out = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
	CHECK(out, "no memory");
	for (int64_t r = 0; r < rows; r++)
		shmrt_dequant_row((const char *)blocks + r * shmrt_dtype_row_bytes(dt, cols), dt, cols, out + r * cols);
	return out;
}

void *kt_upload(const struct shmrt_backend *b, const void *host, size_t bytes)
{
	void *dev, *zeros = NULL;
	CHECK_OK(b->alloc(&dev, bytes ? bytes : 1));
	if (!host)
		host = zeros = calloc(1, bytes ? bytes : 1);
	CHECK(host, "no memory");
	CHECK_OK(b->copy_to_device(NULL, dev, host, bytes));
	free(zeros);
	return dev;
}

float *kt_download(const struct shmrt_backend *b, const void *dev, size_t n, enum shmrt_dtype dt)
{
	size_t bytes = n * shmrt_dtype_size(dt);
	void *raw = malloc(bytes + 1);
	float *out = malloc(n * sizeof(float) + 1);
	CHECK(raw && out, "no memory");
	CHECK_OK(b->synchronize(NULL));
	CHECK_OK(b->copy_from_device(NULL, raw, dev, bytes));
	for (size_t i = 0; i < n; i++)
		out[i] = shmrt_load(raw, dt, (int64_t)i);
	free(raw);
	return out;
}

float kt_maxabs(const float *x, size_t n)
{
	float m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmaxf(m, fabsf(x[i]));
	return m;
}

double kt_compare(const char *what, const float *got, const float *want, size_t n, double atol,
				double rtol)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double bound = atol + rtol * fabs(want[i]), err = fabs((double)got[i] - want[i]);
		CHECK(err <= bound, "%s: element %zu is %.9g, want %.9g (error %.3g > bound %.3g)", what, i, got[i],
		      want[i], err, bound);
		if (bound > 0 && err / bound > worst)
			worst = err / bound;
	}
	return worst;
}

double kt_eps(enum shmrt_dtype dt)
{
	return dt == SHMRT_BF16 ? 0x1p-7 : dt == SHMRT_F16 ? 0x1p-10 : 0x1p-23;
}

float kt_round(enum shmrt_dtype dt, float x)
{
	uint32_t tmp;
	shmrt_store(&tmp, dt, 0, x);
	return shmrt_load(&tmp, dt, 0);
}
