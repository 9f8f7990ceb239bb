/* Added tokens (added_tokens.h). HF's AddedVocabulary::find_matches is the
 * reference: a leftmost-longest search; a single_word token must not touch
 * a word character on either side (else that match is passed over); lstrip
 * and rstrip take in the whitespace beside the token. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "added_tokens.h"
#include "fail.h"
#include "utf8.h"

int tok_added_add(struct tok_added_set *set, const struct tok_added *t)
{
	struct tok_added *v = realloc(set->v, (set->n + 1) * sizeof(*v));
	if (!v)
		return shmrt_fail(ENOMEM, "tokenizer: out of memory for added tokens");
	set->v = v;
	struct tok_added *a = &v[set->n];
	*a = *t;
	a->match = NULL;
	a->content = malloc(t->len + 1);
	if (!a->content)
		return shmrt_fail(ENOMEM, "tokenizer: out of memory for added tokens");
	memcpy(a->content, t->content, t->len);
	a->content[t->len] = '\0';
	set->n++;
	return 0;
}

struct sort_key {
	uint32_t byte, len, idx;
	int32_t id;
};

/* By first byte, then longest first (leftmost-longest), then lowest id. */
static int key_order(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	if (x->byte != y->byte)
		return x->byte < y->byte ? -1 : 1;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int index_pass(struct tok_added_set *set, int pass)
{
	size_t cap = set->n ? set->n : 1, m = 0;
	uint32_t *order = malloc(cap * sizeof(*order));
	struct sort_key *keys = malloc(cap * sizeof(*keys));
	if (!order || !keys) {
		free(order);
		free(keys);
		return shmrt_fail(ENOMEM, "tokenizer: out of memory for added tokens");
	}
	for (size_t i = 0; i < set->n; i++) {
		const struct tok_added *a = &set->v[i];
		if (a->normalized == pass && a->match_n)
			keys[m++] = (struct sort_key){(uint8_t)a->match[0], (uint32_t)a->match_n, (uint32_t)i, a->id};
	}
	qsort(keys, m, sizeof(*keys), key_order);
	uint32_t *first = set->first[pass];
	memset(set->first[pass], 0, sizeof(set->first[pass]));
	for (size_t k = 0; k < m; k++) {
		order[k] = keys[k].idx;
		first[keys[k].byte + 1]++;
	}
	set->only_first[pass] = -1;
	for (int b = 0; b < 256; b++) {
		if (first[b + 1] == m && first[b] == 0 && m)
			set->only_first[pass] = (int16_t)b;
		first[b + 1] += first[b];
	}
	free(keys);
	set->order[pass] = order;
	return 0;
}

int tok_added_index(struct tok_added_set *set, struct tok_normalizer *nz)
{
	for (size_t i = 0; i < set->n; i++) {
		struct tok_added *a = &set->v[i];
		const char *m = a->content;
		size_t mn = a->len;
		int rc = a->normalized ? tok_normalize(nz, a->content, a->len, &m, &mn) : 0;
		if (rc == 0 && !(a->match = malloc(mn + 1)))
			rc = shmrt_fail(ENOMEM, "tokenizer: out of memory for added tokens");
		if (rc < 0)
			return rc;
		memcpy(a->match, m, mn);
		a->match_n = mn;
	}
	int rc = index_pass(set, 0);
	return rc < 0 ? rc : index_pass(set, 1);
}

/* Unicode White_Space, which Rust's \s matches. */
static bool is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
	       c == 0x3000;
}

/* Rust's \w: alphabetic, marks, decimal digits, connector punctuation and
 * the joiners (letters and letter numbers stand in for Alphabetic). */
static bool is_word(uint32_t c)
{
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
		return true;
	default:
		return c == 0x200C || c == 0x200D;
	}
}

/* The character ending at s[end) (-1 if none or not UTF-8); *start is where
 * it begins. */
static int64_t char_before(const char *s, size_t end, size_t *start)
{
	size_t i = end;
	while (i > 0 && end - i < 4) {
		i--;
		if (((uint8_t)s[i] & 0xC0) != 0x80)
			break;
	}
	uint32_t cp;
	if (i == end || tok_utf8_scan((const uint8_t *)s + i, end - i, &cp) != (int)(end - i))
		return -1;
	*start = i;
	return cp;
}

static int64_t char_at(const char *s, size_t n, size_t at, size_t *len)
{
	uint32_t cp;
	int k = at < n ? tok_utf8_scan((const uint8_t *)s + at, n - at, &cp) : -1;
	if (k <= 0)
		return -1;
	*len = (size_t)k;
	return cp;
}

static bool single_word_ok(const char *s, size_t n, size_t start, size_t stop)
{
	size_t k;
	int64_t before = char_before(s, start, &k), after = char_at(s, n, stop, &k);
	return !(before >= 0 && is_word((uint32_t)before)) && !(after >= 0 && is_word((uint32_t)after));
}

static int push(struct tok_spans *out, size_t off, size_t len, int32_t id)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? 2 * out->cap : 16;
		struct tok_span *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return shmrt_fail(ENOMEM, "tokenizer: out of memory");
		out->v = v;
		out->cap = cap;
	}
	out->v[out->n++] = (struct tok_span){off, len, id};
	return 0;
}

static const struct tok_added *longest_at(const struct tok_added_set *set, int pass, bool skip_special,
					  const char *s, size_t n, size_t at)
{
	uint8_t b = (uint8_t)s[at];
	const uint32_t *first = set->first[pass];
	for (uint32_t k = first[b]; k < first[b + 1]; k++) {
		const struct tok_added *a = &set->v[set->order[pass][k]];
		if (a->match_n <= n - at && !(skip_special && a->special) && !memcmp(s + at, a->match, a->match_n))
			return a;
	}
	return NULL;
}

int tok_added_split(const struct tok_added_set *set, bool normalized, bool skip_special, const char *s, size_t n,
		    struct tok_spans *out)
{
	int pass = normalized, rc = 0;
	size_t text_from = 0, at = 0;
	out->n = 0;
	while (at < n && rc == 0) {
		if (set->first[pass][256] == 0)
			break; /* no tokens to look for */
		if (set->only_first[pass] >= 0) {
			/* Usually so: special tokens all start with '<'. */
			const char *next = memchr(s + at, set->only_first[pass], n - at);
			if (!next)
				break;
			at = (size_t)(next - s);
		} else if (set->first[pass][(uint8_t)s[at]] == set->first[pass][(uint8_t)s[at] + 1]) {
			at++;
			continue;
		}
		const struct tok_added *a = longest_at(set, pass, skip_special, s, n, at);
		if (!a) {
			at++;
			continue;
		}
		size_t start = at, stop = at + a->match_n, k, len;
		int64_t c;
		at = stop;
		if (a->single_word && !single_word_ok(s, n, start, stop))
			continue;
		while (a->lstrip && start > text_from && (c = char_before(s, start, &k)) >= 0 && is_space((uint32_t)c))
			start = k;
		while (a->rstrip && (c = char_at(s, n, stop, &len)) >= 0 && is_space((uint32_t)c))
			stop += len;
		if (start > text_from)
			rc = push(out, text_from, start - text_from, -1);
		if (rc == 0)
			rc = push(out, start, stop - start, a->id);
		text_from = at = stop;
	}
	if (rc == 0 && text_from < n)
		rc = push(out, text_from, n - text_from, -1);
	return rc;
}

void tok_added_free(struct tok_added_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].content);
		free(set->v[i].match);
	}
	free(set->v);
	free(set->order[0]);
	free(set->order[1]);
	*set = (struct tok_added_set){0};
}
