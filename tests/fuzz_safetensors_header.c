/* libFuzzer target: a safetensors file's bytes, as the header parser sees
 * them (runtime/loader/safetensors.c, shmrt_st_parse). It must refuse garbage
 * cleanly, and every tensor of a header it accepts must lie inside the data
 * section, sorted and apart: we read each tensor's first and last byte,
 * which AddressSanitizer turns into a crash if the check let one through.
 *
 * Seeds (tests/corpus/safetensors/, checked by test_safetensors): valid
 * files (two BF16 tensors with __metadata__; an empty header; a scalar, an
 * empty tensor and a gap), and broken ones: bad JSON, a header length past
 * the end and an absurd one, offsets that disagree with the shape, overlap,
 * an I8 tensor, the file cut inside the data, 4 bytes, a shape that
 * overflows, __metadata__ with a number. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmrt_st_header h;
	if (shmrt_st_parse(data, size, size, "fuzz", &h) != 0)
		return 0;
	volatile uint8_t sink = 0;
	uint64_t end = h.data_start;
	for (size_t i = 0; i < h.n; i++) {
		const struct shmrt_tensor_info *t = &h.tensors[i];
		if (t->offset < h.data_start || t->offset + t->size > size || t->offset + t->size < t->offset)
			abort(); /* outside the data section */
		if (!t->size)
			continue;
		if (t->offset < end)
			abort(); /* overlaps an earlier tensor */
		end = t->offset + t->size;
		sink ^= data[t->offset] ^ data[end - 1];
	}
	(void)sink;
	shmrt_st_header_free(&h);
	return 0;
}
