/* The model tests' helpers (model_test.h). */
#include "model_test.h"

static const char *const test_model_files[] = {"config.json", "model.safetensors", "tokenizer.json", "logits.f32"};

void test_model_make(struct test_model_dir *d, const char *preset, uint64_t seed)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(d->path, sizeof(d->path), "%s/test-model-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	CHECK(mkdtemp(d->path), "mkdtemp %s", d->path);
	CHECK_OK(shmrt_mkmodel(preset, seed, d->path));
}

void test_model_file(const struct test_model_dir *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->path, name);
}

void test_model_remove(struct test_model_dir *d)
{
	char p[128];
	for (size_t i = 0; i < ARRAY_SIZE(test_model_files); i++) {
		test_model_file(d, test_model_files[i], p, sizeof(p));
		unlink(p);
	}
	rmdir(d->path);
}

double test_row_error(const float *got, const float *want, int n)
{
	double err = 0, scale = 1;
	for (int i = 0; i < n; i++) {
		err = fmax(err, fabs((double)got[i] - want[i]));
		scale = fmax(scale, fabs((double)want[i]));
		if (got[i] != got[i])
			return INFINITY;
	}
	return err / scale;
}

int test_argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}
