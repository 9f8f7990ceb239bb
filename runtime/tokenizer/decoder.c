/* Decoders of tokenizer.json (decoder.h), after HF's decoders module:
 * ByteLevel maps a token's characters back to bytes (a token with a
 * character outside the table is kept as its UTF-8); Metaspace turns its
 * replacement into ' ', and drops it from the first token when it prepends;
 * Replace rewrites a string; ByteFallback turns <0xNN> into the byte; Fuse
 * joins (decoding one token at a time, there is nothing to do); Strip removes
 * leading copies of a character from the joined text (from each token when
 * nothing joined them before it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byte_level.h"
#include "fail.h"
#include "decoder.h"

static int add_replace(struct tok_decoder *d, const char *from, size_t from_n, const char *to, size_t to_n,
		       bool metaspace, struct tok_json_at at)
{
	struct tok_decoder_replace *v = realloc(d->replace, (d->replace_n + 1) * sizeof(*v));
	if (!v)
		return shmrt_fail(ENOMEM, "%s: %s: out of memory", at.file, at.where);
	d->replace = v;
	struct tok_decoder_replace *r = &v[d->replace_n];
	*r = (struct tok_decoder_replace){malloc(from_n + 1), malloc(to_n + 1), from_n, to_n, metaspace};
	if (!r->from || !r->to) {
		free(r->from);
		free(r->to);
		return shmrt_fail(ENOMEM, "%s: %s: out of memory", at.file, at.where);
	}
	memcpy(r->from, from, from_n);
	memcpy(r->to, to, to_n);
	d->replace_n++;
	return 0;
}

static int parse_metaspace(struct tok_decoder *d, json_t *j, struct tok_json_at at)
{
	const char *repl, *scheme = NULL;
	size_t n;
	bool prefix;
	int rc = tok_json_string(j, "replacement", at, &repl, &n);
	if (rc == 0)
		rc = tok_json_bool(j, "add_prefix_space", true, at, &prefix);
	if (rc == 0 && json_object_get(j, "prepend_scheme"))
		rc = tok_json_string(j, "prepend_scheme", at, &scheme, NULL);
	if (rc == 0 && n == 0)
		rc = shmrt_fail(EINVAL, "%s: %s.replacement must be one character", at.file, at.where);
	if (rc < 0)
		return rc;
	d->meta_first = scheme ? strcmp(scheme, "never") != 0 : prefix;
	return add_replace(d, repl, n, " ", 1, true, at);
}

static int parse_replace(struct tok_decoder *d, json_t *j, struct tok_json_at at)
{
	const char *pat, *content;
	size_t pat_n, content_n;
	bool is_regex;
	int rc = tok_json_pattern(j, at, &pat, &pat_n, &is_regex);
	if (rc == 0)
		rc = tok_json_string(j, "content", at, &content, &content_n);
	if (rc == 0 && (is_regex || pat_n == 0))
		rc = shmrt_fail(ENOTSUP, "%s: %s: a Replace decoder needs a non-empty String pattern", at.file,
				at.where);
	return rc < 0 ? rc : add_replace(d, pat, pat_n, content, content_n, false, at);
}

static int parse_strip(struct tok_decoder *d, json_t *j, bool fused, struct tok_json_at at)
{
	const char *content;
	long long start, stop;
	int rc = tok_json_string(j, "content", at, &content, &d->strip_n);
	if (rc == 0)
		rc = tok_json_int(j, "start", 0, 0, 1 << 20, at, &start);
	if (rc == 0)
		rc = tok_json_int(j, "stop", 0, 0, 1 << 20, at, &stop);
	if (rc == 0 && (d->strip_n == 0 || d->strip_n >= sizeof(d->strip)))
		rc = shmrt_fail(EINVAL, "%s: %s.content must be one character", at.file, at.where);
	/* Stripping the end would hold back every trailing character of a
	 * stream; no model we know needs it. */
	if (rc == 0 && stop != 0)
		rc = shmrt_fail(ENOTSUP, "%s: %s: a Strip decoder with stop > 0 is not supported", at.file, at.where);
	if (rc < 0)
		return rc;
	memcpy(d->strip, content, d->strip_n);
	d->strip_start = (unsigned)start;
	d->strip_each = !fused;
	return 0;
}

static int add(struct tok_decoder *d, json_t *j, bool *fused, struct tok_json_at at);

struct sequence {
	struct tok_decoder *d;
	bool *fused;
};

static int add_item(void *ctx, json_t *j, struct tok_json_at at)
{
	struct sequence *s = ctx;
	return add(s->d, j, s->fused, at);
}

