/* The sampling fields of a request, as OpenAI's API names them (and vLLM's
 * extensions top_k, ignore_eos; Vertex Model Garden's raw_response). Each
 * field is checked for its type and range: a wrong one is a 400 that names
 * it, never a silent default. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* OpenAI allows up to 4 stop sequences; vLLM more. Each is bounded so
 * that holding back a partial match stays cheap. */
#define STOP_MAX_BYTES 256
#define N_MAX 16

void params_defaults(struct gen_params *p, int max_tokens)
{
	memset(p, 0, sizeof(*p));
	p->max_tokens = max_tokens;
	p->temperature = 1.0;
	p->top_p = 1.0;
	p->n = 1;
}

void gen_params_free(struct gen_params *p)
{
	for (int i = 0; i < p->n_stop; i++)
		free(p->stop[i]);
	p->n_stop = 0;
}

static int bad(char *err, size_t cap, const char *fmt, const char *field)
{
	snprintf(err, cap, fmt, field);
	return -EINVAL;
}

/* A number field (integers accepted); null leaves *v. */
static int read_number(json_t *obj, const char *key, double lo, double hi, double *v, char *err, size_t cap)
{
	json_t *j = json_object_get(obj, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_number(j))
		return bad(err, cap, "'%s' must be a number", key);
	double x = json_number_value(j);
	if (!(x >= lo && x <= hi)) {
		snprintf(err, cap, "'%s' must be between %g and %g, not %g", key, lo, hi, x);
		return -EINVAL;
	}
	*v = x;
	return 0;
}

static int read_int(json_t *obj, const char *key, long long lo, long long hi, long long *v, char *err, size_t cap)
{
	json_t *j = json_object_get(obj, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_integer(j))
		return bad(err, cap, "'%s' must be an integer", key);
	long long x = json_integer_value(j);
	if (x < lo || x > hi) {
		snprintf(err, cap, "'%s' must be between %lld and %lld, not %lld", key, lo, hi, x);
		return -EINVAL;
	}
	*v = x;
	return 0;
}

/* 1 true, 0 false, -1 absent; -EINVAL for another type. */
static int read_bool(json_t *obj, const char *key, int *v, char *err, size_t cap)
{
	json_t *j = json_object_get(obj, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_boolean(j))
		return bad(err, cap, "'%s' must be true or false", key);
	*v = json_is_true(j);
	return 0;
}

static int add_stop(struct gen_params *p, json_t *s, char *err, size_t cap)
{
	if (!json_is_string(s))
		return bad(err, cap, "'%s' must be a string or a list of strings", "stop");
	size_t len = json_string_length(s);
	if (len == 0 || len > STOP_MAX_BYTES) {
		snprintf(err, cap, "each 'stop' string must have 1 to %d bytes", STOP_MAX_BYTES);
		return -EINVAL;
	}
	if (p->n_stop == GEN_MAX_STOP) {
		snprintf(err, cap, "at most %d 'stop' strings", GEN_MAX_STOP);
		return -EINVAL;
	}
	if (!(p->stop[p->n_stop] = strndup(json_string_value(s), len)))
		return -ENOMEM;
	p->n_stop++;
	return 0;
}

static int read_stop(struct gen_params *p, json_t *obj, char *err, size_t cap)
{
	json_t *j = json_object_get(obj, "stop");
	if (!j || json_is_null(j))
		return 0;
	gen_params_free(p); /* an instance's stop replaces the parameters' */
	if (json_is_string(j))
		return add_stop(p, j, err, cap);
	if (!json_is_array(j))
		return bad(err, cap, "'%s' must be a string or a list of strings", "stop");
	size_t i;
	json_t *s;
	json_array_foreach(j, i, s) {
		int rc = add_stop(p, s, err, cap);
		if (rc)
			return rc;
	}
	return 0;
}

int params_read(struct gen_params *p, json_t *obj, char *err, size_t cap)
{
	long long max_tokens = p->max_tokens, top_k = p->top_k, seed = 0, n = p->n;
	int has_seed = 0, rc;
	json_t *js = json_object_get(obj, "seed");
	if (js && !json_is_null(js))
		has_seed = 1;
	int echo = 0;
	if ((rc = read_int(obj, "max_tokens", 1, 1 << 24, &max_tokens, err, cap)) ||
	    (rc = read_int(obj, "max_completion_tokens", 1, 1 << 24, &max_tokens, err, cap)) ||
	    (rc = read_number(obj, "temperature", 0, 100, &p->temperature, err, cap)) ||
	    (rc = read_number(obj, "top_p", 0, 1, &p->top_p, err, cap)) ||
	    (rc = read_int(obj, "top_k", -1, 1 << 30, &top_k, err, cap)) ||
	    (rc = read_int(obj, "seed", INT64_MIN, INT64_MAX, &seed, err, cap)) ||
	    (rc = read_int(obj, "n", 1, N_MAX, &n, err, cap)) ||
	    (rc = read_bool(obj, "ignore_eos", &p->ignore_eos, err, cap)) ||
	    (rc = read_bool(obj, "stream", &p->stream, err, cap)) ||
	    (rc = read_bool(obj, "raw_response", &p->raw_response, err, cap)) ||
	    (rc = read_bool(obj, "echo", &echo, err, cap)) || (rc = read_stop(p, obj, err, cap)))
		return rc;
	if (p->top_p == 0)
		return bad(err, cap, "'%s' must be greater than 0", "top_p");
	if (echo)
		return bad(err, cap, "'%s' is not supported", "echo");
	json_t *so = json_object_get(obj, "stream_options");
	if (so && !json_is_null(so)) {
		if (!json_is_object(so))
			return bad(err, cap, "'%s' must be an object", "stream_options");
		if ((rc = read_bool(so, "include_usage", &p->include_usage, err, cap)))
			return rc;
	}
	p->max_tokens = (int)max_tokens;
	p->top_k = top_k < 0 ? 0 : (int)top_k;
	p->n = (int)n;
	if (has_seed) {
		p->seed = (uint64_t)seed;
		p->has_seed = 1;
	}
	return 0;
}
