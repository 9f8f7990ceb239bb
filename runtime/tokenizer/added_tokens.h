/* Internal: added tokens (special tokens such as <|endoftext|> and tokens a
 * user added), found in the text before it is normalized and split, with HF's
 * flags: single_word, lstrip, rstrip, normalized, special. */
#ifndef SHMRT_ADDED_TOKENS_H
#define SHMRT_ADDED_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "normalizer.h"

struct tok_added {
	char *content;          /* as in the file */
	size_t len;
	char *match;            /* what is searched for: content, normalized if .normalized */
	size_t match_n;
	int32_t id;
	bool single_word, lstrip, rstrip, normalized, special;
};

struct tok_added_set {
	struct tok_added *v;
	size_t n;
	/* For each pass (0: raw text, 1: normalized text), the tokens of that
	 * pass by first byte, longest first: order[first[b] .. first[b+1]). */
	uint32_t first[2][257];
	uint32_t *order[2];
	int16_t only_first[2];  /* the one first byte of a pass's tokens, or -1 (several, or none) */
};

/* A stretch of text, or an added token found there (id >= 0). */
struct tok_span {
	size_t off, len;
	int32_t id;
};

struct tok_spans {
	struct tok_span *v;
	size_t n, cap;
};

/* Adds one token (content copied). */
int tok_added_add(struct tok_added_set *set, const struct tok_added *t);

/* Builds the search tables, once all tokens are added; normalized tokens
 * are searched for in their normalized form, as HF does. */
int tok_added_index(struct tok_added_set *set, struct tok_normalizer *nz);

/* Cuts s[0..n) into text and the added tokens of one pass (normalized or
 * raw), leftmost-longest first; with skip_special, special tokens are left
 * in the text. out is cleared first. */
int tok_added_split(const struct tok_added_set *set, bool normalized, bool skip_special, const char *s, size_t n,
		    struct tok_spans *out);

void tok_added_free(struct tok_added_set *set);

#endif
