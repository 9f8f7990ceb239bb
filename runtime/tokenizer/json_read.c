/* Typed access to tokenizer.json values (json_read.h). */
#include <errno.h>
#include <stdio.h>

#include "fail.h"
#include "json_read.h"

int tok_json_type(json_t *obj, struct tok_json_at at, const char **type)
{
	if (!json_is_object(obj))
		return shmrt_fail(EINVAL, "%s: %s must be an object", at.file, at.where);
	json_t *t = json_object_get(obj, "type");
	if (!json_is_string(t))
		return shmrt_fail(EINVAL, "%s: %s has no \"type\" string", at.file, at.where);
	*type = json_string_value(t);
	return 0;
}

int tok_json_string(json_t *obj, const char *name, struct tok_json_at at, const char **s, size_t *len)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_string(v))
		return shmrt_fail(EINVAL, "%s: %s.%s must be a string", at.file, at.where, name);
	*s = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

int tok_json_bool(json_t *obj, const char *name, bool dflt, struct tok_json_at at, bool *out)
{
	json_t *v = json_object_get(obj, name);
	if (!v || json_is_null(v)) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v))
		return shmrt_fail(EINVAL, "%s: %s.%s must be true or false", at.file, at.where, name);
	*out = json_is_true(v);
	return 0;
}

int tok_json_int(json_t *obj, const char *name, long long dflt, long long lo, long long hi,
		 struct tok_json_at at, long long *out)
{
	json_t *v = json_object_get(obj, name);
	if (!v || json_is_null(v)) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return shmrt_fail(EINVAL, "%s: %s.%s must be an integer in [%lld, %lld]", at.file, at.where,
				  name, lo, hi);
	*out = json_integer_value(v);
	return 0;
}

int tok_json_pattern(json_t *obj, struct tok_json_at at, const char **s, size_t *len, bool *is_regex)
{
	json_t *p = json_object_get(obj, "pattern");
	json_t *str = json_object_get(p, "String"), *re = json_object_get(p, "Regex");
	if (!json_is_object(p) || json_is_string(str) == json_is_string(re))
		return shmrt_fail(EINVAL, "%s: %s.pattern must be {\"String\": ...} or {\"Regex\": ...}",
				  at.file, at.where);
	json_t *v = json_is_string(str) ? str : re;
	*s = json_string_value(v);
	*len = json_string_length(v);
	*is_regex = v == re;
	return 0;
}

int tok_json_array(json_t *obj, const char *name, struct tok_json_at at, json_t **arr)
{
	*arr = json_object_get(obj, name);
	if (!json_is_array(*arr))
		return shmrt_fail(EINVAL, "%s: %s.%s must be a list", at.file, at.where, name);
	return 0;
}

int tok_json_sequence(json_t *obj, const char *name, struct tok_json_at at,
		      int (*add)(void *ctx, json_t *item, struct tok_json_at at), void *ctx)
{
	json_t *list, *item;
	int rc = tok_json_array(obj, name, at, &list);
	size_t i;
	json_array_foreach(list, i, item) {
		if (rc < 0)
			break;
		char where[256];
		struct tok_json_at item_at = {at.file, tok_json_where(where, sizeof(where), at.where, NULL, (long)i)};
		rc = add(ctx, item, item_at);
	}
	return rc;
}

const char *tok_json_where(char *buf, size_t cap, const char *where, const char *name, long index)
{
	if (name)
		snprintf(buf, cap, "%s.%s", where, name);
	else
		snprintf(buf, cap, "%s[%ld]", where, index);
	return buf;
}
