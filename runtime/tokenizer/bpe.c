/* The BPE model (bpe.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "byte_level.h"
#include "fail.h"
#include "utf8.h"

#define EMPTY_KEY UINT64_MAX

struct tok_bpe_merge {
	uint64_t key;  /* left << 32 | right */
	uint32_t rank;
	int32_t merged;
};

struct tok_bpe_sym {
	int32_t id;  /* -1 once merged into its left neighbour */
	int32_t prev, next;
};

struct tok_bpe_heap {
	uint32_t rank, pos;
	int32_t merged;
};

/* Recent pieces and their ids, direct-mapped by hash: English text repeats
 * its words, and a hit skips the merging. Longer pieces are not kept.
 * 16384 slots of 72 bytes (1.2 MB a handle) keep most words of code and
 * prose; 4096 gave 5% more instructions on Python sources. */
#define CACHE_SLOTS 16384
#define CACHE_KEY 30
#define CACHE_IDS 8

struct tok_bpe_cache {
	uint64_t hash;
	uint8_t key_n, ids_n;
	char key[CACHE_KEY];
	int32_t ids[CACHE_IDS];
};

static uint64_t pair_key(int32_t left, int32_t right)
{
	return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* The slot a pair hashes to: a multiply-xorshift mix of the 64-bit key,
 * cheaper than hashing its bytes (this lookup is BPE's inner loop). */
static size_t pair_hash(uint64_t key)
{
	key *= 0x9E3779B97F4A7C15ull;
	return (size_t)(key ^ key >> 29);
}

static const struct tok_bpe_merge *find_merge(const struct tok_bpe *m, int32_t left, int32_t right)
{
	if (!m->merges)
		return NULL;
	uint64_t key = pair_key(left, right);
	for (size_t i = pair_hash(key) & m->merges_mask;; i = (i + 1) & m->merges_mask) {
		if (m->merges[i].key == key)
			return &m->merges[i];
		if (m->merges[i].key == EMPTY_KEY)
			return NULL;
	}
}

static struct tok_bpe_merge *merge_slot(struct tok_bpe_merge *table, size_t mask, uint64_t key)
{
	size_t i = pair_hash(key) & mask;
	while (table[i].key != EMPTY_KEY && table[i].key != key)
		i = (i + 1) & mask;
	return &table[i];
}

/* Keeps the table at most half full. */
static int grow_merges(struct tok_bpe *m)
{
	size_t cap = m->merges ? 2 * (m->merges_mask + 1) : 1024;
	struct tok_bpe_merge *t = malloc(cap * sizeof(*t));
	if (!t)
		return shmrt_fail(ENOMEM, "tokenizer: no memory for %zu merges", cap / 2);
	for (size_t i = 0; i < cap; i++)
		t[i].key = EMPTY_KEY;
	for (size_t i = 0; m->merges && i <= m->merges_mask; i++)
		if (m->merges[i].key != EMPTY_KEY)
			*merge_slot(t, cap - 1, m->merges[i].key) = m->merges[i];
	free(m->merges);
	m->merges = t;
	m->merges_mask = cap - 1;
	return 0;
}

int tok_bpe_add_merge(struct tok_bpe *m, int32_t left, int32_t right, uint32_t rank, int32_t merged)
{
	if (!m->merges || 2 * (m->merges_n + 1) > m->merges_mask + 1) {
		int rc = grow_merges(m);
		if (rc < 0)
			return rc;
	}
	struct tok_bpe_merge *slot = merge_slot(m->merges, m->merges_mask, pair_key(left, right));
	if (slot->key == EMPTY_KEY)
		m->merges_n++;
	*slot = (struct tok_bpe_merge){pair_key(left, right), rank, merged};
	return 0;
}

const struct tok_vocab *tok_bpe_keys(const struct tok_bpe *m)
{
	return m->keys.n ? &m->keys : &m->vocab;
}

/* Byte-level vocabularies spell bytes as characters; the model looks bytes
 * up, so each token's bytes are indexed too. A token with a character
 * outside the table (rare, hand-added) cannot come out of BPE's merges. */
static int index_byte_level(struct tok_bpe *m)
{
	struct tok_buf bytes = {0};
	int rc = tok_vocab_init(&m->keys, m->vocab.n);
	for (int32_t id = 0; id < m->vocab.n && rc == 0; id++) {
		size_t len;
		const char *s = tok_vocab_get(&m->vocab, id, &len);
		bytes.n = 0;
		if (s && (rc = tok_byte_level_unmap(s, len, &bytes)) == 1)
			rc = tok_vocab_set(&m->keys, id, bytes.p, bytes.n);
	}
	tok_buf_free(&bytes);
	return rc < 0 ? rc : tok_vocab_index(&m->keys);
}

int tok_bpe_prepare(struct tok_bpe *m, enum tok_bpe_unit unit, bool byte_level_strings)
{
	m->unit = unit;
	int rc = byte_level_strings ? index_byte_level(m) : 0;
	if (rc < 0)
		return rc;
	for (int b = 0; b < 256; b++) {
		char c = (char)b, name[8];
		snprintf(name, sizeof(name), "<0x%02X>", b);
		m->byte_id[b] = tok_vocab_find(tok_bpe_keys(m), &c, 1);
		m->fallback_id[b] = m->byte_fallback ? tok_vocab_find(&m->vocab, name, 6) : -1;
	}
	return 0;
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t cap2 = need < 64 ? 64 : need + need / 2;
	void *q = realloc(*p, cap2 * elem);
	if (!q)
		return shmrt_fail(ENOMEM, "tokenizer: out of memory for a %zu-byte piece", need);
	*p = q;
	*cap = cap2;
	return 0;
}

/* The symbols a piece starts as. n is bounded by the caller (INT32_MAX). */
static int initial_symbols(struct tok_bpe *m, const char *s, size_t n, size_t *count)
{
	int rc = reserve((void **)&m->syms, &m->syms_cap, n, sizeof(*m->syms));
	if (rc < 0)
		return rc;
	const struct tok_vocab *keys = tok_bpe_keys(m);
	size_t k = 0;
	bool after_unk = false;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int len = 1, ids_n = 0;
		int32_t ids[4];
		if (m->unit == TOK_BPE_BYTES) {
			ids[0] = m->byte_id[(uint8_t)s[i]];
			ids_n = ids[0] >= 0;
		} else {
			len = tok_utf8_scan((const uint8_t *)s + i, n - i, &cp);
			len = len > 0 ? len : 1; /* a byte that is not UTF-8 stands alone */
			ids[0] = tok_vocab_find(keys, s + i, (size_t)len);
			ids_n = ids[0] >= 0;
			for (int j = 0; !ids_n && m->byte_fallback && j < len; j++)
				if ((ids[j] = m->fallback_id[(uint8_t)s[i + j]]) < 0)
					break;
				else if (j == len - 1)
					ids_n = len;
		}
		i += (size_t)len;
		/* Unknown: <unk>, once for a run when fuse_unk; dropped when the
		 * model has no <unk>. */
		if (ids_n == 0) {
			if (m->unk_id < 0 || (m->fuse_unk && after_unk))
				continue;
			ids[ids_n++] = m->unk_id;
			after_unk = true;
		} else {
			after_unk = false;
		}
		for (int j = 0; j < ids_n; j++, k++)
			m->syms[k] = (struct tok_bpe_sym){ids[j], (int32_t)k - 1, (int32_t)k + 1};
	}
	if (k)
		m->syms[k - 1].next = -1;
	*count = k;
	return 0;
}

static bool heap_less(const struct tok_bpe_heap *a, const struct tok_bpe_heap *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct tok_bpe *m, size_t *n, struct tok_bpe_heap item)
{
	size_t i = (*n)++;
	while (i > 0 && heap_less(&item, &m->heap[(i - 1) / 2])) {
		m->heap[i] = m->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	m->heap[i] = item;
}

static struct tok_bpe_heap heap_pop(struct tok_bpe *m, size_t *n)
{
	struct tok_bpe_heap top = m->heap[0], last = m->heap[--*n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && heap_less(&m->heap[c + 1], &m->heap[c]))
			c++;
		if (!heap_less(&m->heap[c], &last))
			break;
		m->heap[i] = m->heap[c];
		i = c;
	}
	m->heap[i] = last;
	return top;
}

/* Queues the pair that starts at symbol pos, if it has a merge. */
static void queue_pair(struct tok_bpe *m, size_t *heap_n, int32_t pos)
{
	int32_t next = m->syms[pos].next;
	const struct tok_bpe_merge *mg = next >= 0 ? find_merge(m, m->syms[pos].id, m->syms[next].id) : NULL;
	if (mg)
		heap_push(m, heap_n, (struct tok_bpe_heap){mg->rank, (uint32_t)pos, mg->merged});
}

/* Merges the lowest-ranked pair, leftmost on ties, until none is left. Heap
 * entries go stale when a neighbour merges first; one is used only if its
 * pair still merges into the same token (as HF checks). */
static int merge_all(struct tok_bpe *m, size_t count)
{
	/* count - 1 initial pairs, and each merge queues at most two. */
	int rc = reserve((void **)&m->heap, &m->heap_cap, 3 * count, sizeof(*m->heap));
	if (rc < 0)
		return rc;
	size_t heap_n = 0;
	for (size_t i = 0; i + 1 < count; i++)
		queue_pair(m, &heap_n, (int32_t)i);
	while (heap_n) {
		struct tok_bpe_heap top = heap_pop(m, &heap_n);
		struct tok_bpe_sym *left = &m->syms[top.pos];
		if (left->id < 0 || left->next < 0)
			continue;
		struct tok_bpe_sym *right = &m->syms[left->next];
		const struct tok_bpe_merge *mg = find_merge(m, left->id, right->id);
		if (!mg || mg->merged != top.merged)
			continue;
		left->id = top.merged;
		right->id = -1;
		left->next = right->next;
		if (right->next >= 0)
			m->syms[right->next].prev = (int32_t)top.pos;
		if (left->prev >= 0)
			queue_pair(m, &heap_n, left->prev);
		queue_pair(m, &heap_n, (int32_t)top.pos);
	}
	return 0;
}

static struct tok_bpe_cache *cache_slot(struct tok_bpe *m, const char *s, size_t n, uint64_t *hash)
{
	if (n > CACHE_KEY)
		return NULL;
	if (!m->cache && !(m->cache = calloc(CACHE_SLOTS, sizeof(*m->cache))))
		return NULL; /* no memory for the cache: go without */
	*hash = tok_hash(s, n);
	return &m->cache[*hash % CACHE_SLOTS];
}

int tok_bpe_encode(struct tok_bpe *m, const char *s, size_t n, struct tok_ids *out)
{
	if (n == 0)
		return 0;
	if (n > INT32_MAX)
		return shmrt_fail(E2BIG, "tokenizer: a %zu-byte piece is too long", n);
	/* ignore_merges (Llama 3): a piece that is a token is that token. */
	int32_t whole = m->ignore_merges ? tok_vocab_find(tok_bpe_keys(m), s, n) : -1;
	if (whole >= 0)
		return tok_ids_push(out, whole);
	uint64_t hash = 0;
	struct tok_bpe_cache *c = cache_slot(m, s, n, &hash);
	if (c && c->key_n == n && c->hash == hash && !memcmp(c->key, s, n))
		return tok_ids_append(out, c->ids, c->ids_n);

	size_t count, before = out->n;
	int rc = initial_symbols(m, s, n, &count);
	if (rc == 0)
		rc = merge_all(m, count);
	for (int32_t i = count ? 0 : -1; i >= 0 && rc == 0; i = m->syms[i].next)
		rc = tok_ids_push(out, m->syms[i].id);
	if (rc == 0 && c && out->n - before <= CACHE_IDS) {
		c->hash = hash;
		c->key_n = (uint8_t)n;
		c->ids_n = (uint8_t)(out->n - before);
		memcpy(c->key, s, n);
		if (c->ids_n)
			memcpy(c->ids, out->v + before, c->ids_n * sizeof(int32_t));
	}
	return rc;
}

void tok_bpe_free(struct tok_bpe *m)
{
	tok_vocab_free(&m->vocab);
	tok_vocab_free(&m->keys);
	free(m->merges);
	free(m->syms);
	free(m->heap);
	free(m->cache);
	*m = (struct tok_bpe){0};
}
