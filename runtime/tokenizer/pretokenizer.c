/* Pre-tokenizers of tokenizer.json (pretokenizer.h). The semantics follow
 * HF tokenizers' pre_tokenizers module and NormalizedString::split. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "pretokenizer.h"
#include "regex_pcre.h"
#include "array_size.h"

/* SplitDelimiterBehavior: what becomes of a match and its neighbours. */
enum behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS };

enum prepend { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

enum step_kind { STEP_SPLIT, STEP_PREFIX_SPACE, STEP_METASPACE };

struct step {
	enum step_kind kind;
	struct tok_regex *re;    /* STEP_SPLIT; STEP_METASPACE when it splits */
	enum behavior behavior;
	bool invert;
	char repl[8];            /* STEP_METASPACE: the replacement character */
	size_t repl_n;
	enum prepend prepend;
};

struct seg {
	size_t start, end;
	bool match;
};

struct tok_pretok {
	struct step *steps;
	size_t n;
	bool byte_level;
	struct tok_pieces buf[2];
	struct seg *segs;        /* one piece's matches, while splitting it */
	size_t segs_n, segs_cap;
	struct tok_buf rewrite;  /* a piece after Metaspace's rewriting */
};

/* HF's ByteLevel pre-tokenizer splits with GPT-2's pattern (byte_level.rs). */
static const char gpt2_pattern[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static struct step *new_step(struct tok_pretok *pt, enum step_kind kind, struct tok_json_at at)
{
	struct step *steps = realloc(pt->steps, (pt->n + 1) * sizeof(*steps));
	if (!steps) {
		shmrt_fail(ENOMEM, "%s: %s: out of memory", at.file, at.where);
		return NULL;
	}
	pt->steps = steps;
	steps[pt->n] = (struct step){.kind = kind, .behavior = ISOLATED};
	return &steps[pt->n++];
}

static int add_split(struct tok_pretok *pt, const char *pat, size_t n, unsigned re_flags,
		     enum behavior behavior, bool invert, struct tok_json_at at)
{
	struct step *st = new_step(pt, STEP_SPLIT, at);
	if (!st)
		return -ENOMEM;
	st->behavior = behavior;
	st->invert = invert;
	return tok_regex_compile(pat, n, re_flags, at.file, at.where, &st->re);
}

static int parse_behavior(json_t *j, struct tok_json_at at, enum behavior *out)
{
	static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
					    "Contiguous"};
	const char *s;
	int rc = tok_json_string(j, "behavior", at, &s, NULL);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i])) {
			*out = (enum behavior)i;
			return 0;
		}
	return shmrt_fail(EINVAL, "%s: %s.behavior \"%s\" is not one of Removed, Isolated, "
			  "MergedWithPrevious, MergedWithNext, Contiguous", at.file, at.where, s);
}

static int parse_split(struct tok_pretok *pt, json_t *j, struct tok_json_at at)
{
	const char *pat;
	size_t n;
	bool is_regex, invert;
	enum behavior behavior = ISOLATED;
	int rc = tok_json_pattern(j, at, &pat, &n, &is_regex);
	if (rc == 0)
		rc = parse_behavior(j, at, &behavior);
	if (rc == 0)
		rc = tok_json_bool(j, "invert", false, at, &invert);
	if (rc == 0 && n == 0)
		rc = shmrt_fail(EINVAL, "%s: %s: Split with an empty pattern", at.file, at.where);
	if (rc == 0)
		rc = add_split(pt, pat, n, is_regex ? TOK_RE_DOLLAR_LINE : TOK_RE_LITERAL, behavior, invert, at);
	return rc;
}

/* Punctuation: each punctuation character is a match, as HF's
 * pre_tokenizers::punctuation tests char by char: ASCII punctuation
 * (is_ascii_punctuation, which counts $+<=>^`|~ too) or a character of
 * Unicode's P categories. behavior defaults to Isolated. */
static const char punctuation_pattern[] = "[\\p{P}!-/:-@\\[-`{-~]";

static int parse_punctuation(struct tok_pretok *pt, json_t *j, struct tok_json_at at)
{
	enum behavior behavior = ISOLATED;
	json_t *b = json_object_get(j, "behavior");
	int rc = b && !json_is_null(b) ? parse_behavior(j, at, &behavior) : 0;
	if (rc == 0)
		rc = add_split(pt, punctuation_pattern, sizeof(punctuation_pattern) - 1, 0, behavior, false, at);
	return rc;
}

/* HF's Whitespace: the matches of \w+|[^\w\s]+ are the pieces, what lies
 * between (white space) is dropped; WhitespaceSplit: split on white space,
 * dropped; CharDelimiterSplit: on one character, dropped; BertPreTokenizer:
 * WhitespaceSplit, then each punctuation character alone. */
