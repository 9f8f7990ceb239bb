/* Internal: a table of byte strings indexed by token id, with a hash index
 * from string to id (vocabularies, and the bytes each token decodes to). */
#ifndef SHMRT_TOK_VOCAB_H
#define SHMRT_TOK_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct tok_vocab {
	int32_t n;            /* ids 0..n-1 */
	uint32_t *off, *len;  /* where id's string lies in text; off UINT32_MAX: no token */
	struct tok_buf text;  /* the strings, each followed by a NUL */
	int32_t *slots;       /* hash index: id + 1, 0 when empty */
	size_t mask;
};

uint64_t tok_hash(const void *p, size_t n);

/* A table of n ids, none set yet. */
int tok_vocab_init(struct tok_vocab *v, int32_t n);

/* Sets id's string (an id already set keeps its first string). */
int tok_vocab_set(struct tok_vocab *v, int32_t id, const void *s, size_t len);

/* Builds the string-to-id index; call once, after the last set. When two ids
 * have the same string, the lower id is found. */
int tok_vocab_index(struct tok_vocab *v);

/* The id of string s, or -1. */
int32_t tok_vocab_find(const struct tok_vocab *v, const void *s, size_t len);

/* id's string (NUL-terminated) and its length, or NULL if id has none. */
const char *tok_vocab_get(const struct tok_vocab *v, int32_t id, size_t *len);

void tok_vocab_free(struct tok_vocab *v);

#endif
