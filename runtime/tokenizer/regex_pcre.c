/* Split regexes through PCRE2 (regex_pcre.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <pcre2.h>

#include "fail.h"
#include "regex_pcre.h"
#include "utf8.h"

struct tok_regex {
	pcre2_code *code;
	bool jit;  /* JIT-compiled: pcre2_jit_match skips the interpreter's per-call checks */
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
};

int tok_regex_compile(const char *pattern, size_t len, unsigned flags, const char *file, const char *where,
		      struct tok_regex **out)
{
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	/* PCRE2_LITERAL refuses the options that only patterns use (UCP). */
	opts |= flags & TOK_RE_LITERAL ? PCRE2_LITERAL : PCRE2_UCP;
	if (flags & TOK_RE_DOLLAR_END)
		opts |= PCRE2_DOLLAR_ENDONLY;
	if (flags & TOK_RE_DOLLAR_LINE)
		opts |= PCRE2_MULTILINE;
	int err;
	PCRE2_SIZE at;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &at, NULL);
	if (!code) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(err, msg, sizeof(msg));
		return shmrt_fail(EINVAL, "%s: %s: regex does not compile at offset %zu: %s", file, where, (size_t)at,
				  (char *)msg);
	}
	struct tok_regex *re = calloc(1, sizeof(*re));
	if (!re) {
		pcre2_code_free(code);
		return shmrt_fail(ENOMEM, "%s: out of memory", file);
	}
	re->code = code;
	re->md = pcre2_match_data_create_from_pattern(code, NULL);
	re->mctx = pcre2_match_context_create(NULL);
	if (!re->md || !re->mctx) {
		tok_regex_free(re);
		return shmrt_fail(ENOMEM, "%s: out of memory", file);
	}
	/* JIT is an optimisation: where it is missing or fails, the
	 * interpreter gives the same matches. Long runs of one class can need
	 * more than the default 32 KiB JIT stack; past 1 MiB, see below. */
	if (pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0) {
		re->jit = true;
		re->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
		if (re->jit_stack)
			pcre2_jit_stack_assign(re->mctx, NULL, re->jit_stack);
	}
	*out = re;
	return 0;
}

static int match_at(struct tok_regex *re, const char *s, size_t n, size_t start)
{
	int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, start, 0, re->md, re->mctx)
			 : pcre2_match(re->code, (PCRE2_SPTR)s, n, start, 0, re->md, re->mctx);
	/* A match too deep for the JIT stack: the interpreter keeps its
	 * backtracking on the heap. */
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_JIT, re->md, re->mctx);
	return rc;
}

int tok_regex_next(struct tok_regex *re, const char *s, size_t n, size_t start, size_t *ms, size_t *me)
{
	while (start < n) {
		int rc = match_at(re, s, n, start);
		if (rc == PCRE2_ERROR_NOMATCH)
			return 0;
		if (rc < 0) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(rc, msg, sizeof(msg));
			return shmrt_fail(EINVAL, "tokenizer: split regex failed on this text: %s", (char *)msg);
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
		if (ov[0] < ov[1]) {
			*ms = ov[0];
			*me = ov[1];
			return 1;
		}
		/* An empty match: go on after the character there, as the
		 * find-all loops of HF and tiktoken do. */
		uint32_t cp;
		int k = ov[1] < n ? tok_utf8_scan((const uint8_t *)s + ov[1], n - ov[1], &cp) : 1;
		size_t next = ov[1] + (k > 0 ? (size_t)k : 1);
		start = next > start ? next : start + 1;
	}
	return 0;
}

void tok_regex_free(struct tok_regex *re)
{
	if (!re)
		return;
	pcre2_match_data_free(re->md);
	pcre2_match_context_free(re->mctx);
	pcre2_jit_stack_free(re->jit_stack);
	pcre2_code_free(re->code);
	free(re);
}
