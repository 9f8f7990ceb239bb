/* Loading a tiktoken rank file: one "BASE64-TOKEN RANK" per line, the form
 * of OpenAI's *.tiktoken files and of Llama 3's tokenizer.model. tiktoken
 * merges the adjacent pair whose concatenation has the lowest rank; that is
 * BPE with, for every token, each split into two tokens as a merge of that
 * token's rank (bpe.c), and a piece that is a token taken whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "tokenizer_impl.h"
#include "array_size.h"

/* Split regexes. gpt2, cl100k and o200k: tiktoken_ext/openai_public.py
 * (r50k_pat_str, cl100k_base, o200k_base); llama3: Meta's llama3
 * tokenizer.py (Tokenizer.pat_str). */
static const char gpt2_pat[] =
	"'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s++$|\\s+(?!\\S)|\\s";
static const char cl100k_pat[] =
	"'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|"
	"\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";
static const char o200k_pat[] =
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
	"\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char llama3_pat[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	"\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct special {
	const char *text;
	int32_t id;
};

/* OpenAI's special tokens sit at fixed ids after their own rank tables
 * (openai_public.py); they are added only to a file of that table's size. */
static const struct special gpt2_specials[] = {{"<|endoftext|>", 50256}};
static const struct special cl100k_specials[] = {
	{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
	{"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276}};
static const struct special o200k_specials[] = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}};

static const struct pattern {
	const char *name, *regex;
	int32_t ranks;  /* size of the official rank table */
	const struct special *specials;
	size_t n_specials;
} patterns[] = {
	{"gpt2", gpt2_pat, 50256, gpt2_specials, 1},
	{"cl100k", cl100k_pat, 100256, cl100k_specials, 5},
	{"o200k", o200k_pat, 199998, o200k_specials, 2},
	{"llama3", llama3_pat, 0, NULL, 0},
};

/* Meta's llama3 tokenizer.py: 256 special tokens right after the ranks
 * (at len(ranks), which is the largest rank + 1 in a file without gaps),
 * these ten first, then <|reserved_special_token_5|> .. _250|>. Encoding
 * with bos=True puts <|begin_of_text|> first. */
static const char *const llama3_named[] = {
	"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
	"<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>",
	"<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"};
#define LLAMA3_SPECIALS 256

static int add_special(struct shmrt_tokenizer *tok, const char *text, int32_t id)
{
	struct tok_added t = {.content = (char *)text, .len = strlen(text), .id = id, .special = true};
	return tok_added_add(&tok->added, &t);
}

/* ranks: the number of ids the rank file spans. */
static int add_specials(struct shmrt_tokenizer *tok, const struct pattern *p, int32_t ranks)
{
	int rc = 0;
	if (!strcmp(p->name, "llama3")) {
		for (int i = 0; i < LLAMA3_SPECIALS && rc == 0; i++) {
			char name[64];
			if (i < 10)
				snprintf(name, sizeof(name), "%s", llama3_named[i]);
			else
				snprintf(name, sizeof(name), "<|reserved_special_token_%d|>", i - 5);
			rc = add_special(tok, name, ranks + i);
		}
		return rc < 0 ? rc : tok_ids_push(&tok->prefix, ranks);
	}
	for (size_t i = 0; i < p->n_specials && ranks == p->ranks && rc == 0; i++)
		rc = add_special(tok, p->specials[i].text, p->specials[i].id);
	return rc;
}

static int b64(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 with its '=' padding; out has room for n * 3 / 4 bytes.
 * Returns the decoded length, or -1. */
static long base64_decode(const char *s, size_t n, unsigned char *out)
{
	if (n == 0 || n % 4)
		return -1;
	size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0, o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = i + (size_t)k >= n - pad ? 0 : b64(s[i + (size_t)k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[o++] = (unsigned char)(w >> 16);
		out[o++] = (unsigned char)(w >> 8);
		out[o++] = (unsigned char)w;
	}
	return (long)(o - pad);
}

struct line {
	const char *tok, *rank;
	size_t tok_n, rank_n;
};

/* The next non-empty line's two fields; 0 at the end, -1 if malformed. */
static int next_line(const char **p, const char *end, struct line *l)
{
	const char *s = *p;
	while (s < end && (*s == '\n' || *s == '\r'))
		s++;
	if (s == end)
		return 0;
	const char *eol = memchr(s, '\n', (size_t)(end - s));
	eol = eol ? eol : end;
	*p = eol;
	const char *sp = memchr(s, ' ', (size_t)(eol - s));
	if (!sp)
		return -1;
	const char *r_end = eol > sp && eol[-1] == '\r' ? eol - 1 : eol;
	*l = (struct line){s, sp + 1, (size_t)(sp - s), (size_t)(r_end - sp - 1)};
	return 1;
}

static int parse_rank(const struct line *l, int32_t *out)
{
	long long v = 0;
	if (l->rank_n == 0 || l->rank_n > 9)
		return -1;
	for (size_t i = 0; i < l->rank_n; i++) {
		if (l->rank[i] < '0' || l->rank[i] > '9')
			return -1;
		v = v * 10 + (l->rank[i] - '0');
	}
	if (v >= TOK_MAX_VOCAB)
		return -1;
	*out = (int32_t)v;
	return 0;
}

/* Two passes: the largest rank sizes the table, then the tokens go in. */
static int load_ranks(struct shmrt_tokenizer *tok, const char *text, size_t n)
{
	const char *end = text + n, *p = text;
	struct line l;
	int32_t max = -1, rank = 0;
	size_t lineno = 0, longest = 0;
	int more;
	while ((more = next_line(&p, end, &l)) == 1) {
		lineno++;
		if (parse_rank(&l, &rank) < 0)
			return shmrt_fail(EINVAL, "%s: line %zu is not \"BASE64-TOKEN RANK\" with a rank below %d",
					  tok->path, lineno, TOK_MAX_VOCAB);
		max = rank > max ? rank : max;
		longest = l.tok_n > longest ? l.tok_n : longest;
	}
	if (more < 0 || max < 0)
		return shmrt_fail(EINVAL, "%s: %s", tok->path,
				  more < 0 ? "a line without \"BASE64-TOKEN RANK\"" : "no ranks in the file");
	/* tiktoken's files rank their n tokens 0..n-1, and Meta's special
	 * tokens follow at n; a gap would put them elsewhere (and a lone rank
	 * of 16 million would size every table for nothing). */
	if ((size_t)max + 1 != lineno)
		return shmrt_fail(EINVAL, "%s: %zu tokens ranked up to %d: the ranks must be 0..%zu without gaps",
				  tok->path, lineno, max, lineno - 1);
	unsigned char *bytes = malloc(longest + 4);
	int rc = bytes ? tok_vocab_init(&tok->bpe.vocab, max + 1) : shmrt_fail(ENOMEM, "%s: out of memory", tok->path);
	p = text;
	for (lineno = 1; rc == 0 && next_line(&p, end, &l) == 1; lineno++) {
		long len = base64_decode(l.tok, l.tok_n, bytes);
		parse_rank(&l, &rank);
		if (len <= 0)
			rc = shmrt_fail(EINVAL, "%s: line %zu: the token is not base64", tok->path, lineno);
		else if (tok_vocab_get(&tok->bpe.vocab, rank, NULL))
			rc = shmrt_fail(EINVAL, "%s: line %zu: rank %d is given twice", tok->path, lineno, rank);
		else
			rc = tok_vocab_set(&tok->bpe.vocab, rank, bytes, (size_t)len);
	}
	free(bytes);
	return rc < 0 ? rc : tok_vocab_index(&tok->bpe.vocab);
}

/* Every split of a token into two tokens merges at that token's rank. */
static int derive_merges(struct shmrt_tokenizer *tok)
{
	const struct tok_vocab *v = &tok->bpe.vocab;
	for (int32_t id = 0; id < v->n; id++) {
		size_t len;
		const char *s = tok_vocab_get(v, id, &len);
		if (s && tok_vocab_find(v, s, len) != id)
			return shmrt_fail(EINVAL, "%s: token of rank %d is given twice", tok->path, id);
		for (size_t k = 1; s && k < len; k++) {
			int32_t left = tok_vocab_find(v, s, k), right = tok_vocab_find(v, s + k, len - k);
			int rc = left >= 0 && right >= 0 ? tok_bpe_add_merge(&tok->bpe, left, right, (uint32_t)id, id) : 0;
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int tok_load_tiktoken(struct shmrt_tokenizer *tok, const char *text, size_t n, const char *pattern)
{
	const struct pattern *p = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(patterns); i++)
		if (!strcmp(pattern, patterns[i].name))
			p = &patterns[i];
	if (!p)
		return shmrt_fail(EINVAL, "%s: unknown pattern \"%s\" (gpt2, cl100k, o200k or llama3)", tok->path, pattern);
	int rc = load_ranks(tok, text, n);
	tok->bpe.unk_id = -1;
	tok->bpe.ignore_merges = true; /* tiktoken takes a piece that is a token whole */
	if (rc == 0)
		rc = tok_bpe_prepare(&tok->bpe, TOK_BPE_BYTES, false);
	for (int b = 0; b < 256 && rc == 0; b++)
		if (tok->bpe.byte_id[b] < 0)
			rc = shmrt_fail(EINVAL, "%s: byte 0x%02X has no rank, so some text could not be encoded",
					tok->path, b);
	if (rc == 0)
		rc = derive_merges(tok);
	if (rc == 0)
		rc = add_specials(tok, p, tok->bpe.vocab.n);
	if (rc == 0)
		rc = tok_pretok_regex(p->regex, tok->path, &tok->pretok);
	tok_decoder_raw(&tok->dec);
	return rc;
}