static int parse_whitespace(struct tok_pretok *pt, const char *type, json_t *j, struct tok_json_at at)
{
	static const char words[] = "\\w+|[^\\w\\s]+", spaces[] = "\\s+";
	if (!strcmp(type, "Whitespace"))
		return add_split(pt, words, sizeof(words) - 1, 0, REMOVED, true, at);
	if (!strcmp(type, "CharDelimiterSplit")) {
		const char *d;
		size_t n;
		int rc = tok_json_string(j, "delimiter", at, &d, &n);
		if (rc == 0 && n == 0)
			rc = shmrt_fail(EINVAL, "%s: %s.delimiter is empty", at.file, at.where);
		return rc < 0 ? rc : add_split(pt, d, n, TOK_RE_LITERAL, REMOVED, false, at);
	}
	int rc = add_split(pt, spaces, sizeof(spaces) - 1, 0, REMOVED, false, at);
	if (rc == 0 && !strcmp(type, "BertPreTokenizer"))
		rc = add_split(pt, punctuation_pattern, sizeof(punctuation_pattern) - 1, 0, ISOLATED, false, at);
	return rc;
}

static int parse_byte_level(struct tok_pretok *pt, json_t *j, struct tok_json_at at)
{
	bool prefix, use_regex;
	int rc = tok_json_bool(j, "add_prefix_space", true, at, &prefix);
	if (rc == 0)
		rc = tok_json_bool(j, "use_regex", true, at, &use_regex);
	if (rc < 0)
		return rc;
	pt->byte_level = true;
	if (prefix && !new_step(pt, STEP_PREFIX_SPACE, at))
		return -ENOMEM;
	if (use_regex)
		rc = add_split(pt, gpt2_pattern, sizeof(gpt2_pattern) - 1, TOK_RE_DOLLAR_LINE, ISOLATED, false, at);
	return rc;
}

/* Metaspace: prepend_scheme is "always", "first" or "never"; files from
 * before it existed have add_prefix_space (true = always). */
static int parse_metaspace(struct tok_pretok *pt, json_t *j, struct tok_json_at at)
{
	const char *repl, *scheme = NULL;
	size_t repl_n;
	bool split, prefix;
	int rc = tok_json_string(j, "replacement", at, &repl, &repl_n);
	if (rc == 0)
		rc = tok_json_bool(j, "split", true, at, &split);
	if (rc == 0)
		rc = tok_json_bool(j, "add_prefix_space", true, at, &prefix);
	if (rc == 0 && json_object_get(j, "prepend_scheme"))
		rc = tok_json_string(j, "prepend_scheme", at, &scheme, NULL);
	if (rc < 0)
		return rc;
	if (repl_n == 0 || repl_n >= sizeof(((struct step *)0)->repl))
		return shmrt_fail(EINVAL, "%s: %s.replacement must be one character", at.file, at.where);
	enum prepend prepend = prefix ? PREPEND_ALWAYS : PREPEND_NEVER;
	if (scheme && !strcmp(scheme, "always"))
		prepend = PREPEND_ALWAYS;
	else if (scheme && !strcmp(scheme, "first"))
		prepend = PREPEND_FIRST;
	else if (scheme && !strcmp(scheme, "never"))
		prepend = PREPEND_NEVER;
	else if (scheme)
		return shmrt_fail(EINVAL, "%s: %s.prepend_scheme \"%s\" is not always, first or never", at.file,
				  at.where, scheme);
	struct step *st = new_step(pt, STEP_METASPACE, at);
	if (!st)
		return -ENOMEM;
	memcpy(st->repl, repl, repl_n);
	st->repl_n = repl_n;
	st->prepend = prepend;
	/* Splitting on the replacement keeps each one with the word after. */
	st->behavior = MERGED_WITH_NEXT;
	return split ? tok_regex_compile(repl, repl_n, TOK_RE_LITERAL, at.file, at.where, &st->re) : 0;
}

static int add_steps(struct tok_pretok *pt, json_t *j, struct tok_json_at at);

static int add_item(void *pt, json_t *j, struct tok_json_at at)
{
	return add_steps(pt, j, at);
}

