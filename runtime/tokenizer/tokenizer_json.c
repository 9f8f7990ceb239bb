/* Loading a Hugging Face tokenizer.json (its layout: HF tokenizers'
 * serialization of Tokenizer: model, added_tokens, normalizer,
 * pre_tokenizer, post_processor, decoder). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "json_file.h"
#include "json_read.h"
#include "tokenizer_impl.h"

static int load_vocab(struct shmrt_tokenizer *tok, json_t *vocab, struct tok_json_at at)
{
	if (!json_is_object(vocab))
		return shmrt_fail(EINVAL, "%s: model.vocab must be an object of token: id", at.file);
	const char *key;
	size_t key_n;
	json_t *v;
	long long max = -1;
	json_object_keylen_foreach(vocab, key, key_n, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_VOCAB)
			return shmrt_fail(EINVAL, "%s: model.vocab[\"%.*s\"] must be an id in [0, %d)", at.file,
					  (int)(key_n < 64 ? key_n : 64), key, TOK_MAX_VOCAB);
		if (json_integer_value(v) > max)
			max = json_integer_value(v);
	}
	/* Ids are dense in real files; a few tokens with ids in the millions
	 * would size every per-id table for nothing. */
	if (max >= 4 * (long long)json_object_size(vocab) + 1024)
		return shmrt_fail(EINVAL, "%s: model.vocab has %zu tokens but ids up to %lld: ids must be nearly dense",
				  at.file, json_object_size(vocab), max);
	int rc = tok_vocab_init(&tok->bpe.vocab, (int32_t)(max + 1));
	json_object_keylen_foreach(vocab, key, key_n, v) {
		if (rc == 0)
			rc = tok_vocab_set(&tok->bpe.vocab, (int32_t)json_integer_value(v), key, key_n);
	}
	return rc < 0 ? rc : tok_vocab_index(&tok->bpe.vocab);
}

/* A merge is "left right" (one space: byte-level and SentencePiece tokens
 * never hold a plain space) or, in newer files, ["left", "right"]. */
static int merge_parts(json_t *m, const char **l, size_t *ln, const char **r, size_t *rn)
{
	if (json_is_string(m)) {
		const char *s = json_string_value(m), *sp = memchr(s, ' ', json_string_length(m));
		if (!sp || memchr(sp + 1, ' ', json_string_length(m) - (size_t)(sp + 1 - s)))
			return -1;
		*l = s;
		*ln = (size_t)(sp - s);
		*r = sp + 1;
		*rn = json_string_length(m) - *ln - 1;
	} else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
		   json_is_string(json_array_get(m, 1))) {
		*l = json_string_value(json_array_get(m, 0));
		*ln = json_string_length(json_array_get(m, 0));
		*r = json_string_value(json_array_get(m, 1));
		*rn = json_string_length(json_array_get(m, 1));
	} else {
		return -1;
	}
	return *ln && *rn ? 0 : -1;
}

static int load_merges(struct shmrt_tokenizer *tok, json_t *merges, struct tok_json_at at)
{
	if (!json_is_array(merges))
		return shmrt_fail(EINVAL, "%s: model.merges must be a list", at.file);
	const struct tok_vocab *vocab = &tok->bpe.vocab;
	struct tok_buf both = {0};
	size_t i;
	json_t *m;
	int rc = 0;
	json_array_foreach(merges, i, m) {
		const char *l, *r;
		size_t ln, rn;
		if (merge_parts(m, &l, &ln, &r, &rn) < 0) {
			rc = shmrt_fail(EINVAL, "%s: model.merges[%zu] is not \"left right\" or [\"left\", \"right\"]",
					at.file, i);
			break;
		}
		int32_t left = tok_vocab_find(vocab, l, ln), right = tok_vocab_find(vocab, r, rn);
		both.n = 0;
		if ((rc = tok_buf_append(&both, l, ln)) < 0 || (rc = tok_buf_append(&both, r, rn)) < 0)
			break;
		int32_t merged = tok_vocab_find(vocab, both.p, both.n);
		if (left < 0 || right < 0 || merged < 0) {
			const char *what = left < 0 ? l : right < 0 ? r : both.p;
			size_t what_n = left < 0 ? ln : right < 0 ? rn : both.n;
			rc = shmrt_fail(EINVAL, "%s: model.merges[%zu] refers to \"%.*s\", which is not in model.vocab",
					at.file, i, (int)(what_n < 64 ? what_n : 64), what);
			break;
		}
		if (i >= UINT32_MAX || (rc = tok_bpe_add_merge(&tok->bpe, left, right, (uint32_t)i, merged)) < 0)
			break;
	}
	tok_buf_free(&both);
	return rc;
}

