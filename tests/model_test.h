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
#include "array_size.h"

struct test_model_dir {
	char path[64];
};

/* Makes preset/seed in a fresh directory under $TMPDIR (or /tmp). */
void test_model_make(struct test_model_dir *d, const char *preset, uint64_t seed);

void test_model_file(const struct test_model_dir *d, const char *name, char *out, size_t cap);

void test_model_remove(struct test_model_dir *d);

/* The largest |got - want| of a row over max(1, max |want|): the relative
 * error of the row's logits. */
double test_row_error(const float *got, const float *want, int n);

int test_argmax(const float *x, int n);

#endif
