/* Internal: the pre-tokenizer, which cuts normalized text into the pieces
 * that BPE merges within: Split (a regex, five delimiter behaviours),
 * ByteLevel (GPT-2's regex and prefix space), Metaspace (SentencePiece's
 * "▁"), Digits, Punctuation, Whitespace, WhitespaceSplit, CharDelimiterSplit,
 * BertPreTokenizer, alone or in a Sequence. */
#ifndef SHMRT_PRETOKENIZER_H
#define SHMRT_PRETOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "json_read.h"

struct tok_piece {
	size_t off, len;  /* in tok_pieces.text */
	bool at_start;    /* begins where the whole input begins */
};

struct tok_pieces {
	struct tok_buf text;
	struct tok_piece *v;
	size_t n, cap;
};

struct tok_pretok;

/* Builds the pre-tokenizer described by j (null: the text is one piece). */
int tok_pretok_parse(json_t *j, struct tok_json_at at, struct tok_pretok **out);

/* A pre-tokenizer that splits on one regex, isolating each match, as
 * tiktoken does; '$' means the end of the text there. */
int tok_pretok_regex(const char *pattern, const char *what, struct tok_pretok **out);

/* Splits with each regex in turn, every match and the text between
 * matches a piece (llama.cpp's unicode_regex_split; '$' means the end of
 * the text); byte_level: the model then sees bytes, as after a ByteLevel
 * step without its regex. */
int tok_pretok_regexes(const char *const *patterns, size_t n, bool byte_level, const char *what,
		       struct tok_pretok **out);

/* True if it holds a ByteLevel step: the model then sees bytes. */
bool tok_pretok_byte_level(const struct tok_pretok *pt);

/* Cuts s[0..n); at_start says s begins the input. *out is valid until the
 * next call. Empty pieces are dropped. */
int tok_pretok_apply(struct tok_pretok *pt, const char *s, size_t n, bool at_start, const struct tok_pieces **out);

void tok_pretok_free(struct tok_pretok *pt);

#endif
