/* Internal: the BPE model. A piece of text becomes initial symbols (bytes,
 * or characters with byte fallback and <unk>), then the adjacent pair with
 * the lowest merge rank is merged, leftmost first, until no pair has a rank:
 * HF tokenizers' Word::merge_all, with a heap, and tiktoken's byte_pair_merge
 * when a rank file is turned into merges. */
#ifndef SHMRT_BPE_H
#define SHMRT_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "vocab.h"

enum tok_bpe_unit {
	TOK_BPE_BYTES,  /* initial symbols are the bytes (byte-level BPE, tiktoken) */
	TOK_BPE_CHARS,  /* initial symbols are UTF-8 characters (SentencePiece style) */
};

struct tok_bpe_merge;
struct tok_bpe_sym;
struct tok_bpe_heap;
struct tok_bpe_cache;

struct tok_bpe {
	struct tok_vocab vocab;  /* id <-> token string as the file spells it */
	struct tok_vocab keys;   /* byte-level files: id <-> the bytes it spells */
	enum tok_bpe_unit unit;
	int32_t byte_id[256];      /* TOK_BPE_BYTES: the token of each byte, -1 if none */
	int32_t fallback_id[256];  /* byte_fallback: the <0xNN> tokens, -1 if none */
	int32_t unk_id;            /* -1 if none */
	bool fuse_unk, byte_fallback, ignore_merges;

	struct tok_bpe_merge *merges;  /* hash table: (left, right) -> rank, merged */
	size_t merges_n, merges_mask;

	/* Scratch of one encode call, and the cache of recent pieces. */
	struct tok_bpe_sym *syms;
	size_t syms_cap;
	struct tok_bpe_heap *heap;
	size_t heap_cap;
	struct tok_bpe_cache *cache;
};

/* Once m->vocab is filled and indexed and the flags set: derives the byte
 * and fallback tables. byte_level_strings: the vocab is spelled in
 * byte_level.h's characters (the bytes are looked up through m->keys). */
int tok_bpe_prepare(struct tok_bpe *m, enum tok_bpe_unit unit, bool byte_level_strings);

/* The table that maps what the model sees (bytes or text) to ids. */
const struct tok_vocab *tok_bpe_keys(const struct tok_bpe *m);

/* Adds the merge left + right -> merged with this rank (a pair given twice
 * keeps the later, as HF's map does). */
int tok_bpe_add_merge(struct tok_bpe *m, int32_t left, int32_t right, uint32_t rank, int32_t merged);

/* Appends the ids of the piece s[0..n) to out. */
int tok_bpe_encode(struct tok_bpe *m, const char *s, size_t n, struct tok_ids *out);

void tok_bpe_free(struct tok_bpe *m);

#endif
