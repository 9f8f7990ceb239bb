/* bf16 and fp16 conversions (runtime/core/dtype_conv.h, shared by all
 * backends) against definitions written here: widening must be exact
 * (checked for all 65536 fp16 and bf16 values against ldexp), narrowing
 * must give the nearest representable value, ties to the even one, inf
 * beyond the largest finite value's rounding range, NaN for NaN; checked
 * for 2^20 random fp32 bit patterns plus edge values by a binary search
 * over the sorted positive values of the narrow type. */
#include "kernel_test.h"
#include "array_size.h"

static double f16_value(uint16_t h) /* from the IEEE 754 binary16 definition */
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
	return h & 0x8000 ? -v : v;
}

static double bf16_value(uint16_t h)
{
	int e = (h >> 7) & 0xff, m = h & 0x7f;
	double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
	return h & 0x8000 ? -v : v;
}

/* Nearest of the narrow type by search over its positive values
 * 0 .. inf_bits (ordered as integers). */
static uint16_t nearest(double x, double (*value)(uint16_t), uint16_t inf_bits)
{
	uint16_t sign = signbit(x) ? 0x8000 : 0;
	x = fabs(x);
	uint16_t lo = 0, hi = inf_bits; /* value(lo) <= x < value(hi) */
	if (x >= value(inf_bits))
		return sign | inf_bits;
	while (hi - lo > 1) {
		uint16_t mid = (uint16_t)((lo + hi) / 2);
		if (value(mid) <= x)
			lo = mid;
		else
			hi = mid;
	}
	/* at hi = inf, the rounding boundary is max + half its ulp */
	double up = hi == inf_bits ? 2 * value(lo) - value(lo - 1) : value(hi);
	double dlo = x - value(lo), dhi = up - x;
	uint16_t r = dlo < dhi ? lo : dhi < dlo ? hi : (lo & 1 ? hi : lo);
	return sign | r;
}

static void check_one(float f)
{
	if (isnan(f)) {
		CHECK(isnan(f16_value(shmrt_f32_to_f16(f))) && isnan(bf16_value(shmrt_f32_to_bf16(f))),
		      "NaN did not stay NaN");
		return;
	}
	uint16_t h = shmrt_f32_to_f16(f), want_h = nearest(f, f16_value, 0x7c00);
	uint16_t b = shmrt_f32_to_bf16(f), want_b = nearest(f, bf16_value, 0x7f80);
	CHECK(h == want_h, "f32 %a -> f16 %04x, want %04x", f, h, want_h);
	CHECK(b == want_b, "f32 %a -> bf16 %04x, want %04x", f, b, want_b);
}

int main(void)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		double v16 = f16_value((uint16_t)h), vb = bf16_value((uint16_t)h);
		float g16 = shmrt_f16_to_f32((uint16_t)h), gb = shmrt_bf16_to_f32((uint16_t)h);
		CHECK((isnan(v16) && isnan(g16)) || g16 == v16, "f16 %04x -> %a, want %a", h, g16, v16);
		CHECK((isnan(vb) && isnan(gb)) || gb == vb, "bf16 %04x -> %a, want %a", h, gb, vb);
		if (!isnan(v16))
			CHECK(shmrt_f32_to_f16(g16) == h, "f16 %04x does not round-trip", h);
	}
	static const float edges[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 0x1p-24f, 0x1p-25f,
				      0x1.8p-25f, 0x1p-14f, 0x1.ffcp-15f, 3.3895314e38f, 3.3961776e38f, 3.4028235e38f,
				      INFINITY, -INFINITY, NAN, 1.00390625f, 1.01171875f, 0x1p-126f, 0x1p-149f};
	for (size_t i = 0; i < ARRAY_SIZE(edges); i++)
		check_one(edges[i]);
	for (int i = 0; i < (1 << 20); i++) {
		uint32_t bits = (uint32_t)kt_next();
		float f;
		memcpy(&f, &bits, sizeof(f));
		check_one(f);
	}
	/* halfway cases between neighbours: ties go to even */
	for (uint32_t h = 1; h < 0x7bff; h += 37)
		check_one((float)((f16_value((uint16_t)h) + f16_value((uint16_t)(h + 1))) / 2));
	for (uint32_t h = 1; h < 0x7f7f; h += 37)
		check_one((float)((bf16_value((uint16_t)h) + bf16_value((uint16_t)(h + 1))) / 2));
	return 0;
}
