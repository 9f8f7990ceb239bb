/* The reference quantizers (runtime/core/quantize.c): random rows
 * quantized, then dequantized by quant_blocks.h, within these bounds per
 * element, d being the block's stored (fp16) scale:
 *   Q8_0: |x - x'| <= d/2 + 127 r, r = d's fp16 rounding (max(d 2^-11,
 *         2^-25): subnormal below 2^-14), |q| <= 127;
 *   Q4_0: <= |d|/2 + 8 r where x/d <= 7.5, else (a value of the sign
 *         opposite to the block's extreme, clamped at q = 15) <= |d| + 8 r;
 *   Q4_K: <= step + 7.5 D + 0.5 Dmin, step = the sub-block's range / 15
 *         (one level of a min/max fit: the search may move the fit by
 *         up to that), D and Dmin the super-block's fp16 scales (half a
 *         6-bit step of the sub-block's scale, times 15 levels, and of its
 *         min); on normal rows the relative RMS error <= 0.075 (a
 *         plain min/max fit: about 0.079).
 * Also all-zero and constant blocks, and rows of the wrong length refused.
 *
 * With `--row TYPE IN OUT` it quantizes the f32 file IN into OUT, for
 * tests/gguf/test_quantize.py to compare with the `gguf` package. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant_blocks.h"
#include "quantize.h"
#include "shmrt/shmrt.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static float normal(void)
{
	return (float)(sqrt(-2 * log(1 - uniform())) * cos(6.283185307179586 * uniform()));
}

/* A row of n with a distribution that changes with kind. */
static void fill(float *x, int n, int kind)
{
	for (int i = 0; i < n; i++) {
		float v = normal();
		if (kind == 1)
			v = fabsf(v) + 0.5f; /* all positive: Q4_K's min > 0 clamps to 0 */
		else if (kind == 2)
			v *= (i % 97 == 0) ? 40.0f : 0.02f; /* outliers */
		else if (kind == 3)
			v = (float)(uniform() * 2 - 1) * 1e-3f;
		x[i] = v;
	}
}

static void check_q8_0(const float *x, int n)
{
	struct shmrt_block_q8_0 b[n / 32];
	float y[n];
	CHECK_OK(shmrt_quantize_row(x, n, SHMRT_Q8_0, b));
	shmrt_dequant_row(b, SHMRT_Q8_0, n, y);
	for (int i = 0; i < n; i += 32) {
		float d = shmrt_f16_to_f32(b[i / 32].d), amax = 0;
		for (int j = 0; j < 32; j++)
			amax = fmaxf(amax, fabsf(x[i + j]));
		for (int j = 0; j < 32; j++)
			CHECK(fabsf(x[i + j] - y[i + j]) <= d / 2 + 127 * fmaxf(amax / 127 * 0x1p-11f, 0x1p-25f) + 1e-30f,
			      "q8_0 element %d: %g -> %g, d %g", i + j, x[i + j], y[i + j], d);
	}
}

static void check_q4_0(const float *x, int n)
{
	struct shmrt_block_q4_0 b[n / 32];
	float y[n];
	CHECK_OK(shmrt_quantize_row(x, n, SHMRT_Q4_0, b));
	shmrt_dequant_row(b, SHMRT_Q4_0, n, y);
	for (int i = 0; i < n; i += 32) {
		float d = fabsf(shmrt_f16_to_f32(b[i / 32].d));
		for (int j = 0; j < 32; j++) {
			float q = d ? x[i + j] / shmrt_f16_to_f32(b[i / 32].d) : 0;
			float bound = (q <= 7.5f ? d / 2 : d) + 8 * fmaxf(d * 0x1p-11f, 0x1p-25f) + 1e-30f;
			CHECK(fabsf(x[i + j] - y[i + j]) <= bound, "q4_0 element %d: %g -> %g, d %g", i + j, x[i + j],
			      y[i + j], d);
		}
	}
}

