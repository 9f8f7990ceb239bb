/* libFuzzer target: a GGUF file's bytes, as the header parser sees them
 * (runtime/core/gguf.c, shmrt_gguf_parse). It must refuse garbage cleanly;
 * of a header it accepts, every string of every key (and every element of
 * string arrays), every numeric array element and each tensor's first and
 * last byte are read, which AddressSanitizer turns into a crash if a check
 * let one outside the buffer.
 *
 * Seeds (tests/corpus/gguf/, written by tests/gguf/make_corpus.py): small
 * valid files (a llama model of F32 and Q8_0 tensors, string and number
 * arrays) and broken ones (truncations, counts and lengths past the end,
 * overlapping and unaligned tensors, unknown types). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t touch_kv(const struct shmrt_gguf_kv *kv)
{
	uint8_t x = (uint8_t)strlen(kv->key);
	if (kv->type == SHMRT_GGUF_STRING && kv->len)
		x ^= (uint8_t)kv->str[0] ^ (uint8_t)kv->str[kv->len - 1];
	if (kv->type != SHMRT_GGUF_ARRAY)
		return x;
	for (uint64_t i = 0; i < kv->n; i++) {
		if (kv->elem_type == SHMRT_GGUF_STRING) {
			const char *s;
			size_t len;
			shmrt_gguf_array_str(kv, i, &s, &len);
			if (len)
				x ^= (uint8_t)s[0] ^ (uint8_t)s[len - 1];
		} else if (kv->elem_type == SHMRT_GGUF_F32 || kv->elem_type == SHMRT_GGUF_F64) {
			x ^= (uint8_t)(shmrt_gguf_array_float(kv, i) > 0);
		} else if (kv->elem_type != SHMRT_GGUF_BOOL) {
			x ^= (uint8_t)shmrt_gguf_array_int(kv, i);
		}
	}
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmrt_gguf *g;
	if (shmrt_gguf_parse(data, size, "fuzz", false, &g) != 0)
		return 0;
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < shmrt_gguf_kv_count(g); i++)
		sink ^= touch_kv(shmrt_gguf_kv_at(g, i));
	for (size_t i = 0; i < shmrt_gguf_tensor_count(g); i++) {
		const struct shmrt_gguf_tensor *t = shmrt_gguf_tensor_at(g, i);
		if (t->offset > size || t->size > size - t->offset)
			abort(); /* outside the file */
		if (t->size)
			sink ^= data[t->offset] ^ data[t->offset + t->size - 1];
	}
	(void)sink;
	shmrt_gguf_close(g);
	return 0;
}
