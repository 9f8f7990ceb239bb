/* Internal: reading the parts of a tokenizer.json with errors that name the
 * file and the place ("FILE: pre_tokenizer.pretokenizers[1]: ..."). */
#ifndef SHMRT_TOK_JSON_H
#define SHMRT_TOK_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Where in which file a JSON value was found, for messages. */
struct tok_json_at {
	const char *file;
	const char *where;
};

/* obj.type, which every normalizer, pre-tokenizer, decoder and processor
 * has; obj must be an object. */
int tok_json_type(json_t *obj, struct tok_json_at at, const char **type);

/* obj.name as a string (required). */
int tok_json_string(json_t *obj, const char *name, struct tok_json_at at, const char **s, size_t *len);

/* obj.name as a bool; dflt when the key is missing or null. */
int tok_json_bool(json_t *obj, const char *name, bool dflt, struct tok_json_at at, bool *out);

/* obj.name as an integer in [lo, hi]; dflt when missing or null. */
int tok_json_int(json_t *obj, const char *name, long long dflt, long long lo, long long hi,
		 struct tok_json_at at, long long *out);

/* obj.pattern, HF's {"String": "..."} or {"Regex": "..."}. */
int tok_json_pattern(json_t *obj, struct tok_json_at at, const char **s, size_t *len, bool *is_regex);

/* The list obj.name (an array), or -EINVAL. */
int tok_json_array(json_t *obj, const char *name, struct tok_json_at at, json_t **arr);

/* A "Sequence" component (normalizers, pre-tokenizers, decoders,
 * post-processors): add(ctx, item, where) for each item of the list
 * obj.name in order, up to the first error, which it returns. */
int tok_json_sequence(json_t *obj, const char *name, struct tok_json_at at,
		      int (*add)(void *ctx, json_t *item, struct tok_json_at at), void *ctx);

/* "WHERE[i]" or "WHERE.name" into buf, for nested messages. */
const char *tok_json_where(char *buf, size_t cap, const char *where, const char *name, long index);

#endif