static int add_steps(struct tok_pretok *pt, json_t *j, struct tok_json_at at)
{
	const char *type;
	int rc = tok_json_type(j, at, &type);
	if (rc < 0)
		return rc;
	if (!strcmp(type, "Sequence"))
		return tok_json_sequence(j, "pretokenizers", at, add_item, pt);
	if (!strcmp(type, "Split"))
		return parse_split(pt, j, at);
	if (!strcmp(type, "ByteLevel"))
		return parse_byte_level(pt, j, at);
	if (!strcmp(type, "Metaspace"))
		return parse_metaspace(pt, j, at);
	if (!strcmp(type, "Punctuation"))
		return parse_punctuation(pt, j, at);
	if (!strcmp(type, "Whitespace") || !strcmp(type, "WhitespaceSplit") || !strcmp(type, "CharDelimiterSplit") ||
	    !strcmp(type, "BertPreTokenizer"))
		return parse_whitespace(pt, type, j, at);
	if (!strcmp(type, "Digits")) {
		bool single;
		rc = tok_json_bool(j, "individual_digits", false, at, &single);
		const char *pat = single ? "\\p{N}" : "\\p{N}+";
		return rc < 0 ? rc : add_split(pt, pat, strlen(pat), 0, ISOLATED, false, at);
	}
	return shmrt_fail(ENOTSUP, "%s: %s: pre-tokenizer type \"%s\" is not supported "
			  "(ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit, "
			  "CharDelimiterSplit, BertPreTokenizer, Sequence are)", at.file, at.where, type);
}

int tok_pretok_parse(json_t *j, struct tok_json_at at, struct tok_pretok **out)
{
	struct tok_pretok *pt = calloc(1, sizeof(*pt));
	if (!pt)
		return shmrt_fail(ENOMEM, "%s: out of memory", at.file);
	int rc = j && !json_is_null(j) ? add_steps(pt, j, at) : 0;
	if (rc < 0) {
		tok_pretok_free(pt);
		return rc;
	}
	*out = pt;
	return 0;
}

int tok_pretok_regex(const char *pattern, const char *what, struct tok_pretok **out)
{
	struct tok_pretok *pt = calloc(1, sizeof(*pt));
	if (!pt)
		return shmrt_fail(ENOMEM, "%s: out of memory", what);
	struct tok_json_at at = {what, "pattern"};
	int rc = add_split(pt, pattern, strlen(pattern), TOK_RE_DOLLAR_END, ISOLATED, false, at);
	if (rc < 0) {
		tok_pretok_free(pt);
		return rc;
	}
	*out = pt;
	return 0;
}

int tok_pretok_regexes(const char *const *patterns, size_t n, bool byte_level, const char *what,
		       struct tok_pretok **out)
{
	struct tok_pretok *pt = calloc(1, sizeof(*pt));
	if (!pt)
		return shmrt_fail(ENOMEM, "%s: out of memory", what);
	struct tok_json_at at = {what, "pre-tokenizer"};
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_split(pt, patterns[i], strlen(patterns[i]), TOK_RE_DOLLAR_END, ISOLATED, false, at);
	if (rc < 0) {
		tok_pretok_free(pt);
		return rc;
	}
	pt->byte_level = byte_level;
	*out = pt;
	return 0;
}

bool tok_pretok_byte_level(const struct tok_pretok *pt)
{
	return pt->byte_level;
}

static int push_piece(struct tok_pieces *ps, const char *prefix, size_t prefix_n, const char *s, size_t n,
		      bool at_start)
{
	if (n + prefix_n == 0)
		return 0;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 64;
		struct tok_piece *v = realloc(ps->v, cap * sizeof(*v));
		if (!v)
			return shmrt_fail(ENOMEM, "tokenizer: out of memory for pieces");
		ps->v = v;
		ps->cap = cap;
	}
	size_t off = ps->text.n;
	int rc = tok_buf_append(&ps->text, prefix, prefix_n);
	if (rc == 0)
		rc = tok_buf_append(&ps->text, s, n);
	if (rc < 0)
		return rc;
	ps->v[ps->n++] = (struct tok_piece){off, prefix_n + n, at_start};
	return 0;
}

static int push_seg(struct tok_pretok *pt, size_t start, size_t end, bool match)
{
	if (pt->segs_n == pt->segs_cap) {
		size_t cap = pt->segs_cap ? 2 * pt->segs_cap : 64;
		struct seg *v = realloc(pt->segs, cap * sizeof(*v));
		if (!v)
			return shmrt_fail(ENOMEM, "tokenizer: out of memory for splits");
		pt->segs = v;
		pt->segs_cap = cap;
	}
	pt->segs[pt->segs_n++] = (struct seg){start, end, match};
	return 0;
}

/* The matches of st in s[0..n) and the text between them, in order. */
static int find_segs(struct tok_pretok *pt, const struct step *st, const char *s, size_t n)
{
	size_t at = 0, ms, me;
	int rc;
	pt->segs_n = 0;
	while ((rc = tok_regex_next(st->re, s, n, at, &ms, &me)) == 1) {
		if ((ms > at && (rc = push_seg(pt, at, ms, st->invert)) < 0) ||
		    (rc = push_seg(pt, ms, me, !st->invert)) < 0)
			return rc;
		at = me;
	}
	if (rc == 0 && at < n)
		rc = push_seg(pt, at, n, st->invert);
	return rc;
}

