/* What the tokenizer fuzz targets check on a tokenizer that loaded: text
 * encodes into ids of the vocabulary, those ids decode (exactly, and to
 * valid UTF-8 when lossy), a stream fed one id at a time gives valid UTF-8
 * chunks adding up to the lossy decode, and, where the tokenizer promises
 * it, decode(encode(text)) is text byte for byte. A broken promise aborts,
 * which libFuzzer reports as a crash. */
#ifndef SHMRT_TESTS_FUZZ_TOKENIZER_H
#define SHMRT_TESTS_FUZZ_TOKENIZER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/tokenizer.h"
#include "utf8_check.h"

/* Decodes ids with flags into a new buffer (*n bytes); aborts on failure. */
static char *fuzz_tok_decode(const struct shmrt_tokenizer *tok, const int32_t *ids, size_t n_ids, unsigned flags,
			     size_t *n)
{
	int len = shmrt_tokenizer_decode(tok, ids, n_ids, flags, NULL, 0);
	if (len < 0)
		abort(); /* every id encode gives must decode */
	char *s = malloc((size_t)len + 1);
	if (!s || shmrt_tokenizer_decode(tok, ids, n_ids, flags, s, (size_t)len + 1) != len)
		abort();
	*n = (size_t)len;
	return s;
}

static void fuzz_tok_stream(const struct shmrt_tokenizer *tok, const int32_t *ids, size_t n_ids, unsigned flags)
{
	size_t want_n;
	char *want = fuzz_tok_decode(tok, ids, n_ids, flags | SHMRT_DECODE_LOSSY, &want_n);
	if (!valid_utf8((const unsigned char *)want, want_n))
		abort();
	struct shmrt_detok_stream *s;
	if (shmrt_detok_stream_new(tok, flags, &s) < 0)
		abort();
	size_t got = 0;
	for (size_t i = 0; i <= n_ids; i++) {
		const char *chunk;
		int rc = i < n_ids ? shmrt_detok_stream_push(s, ids[i], &chunk) : shmrt_detok_stream_flush(s, &chunk);
		if (rc < 0 || got + (size_t)rc > want_n || memcmp(want + got, chunk, (size_t)rc) ||
		    !valid_utf8((const unsigned char *)chunk, (size_t)rc))
			abort();
		got += (size_t)rc;
	}
	if (got != want_n)
		abort();
	shmrt_detok_stream_free(s);
	free(want);
}

/* exact: decode(encode(text)) must give text back. */
static void fuzz_tok_check(struct shmrt_tokenizer *tok, const char *text, size_t n, unsigned flags, bool exact)
{
	int count = shmrt_tokenizer_encode(tok, text, n, flags, NULL, 0);
	if (count < 0)
		return; /* refused (a regex over its match limit): an error, not a crash */
	int32_t *ids = malloc(((size_t)count + 1) * sizeof(*ids));
	if (!ids || shmrt_tokenizer_encode(tok, text, n, flags, ids, (size_t)count) != count)
		abort();
	for (int i = 0; i < count; i++)
		if (ids[i] < 0 || ids[i] >= shmrt_tokenizer_vocab_size(tok))
			abort();
	size_t out_n;
	char *out = fuzz_tok_decode(tok, ids, (size_t)count, 0, &out_n);
	if (exact && (out_n != n || memcmp(out, text, n)))
		abort();
	free(out);
	fuzz_tok_stream(tok, ids, (size_t)count, 0);
	fuzz_tok_stream(tok, ids, (size_t)count, SHMRT_DECODE_SKIP_SPECIAL);
	free(ids);
}

#endif