static int load_model(struct shmrt_tokenizer *tok, json_t *model, struct tok_json_at at)
{
	if (!json_is_object(model))
		return shmrt_fail(EINVAL, "%s: \"model\" must be an object", at.file);
	json_t *type = json_object_get(model, "type");
	if (type && !json_is_string(type))
		return shmrt_fail(EINVAL, "%s: model.type must be a string", at.file);
	/* Old files leave the type out; HF then tells the models apart by their
	 * fields, and BPE is the one with merges. */
	if (type ? strcmp(json_string_value(type), "BPE") != 0 : !json_object_get(model, "merges"))
		return shmrt_fail(ENOTSUP, "%s: model type \"%s\" is not supported (only BPE is)", at.file,
				  type ? json_string_value(type) : "(none)");
	static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
	for (int i = 0; i < 2; i++) {
		json_t *a = json_object_get(model, affixes[i]);
		if (a && !json_is_null(a) && !(json_is_string(a) && json_string_length(a) == 0))
			return shmrt_fail(ENOTSUP, "%s: model.%s is not supported", at.file, affixes[i]);
	}
	struct tok_bpe *bpe = &tok->bpe;
	struct tok_json_at mat = {at.file, "model"};
	/* dropout is a training-time randomisation: inference never drops. */
	int rc = tok_json_bool(model, "fuse_unk", false, mat, &bpe->fuse_unk);
	if (rc == 0)
		rc = tok_json_bool(model, "byte_fallback", false, mat, &bpe->byte_fallback);
	if (rc == 0)
		rc = tok_json_bool(model, "ignore_merges", false, mat, &bpe->ignore_merges);
	if (rc == 0)
		rc = load_vocab(tok, json_object_get(model, "vocab"), at);
	bpe->unk_id = -1;
	json_t *unk = json_object_get(model, "unk_token");
	if (rc == 0 && unk && !json_is_null(unk)) {
		if (!json_is_string(unk))
			return shmrt_fail(EINVAL, "%s: model.unk_token must be a string or null", at.file);
		bpe->unk_id = tok_vocab_find(&bpe->vocab, json_string_value(unk), json_string_length(unk));
		if (bpe->unk_id < 0)
			return shmrt_fail(EINVAL, "%s: model.unk_token \"%s\" is not in model.vocab", at.file,
					  json_string_value(unk));
	}
	bool byte_level = tok_pretok_byte_level(tok->pretok);
	if (rc == 0)
		rc = tok_bpe_prepare(bpe, byte_level ? TOK_BPE_BYTES : TOK_BPE_CHARS, byte_level);
	if (rc == 0)
		rc = load_merges(tok, json_object_get(model, "merges"), at);
	return rc;
}

