/* libFuzzer target: an arena file's bytes, as attach sees them. The header
 * check must refuse garbage cleanly, and every region of a header it accepts
 * must lie inside the buffer: we read its first and last byte, which
 * AddressSanitizer turns into a crash if the check let something through.
 *
 * Seeds (tests/corpus/arena/, checked by test_arena): real arena files with
 * four regions (valid-4regions) and none (valid-empty), and broken copies of
 * the first: bad magic and ABI version, a region outside the file, two
 * overlapping, an unterminated name, the file cut at 8 KiB and at 128 bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmrt_arena_layout l;
	if (shmrt_arena_header_check(data, size, &l) != 0)
		return 0;
	struct shmrt_arena_info info;
	shmrt_arena_info_fill(&l, data, &info);
	volatile uint8_t sink = 0;
	for (unsigned i = 0; i < l.n_regions; i++) {
		int k = shmrt_arena_layout_find(&l, l.regions[i].name);
		if (k != (int)i)
			abort(); /* names are unique in an accepted table */
		const struct shmrt_arena_region *r = &l.regions[k];
		sink ^= data[r->offset] ^ data[r->offset + r->size - 1];
	}
	(void)sink;
	return 0;
}
