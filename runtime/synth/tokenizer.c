/* The synthetic checkpoint's tokenizer.json (synth.h): byte-level
 * BPE whose merges are learned from a built-in text (greedy BPE training:
 * merge the most frequent adjacent pair, ties to the lower ids), then, when
 * the text has no pair left twice, letter merges drawn from Philox until
 * the vocabulary is full. Tokens are byte strings here and are spelled with
 * GPT-2's byte table only when written. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "byte_level.h"
#include "fail.h"
#include "synth.h"
#include "philox.h"
#include "utf8.h"

#define MAX_TOKEN 16 /* bytes */
#define BOS "<|begin_of_text|>"
#define EOS "<|end_of_text|>"

/* Our own words; any English prose would do. */
static const char corpus[] =
	"The small model reads the text one token at a time. It keeps what it has seen in a cache of keys and "
	"values, and each new token looks back at all of them before the model picks the next one. "
	"A tokenizer turns the text into numbers: it starts from single bytes and merges the pairs that come "
	"together most often, so that common words and parts of words become one token each. "
	"The runtime runs as a family of processes on one machine. They talk through ring buffers in shared "
	"memory, and the scheduler decides which requests go into the next step. The workers hold the weights "
	"of the model and run the step on their devices, then the first of them samples the next token for "
	"every sequence in the batch. When a request is done, its blocks of cache go back to the pool, and "
	"another request can use them. "
	"This text is only here so that the tokens look a little like English: the weights of the model are "
	"random numbers, and what it writes is not meant to make sense. There are seven days in a week, twelve "
	"months in a year, and the number 2048 is two to the power of eleven. Is it raining? Yes, it is, and "
	"the wind is cold; we will stay inside, read, and write some more code.\n";

