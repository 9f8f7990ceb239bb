/* Tokenizer handles: loading (dispatch to tokenizer_json.c, tiktoken.c or
 * gguf_vocab.c),
 * the encode pipeline, decoding and lookups (shmrt/tokenizer.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "gguf.h"
#include "shmrt/tokenizer.h"
#include "tokenizer_impl.h"
#include "utf8.h"

/* Llama 3's tokenizer.json is 9 MB; a file past this is not a tokenizer. */
#define MAX_FILE_BYTES (1u << 30)

static int read_file(const char *path, char **out, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shmrt_fail(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	char *buf = NULL;
	size_t done = 0;
	if (fstat(fd, &st) < 0)
		rc = shmrt_fail(errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = shmrt_fail(EINVAL, "%s: not a regular file", path);
	else if ((uint64_t)st.st_size > MAX_FILE_BYTES)
		rc = shmrt_fail(EFBIG, "%s: %lld bytes is too large for a tokenizer", path, (long long)st.st_size);
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = shmrt_fail(ENOMEM, "%s: no memory for %lld bytes", path, (long long)st.st_size);
	while (rc == 0 && done < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = shmrt_fail(r < 0 ? errno : EIO, "%s: read: %s", path, r < 0 ? strerror(errno) : "file shrank");
		else
			done += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[done] = '\0';
	*out = buf;
	*n = done;
	return 0;
}

static bool looks_like_json(const char *s, size_t n)
{
	size_t i = 0;
	if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) /* a UTF-8 byte order mark */
		i = 3;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i < n && s[i] == '{';
}

/* The string HF's decoder gets for id: its token, except that an added
 * token with normalized set is decoded in its normalized form (HF keeps that
 * form as the token: Llama 2's Prepend/Replace turn "New York" into
 * "▁New▁York", which decodes with its leading space). */
const char *tok_decode_string(const struct shmrt_tokenizer *tok, int32_t id, size_t *len)
{
	int32_t a = id >= 0 && id < tok->vocab_size ? tok->added_at[id] : -1;
	if (a < 0 || !tok->added.v[a].normalized || !tok->added.v[a].match)
		return shmrt_tokenizer_token(tok, id, len);
	*len = tok->added.v[a].match_n;
	return tok->added.v[a].match;
}

/* What every loader leaves to here: the id range, special flags, added
 * token search tables, and the bytes each id decodes to. */
static int finish(struct shmrt_tokenizer *tok)
{
	int32_t n = tok->bpe.vocab.n;
	for (size_t i = 0; i < tok->added.n; i++)
		if (tok->added.v[i].id >= n)
			n = tok->added.v[i].id + 1;
	tok->vocab_size = n;
	tok->special = calloc((size_t)n + 1, 1);
	tok->byte_token = calloc((size_t)n + 1, 1);
	tok->added_at = malloc(((size_t)n + 1) * sizeof(*tok->added_at));
	if (!tok->special || !tok->byte_token || !tok->added_at)
		return shmrt_fail(ENOMEM, "%s: out of memory", tok->path);
	for (int32_t id = 0; id < n; id++)
		tok->added_at[id] = -1;
	for (size_t i = 0; i < tok->added.n; i++) {
		tok->special[tok->added.v[i].id] |= tok->added.v[i].special;
		tok->added_at[tok->added.v[i].id] = (int32_t)i;
	}
	int rc = tok_added_index(&tok->added, tok->norm);
	if (rc == 0)
		rc = tok_vocab_init(&tok->pieces, n);
	struct tok_buf piece = {0};
	for (int32_t id = 0; id < n && rc == 0; id++) {
		size_t len;
		const char *s = tok_decode_string(tok, id, &len);
		int kind = tok->piece_kind && id < tok->bpe.vocab.n ? tok->piece_kind[id] : TOK_PIECE_DECODER;
		piece.n = 0;
		if (s && kind == TOK_PIECE_DECODER && (rc = tok_decoder_piece(&tok->dec, s, len, false, &piece)) == 0)
			rc = tok_vocab_set(&tok->pieces, id, piece.p ? piece.p : "", piece.n);
		else if (s && rc == 0)
			rc = tok_vocab_set(&tok->pieces, id, s, kind == TOK_PIECE_VERBATIM ? len : 0);
		tok->byte_token[id] = s && kind == TOK_PIECE_DECODER && tok_decoder_byte(&tok->dec, s, len) >= 0;
	}
	tok_buf_free(&piece);
	return rc;
}

static int new_handle(const char *name, struct shmrt_tokenizer **out)
{
	struct shmrt_tokenizer *tok = calloc(1, sizeof(*tok));
	if (!tok || !(tok->path = strdup(name))) {
		free(tok);
		return shmrt_fail(ENOMEM, "%s: out of memory", name);
	}
	tok->eos_id = -1;
	*out = tok;
	return 0;
}

/* After a loader: finish, or free the handle on an error. */
static int done(struct shmrt_tokenizer *tok, int rc, struct shmrt_tokenizer **out)
{
	if (rc == 0)
		rc = finish(tok);
	if (rc < 0) {
		shmrt_tokenizer_free(tok);
		return rc;
	}
	*out = tok;
	return 0;
}

static int load_gguf(struct shmrt_tokenizer *tok, struct shmrt_gguf *g, const char *pattern)
{
	int rc = pattern ? shmrt_fail(EINVAL, "%s: a pattern is for tiktoken files; a GGUF file names its own",
				      tok->path) : tok_load_gguf(tok, g);
	shmrt_gguf_close(g);
	return rc;
}

int tok_load_buffer(const char *name, const char *text, size_t n, const char *pattern, struct shmrt_tokenizer **out)
{
	struct shmrt_tokenizer *tok = NULL;
	int rc = new_handle(name, &tok);
	if (rc < 0)
		return rc;
	struct shmrt_gguf *g;
	if (n >= 4 && !memcmp(text, "GGUF", 4))
		rc = (rc = shmrt_gguf_parse(text, n, name, true, &g)) < 0 ? rc : load_gguf(tok, g, pattern);
	else if (looks_like_json(text, n) && pattern)
		rc = shmrt_fail(EINVAL, "%s: a pattern is for tiktoken files; a tokenizer.json has its own", name);
	else if (looks_like_json(text, n))
		rc = tok_load_json(tok, text, n);
	else if (!pattern)
		rc = shmrt_fail(EINVAL, "%s: not JSON; a tiktoken rank file needs a pattern "
				"(gpt2, cl100k, o200k or llama3)", name);
	else
		rc = tok_load_tiktoken(tok, text, n, pattern);
	return done(tok, rc, out);
}

/* A GGUF file is mapped, not read: its tensors may be gigabytes. */
static int load_gguf_file(const char *path, const char *pattern, struct shmrt_tokenizer **out)
{
	struct shmrt_tokenizer *tok = NULL;
	struct shmrt_gguf *g = NULL;
	int rc = new_handle(path, &tok);
	if (rc < 0)
		return rc;
	rc = shmrt_gguf_open(path, &g);
	return done(tok, rc < 0 ? rc : load_gguf(tok, g, pattern), out);
}

int shmrt_tokenizer_load(const char *path, const char *pattern, struct shmrt_tokenizer **out)
{
	shmrt_clear_error();
	if (!path || !out)
		return shmrt_fail(EINVAL, "shmrt_tokenizer_load: path and out are required");
	if (shmrt_gguf_is_gguf(path))
		return load_gguf_file(path, pattern, out);
	char *text = NULL;
	size_t n = 0;
	int rc = read_file(path, &text, &n);
	if (rc == 0)
		rc = tok_load_buffer(path, text, n, pattern, out);
	free(text);
	return rc;
}

void shmrt_tokenizer_free(struct shmrt_tokenizer *tok)
{
	if (!tok)
		return;
	free(tok->path);
	tok_bpe_free(&tok->bpe);
	tok_added_free(&tok->added);
	tok_normalizer_free(tok->norm);
	tok_pretok_free(tok->pretok);
	tok_decoder_free(&tok->dec);
	tok_ids_free(&tok->prefix);
	tok_ids_free(&tok->suffix);
	free(tok->special);
	free(tok->byte_token);
	free(tok->added_at);
	free(tok->piece_kind);
	free(tok->chat_template);
	tok_vocab_free(&tok->pieces);
	free(tok->raw_spans.v);
	free(tok->norm_spans.v);
	tok_ids_free(&tok->ids);
	free(tok);
}

/* Text between added tokens: normalize, find the normalized added tokens,
 * split, merge. at_start: s begins the input. */
static int encode_text(struct shmrt_tokenizer *tok, const char *s, size_t n, bool at_start, bool skip_special)
{
	const char *ns;
	size_t nn;
	int rc = tok_normalize(tok->norm, s, n, &ns, &nn);
	if (rc == 0)
		rc = tok_added_split(&tok->added, true, skip_special, ns, nn, &tok->norm_spans);
	for (size_t i = 0; i < tok->norm_spans.n && rc == 0; i++) {
		const struct tok_span *sp = &tok->norm_spans.v[i];
		const struct tok_pieces *ps;
		if (sp->id >= 0) {
			rc = tok_ids_push(&tok->ids, sp->id);
			continue;
		}
		rc = tok_pretok_apply(tok->pretok, ns + sp->off, sp->len, at_start && sp->off == 0, &ps);
		for (size_t k = 0; k < ps->n && rc == 0; k++)
			rc = tok_bpe_encode(&tok->bpe, ps->text.p + ps->v[k].off, ps->v[k].len, &tok->ids);
	}
	return rc;
}

int shmrt_tokenizer_encode(struct shmrt_tokenizer *tok, const char *text, size_t len, unsigned flags,
			   int32_t *ids, size_t cap)
{
	shmrt_clear_error();
	if (!tok || (!text && len) || (!ids && cap))
		return shmrt_fail(EINVAL, "shmrt_tokenizer_encode: a tokenizer, the text and room for ids are required");
	if (len > INT32_MAX)
		return shmrt_fail(E2BIG, "shmrt_tokenizer_encode: %zu bytes of text is too much at once", len);
	bool skip_special = flags & SHMRT_ENCODE_SPECIAL_AS_TEXT;
	tok->ids.n = 0;
	int rc = 0;
	if (flags & SHMRT_ENCODE_ADD_SPECIAL)
		rc = tok_ids_append(&tok->ids, tok->prefix.v, tok->prefix.n);
	if (rc == 0)
		rc = tok_added_split(&tok->added, false, skip_special, text ? text : "", len, &tok->raw_spans);
	for (size_t i = 0; i < tok->raw_spans.n && rc == 0; i++) {
		const struct tok_span *sp = &tok->raw_spans.v[i];
		if (sp->id >= 0)
			rc = tok_ids_push(&tok->ids, sp->id);
		else
			rc = encode_text(tok, text + sp->off, sp->len, sp->off == 0, skip_special);
	}
	if (rc == 0 && (flags & SHMRT_ENCODE_ADD_SPECIAL))
		rc = tok_ids_append(&tok->ids, tok->suffix.v, tok->suffix.n);
	if (rc < 0)
		return rc;
	if (tok->ids.n > INT_MAX)
		return shmrt_fail(EOVERFLOW, "shmrt_tokenizer_encode: %zu ids do not fit an int", tok->ids.n);
	if (cap && tok->ids.n)
		memcpy(ids, tok->ids.v, (tok->ids.n < cap ? tok->ids.n : cap) * sizeof(*ids));
	return (int)tok->ids.n;
}

int32_t shmrt_tokenizer_vocab_size(const struct shmrt_tokenizer *tok)
{
	return tok->vocab_size;
}

int32_t shmrt_tokenizer_token_id(const struct shmrt_tokenizer *tok, const char *token, size_t len)
{
	for (size_t i = 0; i < tok->added.n; i++)
		if (tok->added.v[i].len == len && !memcmp(tok->added.v[i].content, token, len))
			return tok->added.v[i].id;
	int32_t id = tok_vocab_find(&tok->bpe.vocab, token, len);
	return id >= 0 ? id : -ENOENT;
}

const char *shmrt_tokenizer_token(const struct shmrt_tokenizer *tok, int32_t id, size_t *len)
{
	if (id < 0 || id >= tok->vocab_size)
		return NULL;
	int32_t a = tok->added_at[id];
	if (a < 0)
		return tok_vocab_get(&tok->bpe.vocab, id, len);
	if (len)
		*len = tok->added.v[a].len;
	return tok->added.v[a].content;
}

int shmrt_tokenizer_is_special(const struct shmrt_tokenizer *tok, int32_t id)
{
	return id >= 0 && id < tok->vocab_size && tok->special[id];
}

int shmrt_tokenizer_special_ids(const struct shmrt_tokenizer *tok, int32_t *ids, size_t cap)
{
	int count = 0;
	for (int32_t id = 0; id < tok->vocab_size; id++)
		if (tok->special[id] && (size_t)count++ < cap)
			ids[count - 1] = id;
	return count;
}

int32_t shmrt_tokenizer_bos_id(const struct shmrt_tokenizer *tok)
{
	return tok->prefix.n ? tok->prefix.v[0] : -ENOENT;
}

int32_t shmrt_tokenizer_eos_id(const struct shmrt_tokenizer *tok)
{
	return tok->eos_id >= 0 ? tok->eos_id : -ENOENT;
}

int shmrt_tokenizer_chat_template(const struct shmrt_tokenizer *tok, const char **tmpl, size_t *len)
{
	if (!tok || !tok->chat_template)
		return -ENOENT;
	if (tmpl)
		*tmpl = tok->chat_template;
	if (len)
		*len = tok->chat_template_n;
	return 0;
}