/* Applies the delimiter behaviour to the segments, in place: what is left
 * are the pieces (match flags no longer matter). As HF's split does. */
static void apply_behavior(struct tok_pretok *pt, enum behavior b)
{
	struct seg *v = pt->segs;
	size_t n = pt->segs_n, out = 0;
	bool prev_match = false;
	if (b == MERGED_WITH_NEXT) {
		/* A match joins the piece after it; walk backwards, output
		 * builds from the end. */
		size_t w = n;
		for (size_t i = n; i-- > 0;) {
			if (v[i].match && !prev_match && w < n)
				v[w].start = v[i].start;
			else
				v[--w] = v[i];
			prev_match = v[i].match;
		}
		memmove(v, v + w, (n - w) * sizeof(*v));
		pt->segs_n = n - w;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool join = (b == MERGED_WITH_PREVIOUS && v[i].match && !prev_match) ||
			    (b == CONTIGUOUS && v[i].match == prev_match);
		prev_match = v[i].match;
		if (b == REMOVED && v[i].match)
			continue;
		if (join && out > 0)
			v[out - 1].end = v[i].end;
		else
			v[out++] = v[i];
	}
	pt->segs_n = out;
}

static int split_piece(struct tok_pretok *pt, const struct step *st, const char *s, size_t n, bool at_start,
		       struct tok_pieces *out)
{
	int rc = find_segs(pt, st, s, n);
	if (rc < 0)
		return rc;
	apply_behavior(pt, st->behavior);
	for (size_t i = 0; i < pt->segs_n && rc == 0; i++)
		rc = push_piece(out, NULL, 0, s + pt->segs[i].start, pt->segs[i].end - pt->segs[i].start,
				at_start && pt->segs[i].start == 0);
	return rc;
}

/* Metaspace: spaces become the replacement, which may be put in front. */
static int metaspace_piece(struct tok_pretok *pt, const struct step *st, const char *s, size_t n, bool at_start,
			   struct tok_pieces *out)
{
	/* Whether the text starts with the replacement once spaces are one. */
	bool starts = (n > 0 && s[0] == ' ') || (n >= st->repl_n && !memcmp(s, st->repl, st->repl_n));
	bool prepend = !starts && (st->prepend == PREPEND_ALWAYS || (st->prepend == PREPEND_FIRST && at_start));
	struct tok_buf *w = &pt->rewrite;
	w->n = 0;
	int rc = prepend ? tok_buf_append(w, st->repl, st->repl_n) : 0;
	for (size_t i = 0, from = 0; i <= n && rc == 0; i++) {
		if (i < n && s[i] != ' ')
			continue;
		rc = tok_buf_append(w, s + from, i - from);
		if (rc == 0 && i < n)
			rc = tok_buf_append(w, st->repl, st->repl_n);
		from = i + 1;
	}
	if (rc < 0)
		return rc;
	if (st->re)
		return split_piece(pt, st, w->p, w->n, at_start, out);
	return push_piece(out, NULL, 0, w->p, w->n, at_start);
}

int tok_pretok_apply(struct tok_pretok *pt, const char *s, size_t n, bool at_start, const struct tok_pieces **out)
{
	struct tok_pieces *cur = &pt->buf[0];
	cur->n = cur->text.n = 0;
	int rc = push_piece(cur, NULL, 0, s, n, at_start);
	for (size_t k = 0; k < pt->n && rc == 0; k++) {
		const struct step *st = &pt->steps[k];
		struct tok_pieces *next = &pt->buf[(k + 1) % 2];
		next->n = next->text.n = 0;
		for (size_t i = 0; i < cur->n && rc == 0; i++) {
			const struct tok_piece *p = &cur->v[i];
			const char *ps = cur->text.p + p->off;
			if (st->kind == STEP_SPLIT)
				rc = split_piece(pt, st, ps, p->len, p->at_start, next);
			else if (st->kind == STEP_METASPACE)
				rc = metaspace_piece(pt, st, ps, p->len, p->at_start, next);
			else /* ByteLevel's prefix space, on each piece */
				rc = push_piece(next, " ", ps[0] == ' ' ? 0 : 1, ps, p->len, p->at_start);
		}
		cur = next;
	}
	*out = cur;
	return rc;
}

void tok_pretok_free(struct tok_pretok *pt)
{
	if (!pt)
		return;
	for (size_t i = 0; i < pt->n; i++)
		tok_regex_free(pt->steps[i].re);
	free(pt->steps);
	for (int i = 0; i < 2; i++) {
		tok_buf_free(&pt->buf[i].text);
		free(pt->buf[i].v);
	}
	free(pt->segs);
	tok_buf_free(&pt->rewrite);
	free(pt);
}
