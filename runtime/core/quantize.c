/* Reference quantizers of fp32 rows into Q8_0, Q4_0 and Q4_K (quantize.h). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "quantize.h"
#include "fail.h"
#include "quant_blocks.h"

/* ggml-quants.c's nearest_int: round to nearest, ties to even. */
static int nearest(float x)
{
	return (int)lrintf(x);
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* quantize_row_q8_0_ref: d = amax / 127, q = round(x / d), half away from 0. */
void shmrt_quantize_q8_0(const float *x, void *out)
{
	struct shmrt_block_q8_0 *b = out;
	float amax = 0;
	for (int j = 0; j < SHMRT_QK; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	float d = amax / 127, id = d != 0 ? 1 / d : 0;
	b->d = shmrt_f32_to_f16(d);
	for (int j = 0; j < SHMRT_QK; j++)
		b->qs[j] = (int8_t)roundf(x[j] * id);
}

/* quantize_row_q4_0_ref: d = (the value of largest magnitude) / -8, so that
 * it is q = 0 exactly; q = min(15, (int)(x / d + 8.5)). */
void shmrt_quantize_q4_0(const float *x, void *out)
{
	struct shmrt_block_q4_0 *b = out;
	float amax = 0, max = 0;
	for (int j = 0; j < SHMRT_QK; j++)
		if (fabsf(x[j]) > amax) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	float d = max / -8, id = d != 0 ? 1 / d : 0;
	b->d = shmrt_f32_to_f16(d);
	for (int j = 0; j < SHMRT_QK / 2; j++) {
		int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + SHMRT_QK / 2] * id + 8.5f);
		b->qs[j] = (uint8_t)(clamp(lo, 0, 15) | clamp(hi, 0, 15) << 4);
	}
}

/* n values x with weights w, to be fitted by scale * L + min, L integer
 * levels in [0, nmax]. */
struct fit {
	int n, nmax;
	const float *x, *w;
};

static float fit_error(const struct fit *f, const uint8_t *l, float scale, float min)
{
	float err = 0;
	for (int i = 0; i < f->n; i++) {
		float diff = scale * l[i] + min - f->x[i];
		err += f->w[i] * diff * diff;
	}
	return err;
}

static void fit_levels(const struct fit *f, float iscale, float min, uint8_t *l)
{
	for (int i = 0; i < f->n; i++)
		l[i] = (uint8_t)clamp(nearest(iscale * (f->x[i] - min)), 0, f->nmax);
}

/* Weighted least squares of x ~ scale * L + min, as ggml-quants.c's
 * make_qkx2_quants (rmin -1, rdelta 0.1, nstep 20): start from the min/max
 * fit, then try the level spacings iscale = (nmax - 1 + 0.1 k) / range,
 * k = 0..20, solve scale and min for each set of levels, and keep the fit
 * of smallest weighted squared error. min is clamped to <= 0. Returns
 * scale; best gets the levels, *neg_min = -min. */
static float fit_scale_min(const struct fit *f, uint8_t *best, float *neg_min)
{
	float min = f->x[0], max = f->x[0], sum_w = 0, sum_x = 0;
	for (int i = 0; i < f->n; i++) {
		min = fminf(min, f->x[i]);
		max = fmaxf(max, f->x[i]);
		sum_w += f->w[i];
		sum_x += f->w[i] * f->x[i];
	}
	min = fminf(min, 0);
	if (max == min) {
		memset(best, 0, (size_t)f->n);
		*neg_min = -min;
		return 0;
	}
	float scale = (max - min) / f->nmax;
	fit_levels(f, f->nmax / (max - min), min, best);
	float best_err = fit_error(f, best, scale, min);
	uint8_t l[SHMRT_QK];
	for (int k = 0; k <= 20; k++) {
		fit_levels(f, (-1.0f + 0.1f * k + f->nmax) / (max - min), min, l);
		float sl = 0, sl2 = 0, sxl = 0;
		for (int i = 0; i < f->n; i++) {
			sl += f->w[i] * l[i];
			sl2 += f->w[i] * l[i] * l[i];
			sxl += f->w[i] * l[i] * f->x[i];
		}
		float det = sum_w * sl2 - sl * sl;
		if (det <= 0)
			continue;
		float s = (sum_w * sxl - sum_x * sl) / det, m = (sl2 * sum_x - sl * sxl) / det;
		if (m > 0) {
			m = 0;
			s = sxl / sl2;
		}
		float err = fit_error(f, l, s, m);
		if (err < best_err) {
			memcpy(best, l, (size_t)f->n);
			best_err = err;
			scale = s;
			min = m;
		}
	}
	*neg_min = -min;
	return scale;
}

