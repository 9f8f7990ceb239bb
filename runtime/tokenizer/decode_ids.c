/* Decoding ids to text, one id at a time (tokenizer_impl.h), and
 * shmrt_tokenizer_decode on top of it. HF's decode is the reference: the
 * special tokens are filtered out first (when asked), then the decoder
 * turns the token strings into text; each token's bytes are precomputed
 * (tokenizer.c), so what is left here are the rules across tokens: the
 * first token, leading strips, and ByteFallback's runs of byte tokens. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fail.h"
#include "shmrt/tokenizer.h"
#include "tokenizer_impl.h"
#include "utf8.h"

void tok_decoding_begin(const struct shmrt_tokenizer *tok, struct tok_decoding *d, unsigned flags)
{
	tok_decode_begin(&tok->dec, &d->st);
	d->tokens = 0;
	d->skip_special = flags & SHMRT_DECODE_SKIP_SPECIAL;
	d->byte_runs = (flags & SHMRT_DECODE_LOSSY) && tok->dec.byte_fallback;
	d->run.n = 0;
}

/* A run of byte tokens ends: HF's ByteFallback keeps its bytes if they are
 * UTF-8 as a whole, else gives one U+FFFD per token (not per broken
 * sequence, as a lossy conversion of the bytes would). */
static int end_run(const struct shmrt_tokenizer *tok, struct tok_decoding *d, struct tok_buf *out)
{
	static const char replacement[] = "\xEF\xBF\xBD";
	if (!d->run.n)
		return 0;
	const uint8_t *p = (const uint8_t *)d->run.p;
	size_t i = 0;
	uint32_t cp;
	for (int k; i < d->run.n && (k = tok_utf8_scan(p + i, d->run.n - i, &cp)) > 0;)
		i += (size_t)k;
	int rc = 0;
	if (i == d->run.n) {
		rc = tok_decoder_emit(&tok->dec, &d->st, d->run.p, d->run.n, out);
	} else {
		/* Each token one U+FFFD: nothing in it to strip. */
		for (size_t k = 0; k < d->run.n && rc == 0; k++)
			rc = tok_decoder_emit(&tok->dec, &d->st, replacement, 3, out);
	}
	d->run.n = 0;
	return rc;
}

int tok_decoding_push(const struct shmrt_tokenizer *tok, struct tok_decoding *d, int32_t id, struct tok_buf *out)
{
	size_t len;
	const char *piece = tok_vocab_get(&tok->pieces, id, &len);
	if (!piece)
		return shmrt_fail(EINVAL, "%s: token id %d is not in the vocabulary (%d ids)", tok->path, id,
				  tok->vocab_size);
	if (d->skip_special && tok->special[id])
		return 0;
	bool first = d->tokens++ == 0;
	if (d->byte_runs && tok->byte_token[id])
		return tok_buf_append(&d->run, piece, len);
	int rc = end_run(tok, d, out);
	if (rc == 0 && first && tok_decoder_first_differs(&tok->dec)) {
		struct tok_buf first_piece = {0};
		const char *s = tok_decode_string(tok, id, &len);
		rc = tok_decoder_piece(&tok->dec, s, len, true, &first_piece);
		if (rc == 0)
			rc = tok_decoder_emit(&tok->dec, &d->st, first_piece.p ? first_piece.p : "", first_piece.n, out);
		tok_buf_free(&first_piece);
		return rc;
	}
	return rc < 0 ? rc : tok_decoder_emit(&tok->dec, &d->st, piece, len, out);
}

int tok_decoding_end(const struct shmrt_tokenizer *tok, struct tok_decoding *d, struct tok_buf *out)
{
	return end_run(tok, d, out);
}

void tok_decoding_free(struct tok_decoding *d)
{
	tok_buf_free(&d->run);
}

int shmrt_tokenizer_decode(const struct shmrt_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
			   char *out, size_t cap)
{
	shmrt_clear_error();
	if (!tok || (!ids && n) || (!out && cap))
		return shmrt_fail(EINVAL, "shmrt_tokenizer_decode: a tokenizer, the ids and room for the text are required");
	struct tok_buf raw = {0}, lossy = {0};
	struct tok_decoding d = {0};
	tok_decoding_begin(tok, &d, flags);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = tok_decoding_push(tok, &d, ids[i], &raw);
	if (rc == 0)
		rc = tok_decoding_end(tok, &d, &raw);
	size_t used;
	if (rc == 0 && (flags & SHMRT_DECODE_LOSSY))
		rc = tok_utf8_lossy(raw.p ? raw.p : "", raw.n, true, &lossy, &used);
	const struct tok_buf *text = flags & SHMRT_DECODE_LOSSY ? &lossy : &raw;
	if (rc == 0 && text->n > INT_MAX)
		rc = shmrt_fail(EOVERFLOW, "shmrt_tokenizer_decode: %zu bytes do not fit an int", text->n);
	if (rc == 0 && cap) {
		size_t k = text->n < cap ? text->n : cap - 1;
		if (k)
			memcpy(out, text->p, k);
		out[k] = '\0';
	}
	if (rc == 0)
		rc = (int)text->n;
	tok_decoding_free(&d);
	tok_buf_free(&raw);
	tok_buf_free(&lossy);
	return rc;
}
