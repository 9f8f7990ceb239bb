/* Internal: the tokenizer handle and the loaders that fill it
 * (tokenizer_json.c, tiktoken.c, gguf_vocab.c); tokenizer.c runs the
 * pipeline. */
#ifndef SHMRT_TOKENIZER_IMPL_H
#define SHMRT_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "added_tokens.h"
#include "bpe.h"
#include "normalizer.h"
#include "pretokenizer.h"
#include "buf.h"
#include "decoder.h"
#include "vocab.h"

struct shmrt_gguf;

/* How an id decodes (shmrt_tokenizer.piece_kind): through the decoder (as
 * HF does, also for added tokens), as its token's text, or to nothing (the
 * last two: llama.cpp's token_to_piece, for GGUF files). */
enum tok_piece_kind { TOK_PIECE_DECODER, TOK_PIECE_VERBATIM, TOK_PIECE_NONE };

/* Ids beyond this are a malformed file, not a reason to allocate gigabytes. */
#define TOK_MAX_VOCAB (1 << 24)

struct shmrt_tokenizer {
	char *path;
	struct tok_bpe bpe;
	struct tok_added_set added;
	struct tok_normalizer *norm;   /* NULL: none */
	struct tok_pretok *pretok;
	struct tok_decoder dec;
	struct tok_ids prefix, suffix; /* SHMRT_ENCODE_ADD_SPECIAL's tokens */
	uint8_t *piece_kind;           /* per id of bpe.vocab, enum tok_piece_kind; NULL: all DECODER */
	char *chat_template;           /* NUL-terminated; NULL: none in the file */
	int32_t eos_id;                /* the EOS the file names (GGUF), -1 if none */
	size_t chat_template_n;

	/* Filled by tokenizer.c once a loader is done. */
	int32_t vocab_size;
	uint8_t *special;              /* per id: 1 if a special token */
	uint8_t *byte_token;           /* per id: 1 if ByteFallback decodes it (<0xNN>) */
	int32_t *added_at;             /* per id: its index in added.v, or -1 */
	struct tok_vocab pieces;       /* per id: the bytes it decodes to */

	/* Encode scratch. */
	struct tok_spans raw_spans, norm_spans;
	struct tok_ids ids;
};

/* shmrt_tokenizer_load of a file's contents text[0..n) (no NUL needed;
 * name stands for the file in messages). */
int tok_load_buffer(const char *name, const char *text, size_t n, const char *pattern, struct shmrt_tokenizer **out);

/* Fill tok (path set, the rest zero) from a file's contents. */
int tok_load_json(struct shmrt_tokenizer *tok, const char *text, size_t n);
int tok_load_tiktoken(struct shmrt_tokenizer *tok, const char *text, size_t n, const char *pattern);
/* From a GGUF file's tokenizer.ggml.* metadata (gguf_vocab.c); the strings
 * are copied, g may be closed after. */
int tok_load_gguf(struct shmrt_tokenizer *tok, const struct shmrt_gguf *g);

/* The string HF's decoder gets for id (NULL if id has no token). */
const char *tok_decode_string(const struct shmrt_tokenizer *tok, int32_t id, size_t *len);

/* Decoding one sequence of ids, one at a time (decode_ids.c), as HF's
 * decode does it; shmrt_tokenizer_decode and the stream share it. */
struct tok_decoding {
	struct tok_decode_state st;
	size_t tokens;       /* tokens decoded so far (skipped ones not counted) */
	bool skip_special;
	/* Lossy, with a ByteFallback decoder: HF decodes byte tokens in a row
	 * as one run, kept if it is UTF-8 and otherwise one U+FFFD per token;
	 * run holds its bytes until a token that is not a byte ends it. */
	bool byte_runs;
	struct tok_buf run;
};

/* flags: SHMRT_DECODE_SKIP_SPECIAL and SHMRT_DECODE_LOSSY. */
void tok_decoding_begin(const struct shmrt_tokenizer *tok, struct tok_decoding *d, unsigned flags);

/* Appends to out what id adds to the text (maybe nothing yet), or -EINVAL
 * for an id without a token. */
int tok_decoding_push(const struct shmrt_tokenizer *tok, struct tok_decoding *d, int32_t id, struct tok_buf *out);

/* Appends what is held back at the end of the sequence (a byte run). */
int tok_decoding_end(const struct shmrt_tokenizer *tok, struct tok_decoding *d, struct tok_buf *out);

void tok_decoding_free(struct tok_decoding *d);

#endif