/* The inverse of shmrt_q4k_scale_min: 6-bit sc and m of sub-block j. */
static void put_scale_min(uint8_t *q, int j, int sc, int m)
{
	if (j < 4) {
		q[j] = (uint8_t)((q[j] & 0xC0) | sc);
		q[j + 4] = (uint8_t)((q[j + 4] & 0xC0) | m);
	} else {
		q[j + 4] = (uint8_t)((sc & 0xF) | (m & 0xF) << 4);
		q[j - 4] |= (uint8_t)((sc >> 4) << 6);
		q[j] |= (uint8_t)((m >> 4) << 6);
	}
}

/* quantize_row_q4_K_ref: each sub-block of 32 fitted (weights |x| plus its
 * RMS, as there), its scale and min quantized to 6 bits against
 * d = max scale / 63 and dmin = max min / 63 (fp16), then the 4-bit
 * levels recomputed against the rounded scales. */
void shmrt_quantize_q4_k(const float *x, void *out)
{
	struct shmrt_block_q4_k *b = out;
	float scales[8], mins[8], w[SHMRT_QK], max_scale = 0, max_min = 0;
	uint8_t l[SHMRT_QK_K];
	for (int j = 0; j < 8; j++) {
		const float *xs = x + SHMRT_QK * j;
		float sum_x2 = 0;
		for (int i = 0; i < SHMRT_QK; i++)
			sum_x2 += xs[i] * xs[i];
		float av = sqrtf(sum_x2 / SHMRT_QK);
		for (int i = 0; i < SHMRT_QK; i++)
			w[i] = av + fabsf(xs[i]);
		struct fit f = {.n = SHMRT_QK, .nmax = 15, .x = xs, .w = w};
		scales[j] = fit_scale_min(&f, l + SHMRT_QK * j, &mins[j]);
		max_scale = fmaxf(max_scale, scales[j]);
		max_min = fmaxf(max_min, mins[j]);
	}
	float inv_scale = max_scale > 0 ? 63 / max_scale : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
	memset(b->scales, 0, sizeof(b->scales));
	for (int j = 0; j < 8; j++)
		put_scale_min(b->scales, j, clamp(nearest(inv_scale * scales[j]), 0, 63),
			      clamp(nearest(inv_min * mins[j]), 0, 63));
	b->d = shmrt_f32_to_f16(max_scale / 63);
	b->dmin = shmrt_f32_to_f16(max_min / 63);
	for (int j = 0; j < 8; j++) {
		int sc, m;
		shmrt_q4k_scale_min(j, b->scales, &sc, &m);
		float d = shmrt_f16_to_f32(b->d) * (float)sc, dm = shmrt_f16_to_f32(b->dmin) * (float)m;
		for (int i = 0; i < SHMRT_QK; i++)
			l[SHMRT_QK * j + i] = d != 0 ? (uint8_t)clamp(nearest((x[SHMRT_QK * j + i] + dm) / d), 0, 15) : 0;
	}
	for (int j = 0; j < 4; j++)
		for (int i = 0; i < SHMRT_QK; i++)
			b->qs[SHMRT_QK * j + i] = (uint8_t)(l[64 * j + i] | l[64 * j + 32 + i] << 4);
}

bool shmrt_quantize_supported(enum shmrt_dtype dt)
{
	return dt == SHMRT_Q8_0 || dt == SHMRT_Q4_0 || dt == SHMRT_Q4_K;
}

bool shmrt_quantize_row_type(enum shmrt_dtype want, int64_t cols, enum shmrt_dtype *out)
{
	*out = cols % shmrt_dtype_block(want) ? SHMRT_Q8_0 : want;
	return cols > 0 && cols % shmrt_dtype_block(*out) == 0;
}

int shmrt_quantize_row(const float *x, int64_t n, enum shmrt_dtype dt, void *out)
{
	if (!shmrt_quantize_supported(dt))
		return shmrt_fail(EINVAL, "cannot quantize into %s (q8_0, q4_0, q4_k)", shmrt_dtype_name(dt));
	int bs = shmrt_dtype_block(dt);
	size_t bb = shmrt_dtype_block_bytes(dt);
	if (n < 0 || n % bs)
		return shmrt_fail(EINVAL, "a row of %lld elements is not whole blocks of %d (%s)", (long long)n, bs,
				  shmrt_dtype_name(dt));
	for (int64_t i = 0; i < n / bs; i++) {
		uint8_t *b = (uint8_t *)out + (size_t)i * bb;
		if (dt == SHMRT_Q8_0)
			shmrt_quantize_q8_0(x + i * bs, b);
		else if (dt == SHMRT_Q4_0)
			shmrt_quantize_q4_0(x + i * bs, b);
		else
			shmrt_quantize_q4_k(x + i * bs, b);
	}
	return 0;
}
