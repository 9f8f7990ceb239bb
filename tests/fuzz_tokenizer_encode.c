/* libFuzzer target: arbitrary bytes encoded by the test tokenizers
 * (tests/fixtures/tokenizer: GPT-2, Llama 3, Qwen2 and Llama 2 style
 * tokenizer.json files, and the rank file with each tiktoken pattern). The
 * first byte picks the tokenizer and the flags; the rest is the text. Every
 * promise of fuzz_tokenizer.h must hold; decode(encode(text)) gives the
 * text back byte for byte where the tokenizer changes nothing (Llama 3's
 * tokenizer.json and tiktoken: byte-level, no normalizer, no stripping).
 *
 * Seeds (tests/corpus/tokenizer_encode/): the hard strings of the fixtures
 * (whitespace runs, numbers, contractions, emoji, CJK, special tokens,
 * bytes that are not UTF-8) for several tokenizers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tokenizer.h"
#include "array_size.h"

#ifndef TOKENIZER_FIXTURES
#error "TOKENIZER_FIXTURES: the directory of the test tokenizers"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *file, *pattern;
	bool exact;
} tokenizers[] = {
	{"gpt2.json", NULL, false}, {"llama3.json", NULL, true}, {"qwen2.json", NULL, false},
	{"llama2.json", NULL, false}, {"metaspace.json", NULL, false}, {"ranks.tiktoken", "gpt2", true},
	{"ranks.tiktoken", "cl100k", true}, {"ranks.tiktoken", "o200k", true}, {"ranks.tiktoken", "llama3", true},
};
#define N_TOKENIZERS (ARRAY_SIZE(tokenizers))

static struct shmrt_tokenizer *loaded[N_TOKENIZERS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t which = (data[0] & 0x0F) % N_TOKENIZERS;
	unsigned flags = (data[0] & 0x10 ? SHMRT_ENCODE_ADD_SPECIAL : 0) |
			 (data[0] & 0x20 ? SHMRT_ENCODE_SPECIAL_AS_TEXT : 0);
	if (!loaded[which]) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", TOKENIZER_FIXTURES, tokenizers[which].file);
		if (shmrt_tokenizer_load(path, tokenizers[which].pattern, &loaded[which]) < 0)
			abort(); /* the fixtures are there and valid */
	}
	fuzz_tok_check(loaded[which], (const char *)data + 1, size - 1, flags,
		       tokenizers[which].exact && !(flags & SHMRT_ENCODE_ADD_SPECIAL));
	return 0;
}
