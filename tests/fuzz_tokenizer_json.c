/* libFuzzer target: a tokenizer.json's bytes, as the loader sees them
 * (runtime/tokenizer/tokenizer_json.c and the normalizer, pre-tokenizer, decoder and
 * added-token parsers behind it). Garbage must be refused with an error;
 * a file that loads must then encode and decode without a crash and keep
 * fuzz_tokenizer.h's promises, on fixed texts (spaces, digits, CJK, emoji,
 * special-token look-alikes, bytes that are not UTF-8) and on the input's
 * own first bytes. Every id of a small vocabulary is streamed too.
 *
 * Seeds (tests/corpus/tokenizer_json/): trained files (byte-level GPT-2
 * style with added tokens, Llama 2 style byte fallback), small hand-written
 * ones for each normalizer, pre-tokenizer, decoder and post-processor we
 * read, and broken ones (bad JSON, a merge of unknown tokens, bad ids,
 * unsupported types, a regex that does not compile). A GGUF file's bytes
 * go to its vocabulary loader (gguf_vocab.c): the gguf-* seeds (copies of
 * tests/fixtures/tokenizer_gguf's) and bad-gguf-* ones. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_tokenizer.h"
#include "tokenizer_impl.h"
#include "array_size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The texts, with their lengths. */
#define T(s) {s, sizeof(s) - 1}
static const struct {
	const char *s;
	size_t n;
} texts[] = {
	T("Hello, world! It's 2024-01-01; we'll see.  \n\n\tx"),
	T("  leading and trailing  "),
	T("123456789 3.14 ½ Ⅻ"),
	T("你好，世界！ 東京 안녕하세요 привет"),
	T("😀👍🏽 👨‍👩‍👧‍👦 e\xCC\x81 \xEF\xAC\x81"),
	T("<s>a</s><unk><|endoftext|><mask> [name] New York xyz ▁ Ġ <0x41>"),
	T("bad \xFF\xFE utf \xE2\x82 8 \xF0\x9F\x98 \xC0\xAF \xED\xA0\x80"),
	T(""),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmrt_tokenizer *tok;
	if (tok_load_buffer("fuzz.json", (const char *)data, size, NULL, &tok) < 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		fuzz_tok_check(tok, texts[i].s, texts[i].n, 0, false);
		fuzz_tok_check(tok, texts[i].s, texts[i].n, SHMRT_ENCODE_ADD_SPECIAL | SHMRT_ENCODE_SPECIAL_AS_TEXT,
			       false);
	}
	fuzz_tok_check(tok, (const char *)data, size < 256 ? size : 256, 0, false);
	/* Every id (that has a token), in order, through the stream. */
	int32_t n = shmrt_tokenizer_vocab_size(tok), k = 0;
	int32_t *ids = malloc(((size_t)(n < 4096 ? n : 4096) + 1) * sizeof(*ids));
	for (int32_t id = 0; ids && id < n && k < 4096; id++)
		if (shmrt_tokenizer_token(tok, id, NULL))
			ids[k++] = id;
	if (ids)
		fuzz_tok_stream(tok, ids, (size_t)k, 0);
	free(ids);
	shmrt_tokenizer_free(tok);
	return 0;
}
