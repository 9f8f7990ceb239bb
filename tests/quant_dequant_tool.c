/* quant_dequant_tool TYPE IN OUT: the blocks of format TYPE (q8_0, q4_0,
 * q4_1, q4_k, q5_k, q6_k) in file IN, dequantized with quant_blocks.h's
 * reference formulas, written to OUT as little-endian fp32: how
 * tests/quant_gguf_check.py compares them with the gguf package's own
 * dequantization. */
#include <stdio.h>
#include <stdlib.h>

#include "shmrt/dtype.h"
#include "quant_blocks.h"

static int fail(const char *what)
{
	fprintf(stderr, "quant_dequant_tool: %s\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	enum shmrt_dtype dt;
	if (argc != 4 || shmrt_dtype_from_name(argv[1], &dt) < 0 || !shmrt_dtype_is_quantized(dt))
		return fail("usage: quant_dequant_tool q8_0|q4_0|q4_1|q4_k|q5_k|q6_k IN OUT");
	FILE *in = fopen(argv[2], "rb");
	if (!in)
		return fail("cannot open IN");
	size_t bb = shmrt_dtype_block_bytes(dt), n = 0, cap = 0;
	unsigned char *data = NULL;
	for (;;) {
		if (n == cap && !(data = realloc(data, cap = cap ? 2 * cap : 1 << 16)))
			return fail("out of memory");
		size_t got = fread(data + n, 1, cap - n, in);
		n += got;
		if (!got)
			break;
	}
	fclose(in);
	if (n % bb)
		return fail("IN is not a whole number of blocks");
	int64_t elems = (int64_t)(n / bb) * shmrt_dtype_block(dt);
	float *out = malloc(sizeof(float) * (size_t)elems + 1);
	if (!out)
		return fail("out of memory");
	shmrt_dequant_row(data, dt, elems, out);
	FILE *f = fopen(argv[3], "wb");
	if (!f || fwrite(out, sizeof(float), (size_t)elems, f) != (size_t)elems || fclose(f))
		return fail("cannot write OUT");
	free(out);
	free(data);
	return 0;
}
