/* Normalizers of tokenizer.json (normalizer.h). HF's semantics, from its
 * normalizers module: Prepend adds its string to a non-empty text; Replace
 * rewrites every match of a string or regex; NFC/NFD/NFKC/NFKD are the
 * Unicode normalization forms. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "fail.h"
#include "normalizer.h"
#include "buf.h"
#include "regex_pcre.h"
#include "utf8.h"

enum step_kind { STEP_UNICODE, STEP_PREPEND, STEP_REPLACE };

struct step {
	enum step_kind kind;
	utf8proc_option_t form;  /* STEP_UNICODE */
	char *text;              /* Prepend's string, Replace's content */
	size_t text_n;
	struct tok_regex *re;    /* STEP_REPLACE */
};

struct tok_normalizer {
	struct step *steps;
	size_t n;
	struct tok_buf buf[2];
};

static int add_step(struct tok_normalizer *nz, json_t *j, struct tok_json_at at);

static int add_item(void *nz, json_t *j, struct tok_json_at at)
{
	return add_step(nz, j, at);
}

static int add_sequence(struct tok_normalizer *nz, json_t *j, struct tok_json_at at)
{
	return tok_json_sequence(j, "normalizers", at, add_item, nz);
}

static int copy_text(struct step *st, const char *s, size_t n, struct tok_json_at at)
{
	st->text = malloc(n + 1);
	if (!st->text)
		return shmrt_fail(ENOMEM, "%s: %s: out of memory", at.file, at.where);
	memcpy(st->text, s, n);
	st->text_n = n;
	return 0;
}

static int parse_replace(struct step *st, json_t *j, struct tok_json_at at)
{
	const char *pat, *content;
	size_t pat_n, content_n;
	bool is_regex;
	int rc = tok_json_pattern(j, at, &pat, &pat_n, &is_regex);
	if (rc == 0)
		rc = tok_json_string(j, "content", at, &content, &content_n);
	if (rc == 0)
		rc = copy_text(st, content, content_n, at);
	if (rc == 0 && pat_n == 0)
		rc = shmrt_fail(EINVAL, "%s: %s: Replace with an empty pattern", at.file, at.where);
	if (rc == 0)
		rc = tok_regex_compile(pat, pat_n, is_regex ? TOK_RE_DOLLAR_LINE : TOK_RE_LITERAL, at.file, at.where,
				       &st->re);
	return rc;
}

static int add_step(struct tok_normalizer *nz, json_t *j, struct tok_json_at at)
{
	const char *type;
	int rc = tok_json_type(j, at, &type);
	if (rc < 0)
		return rc;
	if (!strcmp(type, "Sequence"))
		return add_sequence(nz, j, at);
	struct step *steps = realloc(nz->steps, (nz->n + 1) * sizeof(*steps));
	if (!steps)
		return shmrt_fail(ENOMEM, "%s: %s: out of memory", at.file, at.where);
	nz->steps = steps;
	struct step *st = &steps[nz->n++];
	*st = (struct step){.kind = STEP_UNICODE};
	if (!strcmp(type, "NFC"))
		st->form = UTF8PROC_COMPOSE;
	else if (!strcmp(type, "NFD"))
		st->form = UTF8PROC_DECOMPOSE;
	else if (!strcmp(type, "NFKC"))
		st->form = UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
	else if (!strcmp(type, "NFKD"))
		st->form = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
	else if (!strcmp(type, "Prepend")) {
		const char *s;
		size_t n;
		st->kind = STEP_PREPEND;
		rc = tok_json_string(j, "prepend", at, &s, &n);
		if (rc == 0)
			rc = copy_text(st, s, n, at);
	} else if (!strcmp(type, "Replace")) {
		st->kind = STEP_REPLACE;
		rc = parse_replace(st, j, at);
	} else {
		nz->n--;
		rc = shmrt_fail(ENOTSUP, "%s: %s: normalizer type \"%s\" is not supported "
				"(NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence are)", at.file, at.where, type);
	}
	return rc;
}

int tok_normalizer_parse(json_t *j, struct tok_json_at at, struct tok_normalizer **out)
{
	*out = NULL;
	if (!j || json_is_null(j))
		return 0;
	struct tok_normalizer *nz = calloc(1, sizeof(*nz));
	if (!nz)
		return shmrt_fail(ENOMEM, "%s: out of memory", at.file);
	int rc = add_step(nz, j, at);
	if (rc < 0) {
		tok_normalizer_free(nz);
		return rc;
	}
	*out = nz;
	return 0;
}

/* One Unicode normalization form over the well-formed runs of s; ASCII is
 * already in every form. */
static int unicode_form(utf8proc_option_t form, const char *s, size_t n, struct tok_buf *out)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;
	int rc = 0;
	while (i < n && rc == 0) {
		size_t start = i;
		bool ascii = true;
		uint32_t cp;
		int k;
		while (i < n && (k = tok_utf8_scan(p + i, n - i, &cp)) > 0) {
			ascii &= k == 1;
			i += (size_t)k;
		}
		if (ascii) {
			rc = tok_buf_append(out, s + start, i - start);
		} else {
			utf8proc_uint8_t *dst;
			utf8proc_ssize_t m = utf8proc_map(p + start, (utf8proc_ssize_t)(i - start), &dst,
							  UTF8PROC_STABLE | form);
			if (m < 0)
				return shmrt_fail(ENOMEM, "tokenizer: Unicode normalization failed: %s",
						  utf8proc_errmsg(m));
			rc = tok_buf_append(out, dst, (size_t)m);
			free(dst);
		}
		if (rc == 0 && i < n) /* a byte that is not UTF-8 */
			rc = tok_buf_append(out, s + i++, 1);
	}
	return rc;
}

static int replace(struct step *st, const char *s, size_t n, struct tok_buf *out)
{
	size_t at = 0, ms, me;
	int rc;
	while ((rc = tok_regex_next(st->re, s, n, at, &ms, &me)) == 1) {
		if ((rc = tok_buf_append(out, s + at, ms - at)) < 0 ||
		    (rc = tok_buf_append(out, st->text, st->text_n)) < 0)
			return rc;
		at = me;
	}
	return rc < 0 ? rc : tok_buf_append(out, s + at, n - at);
}

int tok_normalize(struct tok_normalizer *nz, const char *s, size_t n, const char **res, size_t *res_n)
{
	for (size_t i = 0; nz && i < nz->n; i++) {
		struct step *st = &nz->steps[i];
		struct tok_buf *out = &nz->buf[i % 2];
		out->n = 0;
		int rc = 0;
		if (st->kind == STEP_UNICODE)
			rc = unicode_form(st->form, s, n, out);
		else if (st->kind == STEP_PREPEND && n > 0)
			rc = tok_buf_append(out, st->text, st->text_n);
		else if (st->kind == STEP_REPLACE)
			rc = replace(st, s, n, out);
		if (rc == 0 && st->kind == STEP_PREPEND)
			rc = tok_buf_append(out, s, n);
		if (rc < 0)
			return rc;
		s = out->p ? out->p : "";
		n = out->n;
	}
	*res = s;
	*res_n = n;
	return 0;
}

void tok_normalizer_free(struct tok_normalizer *nz)
{
	if (!nz)
		return;
	for (size_t i = 0; i < nz->n; i++) {
		free(nz->steps[i].text);
		tok_regex_free(nz->steps[i].re);
	}
	free(nz->steps);
	tok_buf_free(&nz->buf[0]);
	tok_buf_free(&nz->buf[1]);
	free(nz);
}
