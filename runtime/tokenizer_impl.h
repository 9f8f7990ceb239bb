/* Internal: the tokenizer handle and the loaders that fill it
 * (tokenizer_json.c, tiktoken.c); tokenizer.c runs the pipeline. */
#ifndef SHMRT_TOKENIZER_IMPL_H
#define SHMRT_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "added_tokens.h"
#include "bpe.h"
#include "normalizer.h"
#include "pretokenizer.h"
#include "tok_buf.h"
#include "tok_decoder.h"
#include "tok_vocab.h"

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

	/* Filled by tokenizer.c once a loader is done. */
	int32_t vocab_size;
	uint8_t *special;              /* per id: 1 if a special token */
	int32_t *added_at;             /* per id: its index in added.v, or -1 */
	struct tok_vocab pieces;       /* per id: the bytes it decodes to */

	/* Encode scratch. */
	struct tok_spans raw_spans, norm_spans;
	struct tok_ids ids;
};

/* Fill tok (path set, the rest zero) from a file's contents. */
int tok_load_json(struct shmrt_tokenizer *tok, const char *text, size_t n);
int tok_load_tiktoken(struct shmrt_tokenizer *tok, const char *text, size_t n, const char *pattern);

/* Appends the bytes id decodes to (the rules across tokens applied), or
 * nothing for a special token when skip_special. */
int tok_decode_id(const struct shmrt_tokenizer *tok, struct tok_decode_state *st, int32_t id, bool skip_special,
		  struct tok_buf *out);

#endif