static int load_added(struct shmrt_tokenizer *tok, json_t *list, struct tok_json_at at)
{
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return shmrt_fail(EINVAL, "%s: added_tokens must be a list", at.file);
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a) {
		char where[64];
		struct tok_json_at aat = {at.file, tok_json_where(where, sizeof(where), "added_tokens", NULL, (long)i)};
		struct tok_added t = {0};
		long long id;
		if (!json_is_object(a))
			return shmrt_fail(EINVAL, "%s: %s must be an object", at.file, aat.where);
		int rc = tok_json_int(a, "id", -1, 0, TOK_MAX_VOCAB - 1, aat, &id);
		if (rc == 0 && id < 0)
			rc = shmrt_fail(EINVAL, "%s: %s has no id", at.file, aat.where);
		/* Added tokens extend the vocabulary: near its end, as in real files. */
		if (rc == 0 && id >= (long long)tok->bpe.vocab.n + 4 * (long long)json_array_size(list) + 1024)
			rc = shmrt_fail(EINVAL, "%s: %s.id %lld is far past the vocabulary's %d ids", at.file, aat.where,
					id, tok->bpe.vocab.n);
		if (rc == 0)
			rc = tok_json_string(a, "content", aat, (const char **)&t.content, &t.len);
		if (rc == 0 && t.len == 0)
			rc = shmrt_fail(EINVAL, "%s: %s.content is empty", at.file, aat.where);
		if (rc == 0)
			rc = tok_json_bool(a, "special", false, aat, &t.special);
		if (rc == 0)
			rc = tok_json_bool(a, "normalized", !t.special, aat, &t.normalized);
		if (rc == 0)
			rc = tok_json_bool(a, "single_word", false, aat, &t.single_word);
		if (rc == 0)
			rc = tok_json_bool(a, "lstrip", false, aat, &t.lstrip);
		if (rc == 0)
			rc = tok_json_bool(a, "rstrip", false, aat, &t.rstrip);
		t.id = (int32_t)id;
		if (rc == 0)
			rc = tok_added_add(&tok->added, &t);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The ids of TemplateProcessing's special token called name. */
static int template_ids(json_t *specials, const char *name, struct tok_ids *out, struct tok_json_at at)
{
	json_t *ids = json_object_get(json_object_get(specials, name), "ids");
	if (!json_is_array(ids))
		return shmrt_fail(EINVAL, "%s: %s: special token \"%s\" has no ids", at.file, at.where, name);
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_VOCAB)
			return shmrt_fail(EINVAL, "%s: %s: special token \"%s\" has a bad id", at.file, at.where, name);
		int rc = tok_ids_push(out, (int32_t)json_integer_value(v));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* TemplateProcessing's "single": special tokens before $A go first, the
 * ones after it last. */
static int load_template(struct shmrt_tokenizer *tok, json_t *p, struct tok_json_at at)
{
	json_t *single, *item, *specials = json_object_get(p, "special_tokens");
	int rc = tok_json_array(p, "single", at, &single);
	bool after = false;
	size_t i;
	json_array_foreach(single, i, item) {
		json_t *sp = json_object_get(item, "SpecialToken"), *seq = json_object_get(item, "Sequence");
		const char *name = json_string_value(json_object_get(sp, "id"));
		if (rc < 0)
			break;
		if (seq)
			after = true;
		else if (name)
			rc = template_ids(specials, name, after ? &tok->suffix : &tok->prefix, at);
		else
			rc = shmrt_fail(EINVAL, "%s: %s.single[%zu] is neither a SpecialToken nor a Sequence", at.file,
					at.where, i);
	}
	return rc;
}

/* Bert/RobertaProcessing: [CLS] text [SEP], each given as ["token", id]. */
static int load_cls_sep(struct shmrt_tokenizer *tok, json_t *p, struct tok_json_at at)
{
	json_t *cls = json_array_get(json_object_get(p, "cls"), 1), *sep = json_array_get(json_object_get(p, "sep"), 1);
	if (!json_is_integer(cls) || !json_is_integer(sep) || json_integer_value(cls) < 0 ||
	    json_integer_value(sep) < 0 || json_integer_value(cls) >= TOK_MAX_VOCAB ||
	    json_integer_value(sep) >= TOK_MAX_VOCAB)
		return shmrt_fail(EINVAL, "%s: %s: cls and sep must be [\"token\", id]", at.file, at.where);
	int rc = tok_ids_push(&tok->prefix, (int32_t)json_integer_value(cls));
	return rc < 0 ? rc : tok_ids_push(&tok->suffix, (int32_t)json_integer_value(sep));
}

static int load_post(struct shmrt_tokenizer *tok, json_t *p, struct tok_json_at at);

static int load_post_item(void *tok, json_t *p, struct tok_json_at at)
{
	return load_post(tok, p, at);
}

static int load_post(struct shmrt_tokenizer *tok, json_t *p, struct tok_json_at at)
{
	if (!p || json_is_null(p))
		return 0;
	const char *type;
	int rc = tok_json_type(p, at, &type);
	if (rc < 0)
		return rc;
	if (!strcmp(type, "Sequence"))
		return tok_json_sequence(p, "processors", at, load_post_item, tok);
	if (!strcmp(type, "TemplateProcessing"))
		return load_template(tok, p, at);
	if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing"))
		return load_cls_sep(tok, p, at);
	if (!strcmp(type, "ByteLevel")) /* offsets only */
		return 0;
	return shmrt_fail(ENOTSUP, "%s: %s: post-processor type \"%s\" is not supported", at.file, at.where, type);
}

/* Every id the post-processor adds must have a token. */
static int check_post_ids(struct shmrt_tokenizer *tok, const struct tok_ids *ids)
{
	for (size_t i = 0; i < ids->n; i++) {
		bool added = false;
		for (size_t k = 0; k < tok->added.n; k++)
			added |= tok->added.v[k].id == ids->v[i];
		if (!added && !tok_vocab_get(&tok->bpe.vocab, ids->v[i], NULL))
			return shmrt_fail(EINVAL, "%s: post_processor adds token id %d, which has no token", tok->path,
					  ids->v[i]);
	}
	return 0;
}

int tok_load_json(struct shmrt_tokenizer *tok, const char *text, size_t n)
{
	json_t *root;
	int rc = shmrt_json_parse(text, n, tok->path, &root);
	if (rc < 0)
		return rc;
	const char *f = tok->path;
	if (!json_is_object(root))
		rc = shmrt_fail(EINVAL, "%s: not a tokenizer.json (the top level is not an object)", f);
	if (rc == 0)
		rc = tok_normalizer_parse(json_object_get(root, "normalizer"), (struct tok_json_at){f, "normalizer"},
					  &tok->norm);
	if (rc == 0)
		rc = tok_pretok_parse(json_object_get(root, "pre_tokenizer"), (struct tok_json_at){f, "pre_tokenizer"},
				      &tok->pretok);
	if (rc == 0)
		rc = tok_decoder_parse(json_object_get(root, "decoder"), (struct tok_json_at){f, "decoder"}, &tok->dec);
	if (rc == 0)
		rc = load_model(tok, json_object_get(root, "model"), (struct tok_json_at){f, "model"});
	if (rc == 0)
		rc = load_added(tok, json_object_get(root, "added_tokens"), (struct tok_json_at){f, "added_tokens"});
	if (rc == 0)
		rc = load_post(tok, json_object_get(root, "post_processor"), (struct tok_json_at){f, "post_processor"});
	if (rc == 0)
		rc = check_post_ids(tok, &tok->prefix);
	if (rc == 0)
		rc = check_post_ids(tok, &tok->suffix);
	json_decref(root);
	return rc;
}
