/* tokenizer.json as GGUF tokenizer metadata (quantize_vocab.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantize_vocab.h"
#include "fail.h"
#include "json_file.h"

/* llama.cpp's llama_token_type (gguf.TokenType). */
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5 };

struct vocab {
	int n;
	const char **str;
	size_t *len;
	int32_t *type;
	char (*pad)[24]; /* "[PAD<id>]" of the ids without a token */
};

static int put_token(struct vocab *v, const char *path, json_int_t id, const char *s, int32_t type)
{
	if (id < 0 || id >= v->n)
		return shmrt_fail(EINVAL, "%s: token id %lld is outside the model's vocabulary of %d", path,
				  (long long)id, v->n);
	v->str[id] = s;
	v->len[id] = strlen(s);
	v->type[id] = type;
	return 0;
}

static int read_tokens(json_t *doc, const char *path, struct vocab *v)
{
	json_t *vocab = json_object_get(json_object_get(doc, "model"), "vocab"), *added = json_object_get(doc, "added_tokens");
	const char *key;
	json_t *val;
	int rc = 0;
	json_object_foreach(vocab, key, val)
	{
		if (!rc)
			rc = put_token(v, path, json_integer_value(val), key, TOKEN_NORMAL);
	}
	size_t i;
	json_array_foreach(added, i, val)
	{
		const char *s = json_string_value(json_object_get(val, "content"));
		if (!rc && s)
			rc = put_token(v, path, json_integer_value(json_object_get(val, "id")), s,
				       json_is_true(json_object_get(val, "special")) ? TOKEN_CONTROL : TOKEN_USER_DEFINED);
	}
	for (int id = 0; !rc && id < v->n; id++)
		if (!v->str[id]) {
			snprintf(v->pad[id], sizeof(v->pad[id]), "[PAD%d]", id);
			v->str[id] = v->pad[id];
			v->len[id] = strlen(v->pad[id]);
			v->type[id] = TOKEN_UNUSED;
		}
	return rc;
}

/* Merges as "a b": tokenizer.json has them so, or as ["a", "b"] pairs. */
static int add_merges(json_t *doc, const char *path, struct shmrt_gguf_writer *w)
{
	json_t *merges = json_object_get(json_object_get(doc, "model"), "merges"), *m;
	size_t n = json_array_size(merges), i;
	const char **str = calloc(n + 1, sizeof(*str));
	size_t *len = calloc(n + 1, sizeof(*len));
	char **owned = calloc(n + 1, sizeof(*owned));
	int rc = str && len && owned ? 0 : shmrt_fail(ENOMEM, "no memory for %zu merges", n);
	json_array_foreach(merges, i, m)
	{
		if (rc)
			break;
		if (json_is_string(m)) {
			str[i] = json_string_value(m);
		} else if (json_array_size(m) == 2 && json_is_string(json_array_get(m, 0))) {
			const char *a = json_string_value(json_array_get(m, 0)), *b = json_string_value(json_array_get(m, 1));
			if (!b || !(owned[i] = malloc(strlen(a) + strlen(b) + 2)))
				rc = shmrt_fail(EINVAL, "%s: merge %zu is not two strings", path, i);
			else
				sprintf(owned[i], "%s %s", a, b), str[i] = owned[i];
		} else
			rc = shmrt_fail(EINVAL, "%s: merge %zu is neither \"a b\" nor [a, b]", path, i);
		if (!rc)
			len[i] = strlen(str[i]);
	}
	if (!rc)
		rc = shmrt_gguf_add_str_array(w, "tokenizer.ggml.merges", n, str, len);
	for (i = 0; owned && i < n; i++)
		free(owned[i]);
	free(owned);
	free(str);
	free(len);
	return rc;
}

/* llama.cpp's name of the pre-tokenizer (llama-vocab.cpp's table). */
static const char *pre_name(json_t *doc)
{
	json_t *pre = json_object_get(doc, "pre_tokenizer");
	const char *type = json_string_value(json_object_get(pre, "type"));
	if (type && !strcmp(type, "ByteLevel") && !json_is_false(json_object_get(pre, "use_regex")))
		return "gpt-2";
	return "default";
}

/* add_bos_token / add_eos_token: whether the post-processor's template
 * for one sequence starts / ends with a special token, as llama.cpp's
 * gguf-py SpecialVocab reads tokenizer.json. */
static int add_bos_eos(json_t *doc, struct shmrt_gguf_writer *w)
{
	json_t *post = json_object_get(doc, "post_processor");
	const char *type = json_string_value(json_object_get(post, "type"));
	json_t *single = type && !strcmp(type, "TemplateProcessing") ? json_object_get(post, "single") : NULL;
	size_t n = json_array_size(single);
	bool bos = n && json_object_get(json_array_get(single, 0), "SpecialToken"),
	     eos = n > 1 && json_object_get(json_array_get(single, n - 1), "SpecialToken");
	int rc = shmrt_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", bos);
	return rc ? rc : shmrt_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", eos);
}

static int add_vocab(json_t *doc, const char *path, const struct shmrt_model_config *cfg,
		     struct shmrt_gguf_writer *w)
{
	struct vocab v = {.n = cfg->vocab_size};
	v.str = calloc((size_t)v.n, sizeof(*v.str));
	v.len = calloc((size_t)v.n, sizeof(*v.len));
	v.type = calloc((size_t)v.n, sizeof(*v.type));
	v.pad = calloc((size_t)v.n, sizeof(*v.pad));
	int rc = v.str && v.len && v.type && v.pad ? 0 : shmrt_fail(ENOMEM, "no memory for the vocabulary");
	if (!rc)
		rc = read_tokens(doc, path, &v);
	if (!rc)
		rc = shmrt_gguf_add_str_array(w, "tokenizer.ggml.tokens", (uint64_t)v.n, v.str, v.len);
	if (!rc)
		rc = shmrt_gguf_add_array(w, "tokenizer.ggml.token_type", SHMRT_GGUF_I32, (uint64_t)v.n, v.type);
	free(v.str);
	free(v.len);
	free(v.type);
	free(v.pad);
	return rc;
}

int quantize_vocab(const char *tokenizer_json, const struct shmrt_model_config *cfg, struct shmrt_gguf_writer *w)
{
	json_t *doc;
	int rc = shmrt_json_load_file(tokenizer_json, (size_t)1 << 30, &doc);
	if (rc)
		return rc;
	const char *type = json_string_value(json_object_get(json_object_get(doc, "model"), "type"));
	if (!type || strcmp(type, "BPE"))
		rc = shmrt_fail(ENOTSUP, "%s: a %s tokenizer; only BPE is written to GGUF", tokenizer_json,
				type ? type : "model-less");
	if (!rc)
		rc = shmrt_gguf_add_str(w, "tokenizer.ggml.model", "gpt2", 4);
	const char *pre = pre_name(doc);
	if (!rc)
		rc = shmrt_gguf_add_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
	if (!rc)
		rc = add_vocab(doc, tokenizer_json, cfg, w);
	if (!rc)
		rc = add_merges(doc, tokenizer_json, w);
	if (!rc)
		rc = add_bos_eos(doc, w);
	if (!rc && cfg->bos_token_id >= 0)
		rc = shmrt_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)cfg->bos_token_id);
	if (!rc && cfg->n_eos > 0)
		rc = shmrt_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)cfg->eos_token_ids[0]);
	json_decref(doc);
	return rc;
}
