/* libFuzzer target: a tiktoken rank file (runtime/tokenizer/tiktoken.c). The first
 * byte picks the pattern (gpt2, cl100k, o200k, llama3); the rest is the
 * file. Garbage must be refused with an error; a file that loads ranks
 * every byte, so any text, special-token look-alikes and bytes that are not
 * UTF-8 included, must come back from decode(encode(text)) byte for byte,
 * with the other promises of fuzz_tokenizer.h.
 *
 * Seeds (tests/corpus/tokenizer_tiktoken/): the test rank file with each
 * pattern, a small complete one, CRLF lines, and broken ones (bad base64,
 * a rank given twice, a token given twice, a byte without a rank, a rank
 * past the limit, a line without a rank). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_tokenizer.h"
#include "tokenizer_impl.h"
#include "array_size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The texts, with their lengths (one holds a NUL). */
#define T(s) {s, sizeof(s) - 1}
static const struct {
	const char *s;
	size_t n;
} texts[] = {
	T("Hello, world! It's 2024-01-01; we'll see.  \n\n\tx   "),
	T("你好，世界！ 😀👍🏽 1234567 I'M"),
	T("<|begin_of_text|>Hi<|eot_id|><|endoftext|><|reserved_special_token_250|>"),
	T("bad \xFF\xFE utf \xE2\x82 8 \xF0\x9F\x98 \xC0\xAF \xED\xA0\x80\n\r\n \x00"),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const patterns[] = {"gpt2", "cl100k", "o200k", "llama3"};
	if (size == 0)
		return 0;
	struct shmrt_tokenizer *tok;
	/* The file proper is data + 1: not JSON, or the loader says so. */
	if (tok_load_buffer("fuzz.tiktoken", (const char *)data + 1, size - 1, patterns[data[0] % 4], &tok) < 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		fuzz_tok_check(tok, texts[i].s, texts[i].n, 0, true);
		fuzz_tok_check(tok, texts[i].s, texts[i].n, SHMRT_ENCODE_SPECIAL_AS_TEXT, true);
	}
	fuzz_tok_check(tok, (const char *)data, size < 512 ? size : 512, 0, true);
	shmrt_tokenizer_free(tok);
	return 0;
}