struct vocab {
	char (*tok)[MAX_TOKEN + 1]; /* byte strings, NUL-terminated */
	uint8_t *len;
	int n, cap;
	int32_t *table; /* open addressing: id + 1, 0 = empty */
	size_t table_cap;
	json_t *merges;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static int find(const struct vocab *v, const char *s, size_t n)
{
	for (size_t i = hash(s, n) & (v->table_cap - 1);; i = (i + 1) & (v->table_cap - 1)) {
		int32_t id = v->table[i] - 1;
		if (id < 0)
			return -1;
		if (v->len[id] == n && !memcmp(v->tok[id], s, n))
			return id;
	}
}

static int add_token(struct vocab *v, const char *s, size_t n)
{
	memcpy(v->tok[v->n], s, n);
	v->tok[v->n][n] = 0;
	v->len[v->n] = (uint8_t)n;
	size_t i = hash(s, n) & (v->table_cap - 1);
	while (v->table[i])
		i = (i + 1) & (v->table_cap - 1);
	v->table[i] = v->n + 1;
	return v->n++;
}

/* token id as the file spells it (GPT-2's byte table) */
static json_t *spelled(const struct vocab *v, int id)
{
	char buf[MAX_TOKEN * 4 + 1];
	size_t at = 0;
	for (int i = 0; i < v->len[id]; i++)
		at += tok_utf8_encode(tok_byte_level_char((uint8_t)v->tok[id][i]), buf + at);
	return json_stringn(buf, at);
}

/* Adds merge a + b (and its token unless it exists); -1 if too long. */
static int merge(struct vocab *v, int a, int b)
{
	size_t la = v->len[a], lb = v->len[b];
	if (la + lb > MAX_TOKEN)
		return -1;
	char s[2 * MAX_TOKEN];
	memcpy(s, v->tok[a], la);
	memcpy(s + la, v->tok[b], lb);
	int id = find(v, s, la + lb);
	if (id < 0)
		id = add_token(v, s, la + lb);
	json_t *sa = spelled(v, a), *sb = spelled(v, b);
	json_array_append_new(v->merges, json_sprintf("%s %s", json_string_value(sa), json_string_value(sb)));
	json_decref(sa);
	json_decref(sb);
	return id;
}

/* ---- training on the corpus ------------------------------------------------ */

struct word {
	int32_t ids[64];
	int n;
};

static int char_class(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	if (c >= '0' && c <= '9')
		return 2;
	if (c == ' ' || c == '\n')
		return 3;
	return 4;
}

/* Splits the corpus as GPT-2's pattern roughly does: an optional space,
 * then a run of letters, digits or other characters. */
static int split(struct word *w, int cap)
{
	int n = 0;
	for (size_t i = 0; corpus[i] && n < cap;) {
		struct word *cur = &w[n++];
		cur->n = 0;
		if (corpus[i] == ' ' && corpus[i + 1] && char_class((uint8_t)corpus[i + 1]) != 3)
			cur->ids[cur->n++] = (uint8_t)corpus[i++];
		int cls = char_class((uint8_t)corpus[i]);
		while (corpus[i] && char_class((uint8_t)corpus[i]) == cls && cur->n < 64)
			cur->ids[cur->n++] = (uint8_t)corpus[i++];
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The most frequent adjacent pair (lowest ids on ties) if it occurs at
 * least twice: returns 1 and sets *a, *b. */
static int best_pair(const struct word *w, int nw, uint64_t *pairs, int *a, int *b)
{
	size_t np = 0;
	for (int i = 0; i < nw; i++)
		for (int k = 0; k + 1 < w[i].n; k++)
			pairs[np++] = (uint64_t)w[i].ids[k] << 32 | (uint32_t)w[i].ids[k + 1];
	qsort(pairs, np, sizeof(*pairs), cmp_u64);
	size_t best = 0, best_count = 1;
	for (size_t i = 0; i < np;) {
		size_t j = i;
		while (j < np && pairs[j] == pairs[i])
			j++;
		if (j - i > best_count) {
			best_count = j - i;
			best = i;
		}
		i = j;
	}
	if (best_count < 2)
		return 0;
	*a = (int)(pairs[best] >> 32);
	*b = (int)(uint32_t)pairs[best];
	return 1;
}

static void apply(struct word *w, int nw, int a, int b, int id)
{
	for (int i = 0; i < nw; i++) {
		int out = 0;
		for (int k = 0; k < w[i].n; k++) {
			if (k + 1 < w[i].n && w[i].ids[k] == a && w[i].ids[k + 1] == b) {
				w[i].ids[out++] = id;
				k++;
			} else
				w[i].ids[out++] = w[i].ids[k];
		}
		w[i].n = out;
	}
}

static int train(struct vocab *v, int target)
{
	enum { MAX_WORDS = 1024 };
	struct word *w = malloc(MAX_WORDS * sizeof(*w));
	uint64_t *pairs = malloc(sizeof(corpus) * sizeof(uint64_t));
	if (!w || !pairs) {
		free(w);
		free(pairs);
		return shmrt_fail(ENOMEM, "mkmodel: no memory");
	}
	int nw = split(w, MAX_WORDS), a, b;
	while (v->n < target && best_pair(w, nw, pairs, &a, &b)) {
		int id = merge(v, a, b);
		if (id < 0)
			break;
		apply(w, nw, a, b, id);
	}
	free(w);
	free(pairs);
	return 0;
}

/* ---- filling up with letter merges ------------------------------------------ */

static bool letters(const struct vocab *v, int id, bool space_ok)
{
	for (int i = 0; i < v->len[id]; i++) {
		uint8_t c = (uint8_t)v->tok[id][i];
		if (!(c >= 'a' && c <= 'z') && !(space_ok && i == 0 && c == ' '))
			return false;
	}
	return v->len[id] > 0;
}

static void fill(struct vocab *v, int target)
{
	uint64_t step = 0;
	while (v->n < target) {
		uint32_t r[4];
		shmrt_rng_block(0x6d6b6d6f64656cull /* "mkmodel" */, 1, step++, r);
		int a = (int)(r[0] % (uint32_t)v->n), b = (int)(r[1] % (uint32_t)v->n);
		if (!letters(v, a, true) || !letters(v, b, false) || v->len[a] + v->len[b] > 10)
			continue;
		char s[2 * MAX_TOKEN];
		memcpy(s, v->tok[a], v->len[a]);
		memcpy(s + v->len[a], v->tok[b], v->len[b]);
		if (find(v, s, v->len[a] + v->len[b]) < 0)
			merge(v, a, b);
	}
}

/* ---- the file ------------------------------------------------------------------ */

static json_t *added(int id, const char *content)
{
	return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content, "single_word", 0,
			 "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

static json_t *document(struct vocab *v, int vocab_size)
{
	json_t *vocab = json_object();
	for (int i = 0; i < v->n; i++) {
		json_t *s = spelled(v, i);
		json_object_set_new(vocab, json_string_value(s), json_integer(i));
		json_decref(s);
	}
	json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
				  "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
				  "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", v->merges);
	v->merges = NULL; /* the document holds it now */
	json_t *byte_level = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
				       "trim_offsets", 1, "use_regex", 1);
	json_t *post = json_pack(
		"{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, "
		"{s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
		"type", "TemplateProcessing", "single", "SpecialToken", "id", BOS, "type_id", 0, "Sequence", "id", "A",
		"type_id", 0, "pair", "SpecialToken", "id", BOS, "type_id", 0, "Sequence", "id", "A", "type_id", 0,
		"SpecialToken", "id", BOS, "type_id", 1, "Sequence", "id", "B", "type_id", 1, "special_tokens", BOS,
		"id", BOS, "ids", vocab_size - 2, "tokens", BOS);
	return json_pack("{s:s, s:n, s:n, s:[o, o], s:n, s:O, s:o, s:o, s:o}", "version", "1.0", "truncation",
			 "padding", "added_tokens", added(vocab_size - 2, BOS), added(vocab_size - 1, EOS),
			 "normalizer", "pre_tokenizer", byte_level, "post_processor", post, "decoder", byte_level,
			 "model", model);
}

int shmrt_mkmodel_tokenizer(const char *path, int vocab_size)
{
	if (vocab_size < 258)
		return shmrt_fail(EINVAL, "mkmodel: a vocabulary of %d ids has no room for 256 bytes and 2 specials",
				  vocab_size);
	int target = vocab_size - 2, rc = 0;
	struct vocab v = {.cap = target, .table_cap = 1};
	while (v.table_cap < 2 * (size_t)target)
		v.table_cap *= 2;
	v.tok = malloc((size_t)target * sizeof(*v.tok));
	v.len = malloc((size_t)target);
	v.table = calloc(v.table_cap, sizeof(*v.table));
	v.merges = json_array();
	if (!v.tok || !v.len || !v.table || !v.merges)
		rc = shmrt_fail(ENOMEM, "mkmodel: no memory for a vocabulary of %d", vocab_size);
	for (int b = 0; !rc && b < 256; b++) {
		char c = (char)b;
		add_token(&v, &c, 1);
	}
	if (!rc)
		rc = train(&v, target);
	if (!rc) {
		fill(&v, target);
		json_t *doc = document(&v, vocab_size);
		if (!doc || json_dump_file(doc, path, JSON_INDENT(1) | JSON_ENSURE_ASCII))
			rc = shmrt_fail(EIO, "%s: cannot write", path);
		json_decref(doc);
	}
	json_decref(v.merges);
	free(v.tok);
	free(v.len);
	free(v.table);
	return rc;
}
