/* Id-indexed string tables with a hash index (vocab.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "vocab.h"

#define NO_TOKEN UINT32_MAX

uint64_t tok_hash(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 32;
	}
	w = 0;
	if (n)
		memcpy(&w, s, n);
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	return h ^ (h >> 29);
}

int tok_vocab_init(struct tok_vocab *v, int32_t n)
{
	*v = (struct tok_vocab){.n = n};
	v->off = malloc(((size_t)n + 1) * sizeof(*v->off));
	v->len = calloc((size_t)n + 1, sizeof(*v->len));
	if (!v->off || !v->len) {
		tok_vocab_free(v);
		return shmrt_fail(ENOMEM, "tokenizer: no memory for %d tokens", n);
	}
	for (int32_t i = 0; i < n; i++)
		v->off[i] = NO_TOKEN;
	return 0;
}

int tok_vocab_set(struct tok_vocab *v, int32_t id, const void *s, size_t len)
{
	if (v->off[id] != NO_TOKEN)
		return 0;
	if (len >= UINT32_MAX - 1 || v->text.n + len + 1 >= UINT32_MAX)
		return shmrt_fail(E2BIG, "tokenizer: vocabulary strings exceed 4 GiB");
	size_t at = v->text.n;
	int rc = tok_buf_append(&v->text, s, len);
	if (rc == 0)
		rc = tok_buf_append(&v->text, "", 1);
	if (rc < 0)
		return rc;
	v->off[id] = (uint32_t)at;
	v->len[id] = (uint32_t)len;
	return 0;
}

int tok_vocab_index(struct tok_vocab *v)
{
	size_t cap = 16;
	while (cap < 2 * (size_t)v->n)
		cap *= 2;
	v->slots = calloc(cap, sizeof(*v->slots));
	if (!v->slots)
		return shmrt_fail(ENOMEM, "tokenizer: no memory for a %zu-slot index", cap);
	v->mask = cap - 1;
	for (int32_t id = 0; id < v->n; id++) {
		if (v->off[id] == NO_TOKEN || tok_vocab_find(v, v->text.p + v->off[id], v->len[id]) >= 0)
			continue;
		size_t i = tok_hash(v->text.p + v->off[id], v->len[id]) & v->mask;
		while (v->slots[i])
			i = (i + 1) & v->mask;
		v->slots[i] = id + 1;
	}
	return 0;
}

int32_t tok_vocab_find(const struct tok_vocab *v, const void *s, size_t len)
{
	if (!v->slots)
		return -1;
	for (size_t i = tok_hash(s, len) & v->mask; v->slots[i]; i = (i + 1) & v->mask) {
		int32_t id = v->slots[i] - 1;
		if (v->len[id] == len && memcmp(v->text.p + v->off[id], s, len) == 0)
			return id;
	}
	return -1;
}

const char *tok_vocab_get(const struct tok_vocab *v, int32_t id, size_t *len)
{
	if (id < 0 || id >= v->n || v->off[id] == NO_TOKEN)
		return NULL;
	if (len)
		*len = v->len[id];
	return v->text.p + v->off[id];
}

void tok_vocab_free(struct tok_vocab *v)
{
	free(v->off);
	free(v->len);
	free(v->slots);
	tok_buf_free(&v->text);
	*v = (struct tok_vocab){0};
}
