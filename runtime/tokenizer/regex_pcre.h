/* Internal: the pre-tokenizer's split regexes, through PCRE2 (UTF and
 * Unicode-property mode, JIT-compiled when the platform has it). Bytes that
 * are not UTF-8 never match (PCRE2_MATCH_INVALID_UTF), so they fall between
 * matches instead of failing the call. */
#ifndef SHMRT_TOK_REGEX_H
#define SHMRT_TOK_REGEX_H

#include <stddef.h>

enum {
	TOK_RE_LITERAL = 1u << 0,   /* the pattern is a plain string */
	/* '$' semantics of the engine the pattern was written for: tiktoken's
	 * Rust regex means the end of the text; HF's Oniguruma (Ruby syntax)
	 * means the end of a line. */
	TOK_RE_DOLLAR_END = 1u << 1,
	TOK_RE_DOLLAR_LINE = 1u << 2,
};

struct tok_regex;

/* file and where name the pattern in messages ("FILE: pre_tokenizer: ..."). */
int tok_regex_compile(const char *pattern, size_t len, unsigned flags, const char *file, const char *where,
		      struct tok_regex **out);

/* Finds the first non-empty match in s[0..n) at or after start. Returns 1 and
 * sets [*ms, *me), 0 when there is none, or -errno. Not thread-safe: one
 * match scratch per regex. */
int tok_regex_next(struct tok_regex *re, const char *s, size_t n, size_t start, size_t *ms, size_t *me);

void tok_regex_free(struct tok_regex *re);

#endif