/* Returns the sum of squared errors. */
static double check_q4_k(const float *x, int n, double *worst_rel)
{
	struct shmrt_block_q4_k b[n / 256];
	float y[n];
	CHECK_OK(shmrt_quantize_row(x, n, SHMRT_Q4_K, b));
	shmrt_dequant_row(b, SHMRT_Q4_K, n, y);
	double total = 0;
	for (int i = 0; i < n; i += 32) {
		const struct shmrt_block_q4_k *sb = &b[i / 256];
		/* half a step of the 6-bit scale (times 15 levels) and min */
		float round6 = 7.5f * shmrt_f16_to_f32(sb->d) + 0.5f * shmrt_f16_to_f32(sb->dmin);
		float lo = 0, hi = x[i];
		double se = 0, worst = 0;
		for (int j = 0; j < 32; j++) {
			lo = fminf(lo, x[i + j]);
			hi = fmaxf(hi, x[i + j]);
		}
		float step = (hi - lo) / 15;
		for (int j = 0; j < 32; j++) {
			double e = fabs((double)x[i + j] - y[i + j]);
			se += e * e;
			worst = fmax(worst, e);
			CHECK(e <= (step + round6) * 1.001 + 1e-30, "q4_k element %d: %g -> %g, step %g, 6-bit %g",
			      i + j, x[i + j], y[i + j], step, round6);
		}
		if (step > 0)
			*worst_rel = fmax(*worst_rel, worst / (step + round6));
		total += se;
	}
	return total;
}

static void check_edges(void)
{
	float zero[256] = {0}, y[256], c[256];
	uint8_t b[144 * 2];
	for (int i = 0; i < 256; i++)
		c[i] = -0.75f;
	static const enum shmrt_dtype types[] = {SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_K};
	for (int t = 0; t < 3; t++) {
		CHECK_OK(shmrt_quantize_row(zero, 256, types[t], b));
		shmrt_dequant_row(b, types[t], 256, y);
		for (int i = 0; i < 256; i++)
			CHECK(y[i] == 0, "%s of zeros gives %g", shmrt_dtype_name(types[t]), y[i]);
		CHECK_OK(shmrt_quantize_row(c, 256, types[t], b));
		shmrt_dequant_row(b, types[t], 256, y);
		for (int i = 0; i < 256; i++)
			CHECK(fabsf(y[i] - c[i]) <= 0.75f * 0x1p-10f, "%s of a constant gives %g",
			      shmrt_dtype_name(types[t]), y[i]);
	}
	CHECK(shmrt_quantize_row(c, 48, SHMRT_Q8_0, b) == -EINVAL, "48 elements are not whole Q8_0 blocks");
	CHECK(shmrt_quantize_row(c, 128, SHMRT_Q4_K, b) == -EINVAL, "128 elements are not a Q4_K block");
	CHECK(shmrt_quantize_row(c, 32, SHMRT_Q6_K, b) == -EINVAL, "Q6_K is not a quantizer's type");
	CHECK(strstr(shmrt_last_error(), "q6_k"), "the message names the type: %s", shmrt_last_error());
}

/* --row TYPE IN OUT: IN's f32 values (whole blocks) quantized into OUT. */
static int quantize_file(const char *type, const char *in, const char *out)
{
	enum shmrt_dtype dt;
	CHECK(shmrt_dtype_from_name(type, &dt) == 0, "unknown type %s", type);
	FILE *f = fopen(in, "rb");
	CHECK(f, "%s: %s", in, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f) / 4;
	rewind(f);
	float *x = malloc((size_t)n * 4 + 4);
	void *q = malloc(shmrt_dtype_row_bytes(dt, n) + 1);
	CHECK(x && q && fread(x, 4, (size_t)n, f) == (size_t)n, "reading %s", in);
	fclose(f);
	CHECK_OK(shmrt_quantize_row(x, n, dt, q));
	f = fopen(out, "wb");
	CHECK(f && fwrite(q, 1, shmrt_dtype_row_bytes(dt, n), f) == shmrt_dtype_row_bytes(dt, n), "writing %s", out);
	fclose(f);
	free(x);
	free(q);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--row"))
		return quantize_file(argv[2], argv[3], argv[4]);
	enum { N = 1024 };
	static float x[N];
	double worst_rel = 0, sq_err = 0, sq_x = 0;
	for (int round = 0; round < 200; round++) {
		fill(x, N, round % 4);
		check_q8_0(x, N);
		check_q4_0(x, N);
		double se = check_q4_k(x, N, &worst_rel);
		if (round % 4 == 0) {
			sq_err += se;
			for (int i = 0; i < N; i++)
				sq_x += (double)x[i] * x[i];
		}
	}
	check_edges();
	/* normal rows: a plain min/max fit of 32 normal values to 16 levels
	 * (step ~ 4.1 sigma / 15) has a relative RMS error near 0.079; the
	 * search of make_qkx2_quants does better */
	double rel_rms = sqrt(sq_err / sq_x);
	CHECK(rel_rms <= 0.075, "q4_k: relative RMS error %.4f on normal rows", rel_rms);
	printf("ok: Q8_0, Q4_0 and Q4_K round trips within their bounds; Q4_K's worst error %.3f of its bound, "
	       "relative RMS error %.4f on normal rows\n", worst_rel, rel_rms);
	return 0;
}
