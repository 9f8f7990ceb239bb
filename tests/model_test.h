/* Test helper: synthetic checkpoints in a temporary directory (shmrt
 * mkmodel) and comparisons of logits. */
#ifndef SHMRT_TESTS_MODEL_TEST_H
#define SHMRT_TESTS_MODEL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"

struct test_model_dir {
	char path[64];
};

static const char *const test_model_files[] = {"config.json", "model.safetensors", "tokenizer.json", "logits.f32"};

/* Makes preset/seed in a fresh directory under $TMPDIR (or /tmp). */
static inline void test_model_make(struct test_model_dir *d, const char *preset, uint64_t seed)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(d->path, sizeof(d->path), "%s/test-model-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	CHECK(mkdtemp(d->path), "mkdtemp %s", d->path);
	CHECK_OK(shmrt_mkmodel(preset, seed, d->path));
}

static inline void test_model_file(const struct test_model_dir *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->path, name);
}

static inline void test_model_remove(struct test_model_dir *d)
{
	char p[128];
	for (size_t i = 0; i < sizeof(test_model_files) / sizeof(test_model_files[0]); i++) {
		test_model_file(d, test_model_files[i], p, sizeof(p));
		unlink(p);
	}
	rmdir(d->path);
}

/* The largest |got - want| of a row over max(1, max |want|): the relative
 * error of the row's logits. */
static inline double test_row_error(const float *got, const float *want, int n)
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

static inline int test_argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

#endif