static int add(struct tok_decoder *d, json_t *j, bool *fused, struct tok_json_at at)
{
	const char *type;
	int rc = tok_json_type(j, at, &type);
	if (rc < 0)
		return rc;
	if (!strcmp(type, "Sequence"))
		return tok_json_sequence(j, "decoders", at, add_item, &(struct sequence){d, fused});
	if (!strcmp(type, "ByteLevel")) {
		d->byte_level = *fused = true;
		return 0;
	}
	if (!strcmp(type, "ByteFallback")) {
		d->byte_fallback = true;
		return 0;
	}
	if (!strcmp(type, "Fuse")) {
		*fused = true;
		return 0;
	}
	if (!strcmp(type, "Metaspace"))
		return parse_metaspace(d, j, at);
	if (!strcmp(type, "Replace"))
		return parse_replace(d, j, at);
	if (!strcmp(type, "Strip"))
		return parse_strip(d, j, *fused, at);
	return shmrt_fail(ENOTSUP, "%s: %s: decoder type \"%s\" is not supported (ByteLevel, Metaspace, "
			  "Replace, ByteFallback, Fuse, Strip, Sequence are)", at.file, at.where, type);
}

int tok_decoder_parse(json_t *j, struct tok_json_at at, struct tok_decoder *d)
{
	*d = (struct tok_decoder){0};
	if (!j || json_is_null(j)) {
		d->join_space = true;
		return 0;
	}
	bool fused = false;
	return add(d, j, &fused, at);
}

void tok_decoder_raw(struct tok_decoder *d)
{
	*d = (struct tok_decoder){0};
}

bool tok_decoder_first_differs(const struct tok_decoder *d)
{
	return d->meta_first;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Rewrites s with one rule into out (cleared first). */
static int apply_replace(const struct tok_decoder_replace *r, bool first, const char *s, size_t n,
			 struct tok_buf *out)
{
	const char *to = r->to;
	size_t to_n = r->metaspace && first ? 0 : r->to_n;
	int rc = 0;
	out->n = 0;
	for (size_t i = 0; i < n && rc == 0;) {
		if (n - i >= r->from_n && !memcmp(s + i, r->from, r->from_n)) {
			rc = tok_buf_append(out, to, to_n);
			i += r->from_n;
		} else {
			rc = tok_buf_append(out, s + i++, 1);
		}
	}
	return rc;
}

int tok_decoder_byte(const struct tok_decoder *d, const char *s, size_t n)
{
	if (d->byte_fallback && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hex(s[3]) >= 0 && hex(s[4]) >= 0)
		return hex(s[3]) << 4 | hex(s[4]);
	return -1;
}

int tok_decoder_piece(const struct tok_decoder *d, const char *s, size_t n, bool first, struct tok_buf *out)
{
	int byte = tok_decoder_byte(d, s, n);
	if (byte >= 0) {
		char b = (char)byte;
		return tok_buf_append(out, &b, 1);
	}
	struct tok_buf tmp[2] = {{0}};
	int rc = 0;
	for (size_t i = 0; i < d->replace_n && rc == 0; i++) {
		rc = apply_replace(&d->replace[i], first && d->meta_first, s, n, &tmp[i % 2]);
		s = tmp[i % 2].p ? tmp[i % 2].p : "";
		n = tmp[i % 2].n;
	}
	if (rc == 0 && d->byte_level)
		rc = tok_byte_level_unmap(s, n, out);
	/* Not byte-level, or a character outside the table: the UTF-8 as is. */
	if (rc == 0)
		rc = tok_buf_append(out, s, n);
	else if (rc == 1)
		rc = 0;
	tok_buf_free(&tmp[0]);
	tok_buf_free(&tmp[1]);
	return rc;
}

void tok_decode_begin(const struct tok_decoder *d, struct tok_decode_state *st)
{
	st->emitted = 0;
	st->strip_left = d->strip_start;
}

int tok_decoder_emit(const struct tok_decoder *d, struct tok_decode_state *st, const char *piece, size_t n,
		     struct tok_buf *out)
{
	int rc = d->join_space && st->emitted ? tok_buf_append(out, " ", 1) : 0;
	unsigned strip = d->strip_each ? d->strip_start : st->strip_left;
	while (strip && d->strip_n && n >= d->strip_n && !memcmp(piece, d->strip, d->strip_n)) {
		piece += d->strip_n;
		n -= d->strip_n;
		strip--;
	}
	if (!d->strip_each)
		st->strip_left = n ? 0 : strip;
	st->emitted++;
	return rc < 0 ? rc : tok_buf_append(out, piece, n);
}

void tok_decoder_free(struct tok_decoder *d)
{
	for (size_t i = 0; i < d->replace_n; i++) {
		free(d->replace[i].from);
		free(d->replace[i].to);
	}
	free(d->replace);
	*d = (struct tok_decoder){0};
}
