/* Internal: the decoder, turning token strings back into bytes: ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse and Strip, alone or in a Sequence.
 * Each token decodes on its own (so a stream can decode one at a time); the
 * few rules that look across tokens (the first token, leading spaces, the
 * space HF puts between tokens when there is no decoder) live in
 * tok_decode_state. Broken UTF-8 is left to the caller (utf8.h). */
#ifndef SHMRT_TOK_DECODER_H
#define SHMRT_TOK_DECODER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "json_read.h"

struct tok_decoder_replace {
	char *from, *to;
	size_t from_n, to_n;
	bool metaspace;       /* Metaspace's rule: decodes to nothing in the first token */
};

struct tok_decoder {
	bool byte_level;      /* token strings spell bytes (byte_level.h) */
	bool byte_fallback;   /* <0xNN> tokens are that byte */
	bool join_space;      /* no decoder in the file: HF joins tokens with ' ' */
	struct tok_decoder_replace *replace;
	size_t replace_n;
	bool meta_first;      /* a Metaspace rule that drops its character in the first token */
	char strip[8];        /* Strip: up to strip_start leading copies of this */
	size_t strip_n;
	unsigned strip_start;
	bool strip_each;      /* Strip before any Fuse acts on every token */
};

struct tok_decode_state {
	size_t emitted;       /* tokens decoded so far */
	unsigned strip_left;  /* leading strip characters still to remove */
};

/* Reads j (null: no decoder, tokens joined by spaces). */
int tok_decoder_parse(json_t *j, struct tok_json_at at, struct tok_decoder *d);

/* The decoder for raw byte tokens (tiktoken): each token is its bytes. */
void tok_decoder_raw(struct tok_decoder *d);

/* Appends the bytes of token string s[0..n); first: it is the first token. */
int tok_decoder_piece(const struct tok_decoder *d, const char *s, size_t n, bool first, struct tok_buf *out);

/* With a ByteFallback step, the byte a token string <0xNN> stands for;
 * else -1. */
int tok_decoder_byte(const struct tok_decoder *d, const char *s, size_t n);

/* True if the first token decodes differently (so it is not precomputed). */
bool tok_decoder_first_differs(const struct tok_decoder *d);

void tok_decode_begin(const struct tok_decoder *d, struct tok_decode_state *st);

/* Appends a decoded token's bytes, applying the rules across tokens. */
int tok_decoder_emit(const struct tok_decoder *d, struct tok_decode_state *st, const char *piece, size_t n,
		     struct tok_buf *out);

void tok_decoder_free(struct tok_decoder *d);

#endif
