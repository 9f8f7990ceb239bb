/* Helpers of the kernel tests (test_kernels_*.c): each program compares
 * a backend under test with a reference backend, named on the command line
 *
 *     test_kernels_NAME [BACKEND [REFERENCE]]     (default: cpu cpu-ref)
 *
 * so the same programs check "cuda" against "cpu-ref". An unavailable
 * backend (no GPU, not built) skips (exit 77). Inputs are random but seeded
 * and generated on the host, then copied into each backend's own device
 * memory through its alloc/copy entries; outputs are copied back and
 * compared as fp32. Per-dtype tolerances are stated in each test. */
#ifndef SHMRT_TESTS_KERNEL_TEST_H
#define SHMRT_TESTS_KERNEL_TEST_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "dtype_conv.h"

struct kt {
	const struct shmrt_backend *test, *ref;
};

void kt_init(struct kt *kt, int argc, char **argv);

uint64_t kt_next(void);

/* Uniform in [lo, hi). */
float kt_uniform(float lo, float hi);

/* Uniform integer in [lo, hi]. */
int kt_int(int lo, int hi);

/* n random values in [lo, hi) stored as dtype dt (malloc'd). */
void *kt_random(size_t n, enum shmrt_dtype dt, float lo, float hi);

/* rows x cols elements of block format dt (cols a whole number of blocks):
 * random bytes, every fp16 scale (d, and m / dmin where the format has one)
 * set to a random finite value in [-scale, scale] (malloc'd). */
void *kt_random_blocks(enum shmrt_dtype dt, int64_t rows, int64_t cols, float scale);

/* The same as fp32, with quant_blocks.h's reference dequantization. */
float *kt_dequant(enum shmrt_dtype dt, const void *blocks, int64_t rows, int64_t cols);

/* Device memory of b holding a copy of host[0 .. bytes) (or zeros when
 * host is NULL). */
void *kt_upload(const struct shmrt_backend *b, const void *host, size_t bytes);

/* n elements of dtype dt from device memory, as fp32 (malloc'd). */
float *kt_download(const struct shmrt_backend *b, const void *dev, size_t n, enum shmrt_dtype dt);

/* Largest |x|. */
float kt_maxabs(const float *x, size_t n);

/* Checks |got - want| <= atol + rtol * |want| elementwise; returns the
 * largest error relative to that bound (<= 1 passes). */
double kt_compare(const char *what, const float *got, const float *want, size_t n, double atol,
				double rtol);

/* One ulp of a dtype relative to the value, at worst: two backends whose
 * fp32 results straddle a rounding boundary differ by that much. */
double kt_eps(enum shmrt_dtype dt);

/* x rounded to dtype dt (and back to fp32). */
float kt_round(enum shmrt_dtype dt, float x);

#endif
