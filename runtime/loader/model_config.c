/* Reading config.json of Llama-family checkpoints (model_config.h).
 * Key names and defaults follow transformers' configuration_llama.py,
 * configuration_mistral.py and configuration_qwen2.py (v4.4x); the
 * "rope_parameters" and "dtype" keys are transformers v5's spellings. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmrt/model_config.h"
#include "fail.h"
#include "json_file.h"
#include "array_size.h"

/* Bound on every size and id: products of two stay far inside int64. */
#define CFG_MAX_INT (1 << 24)

/* config.json is a few KiB; this only stops a wrong file being slurped. */
#define CFG_MAX_BYTES (16u << 20)

struct cfg {
	const char *file;
	json_t *root;
	const char *scope; /* "" or "rope_scaling." etc., for messages */
};

static const struct arch_name {
	const char *cls, *type;
	enum shmrt_arch arch;
} arch_names[] = {
	{"LlamaForCausalLM", "llama", SHMRT_ARCH_LLAMA},
	{"MistralForCausalLM", "mistral", SHMRT_ARCH_MISTRAL},
	{"Qwen2ForCausalLM", "qwen2", SHMRT_ARCH_QWEN2},
};
#define N_ARCHS (ARRAY_SIZE(arch_names))

const char *shmrt_arch_name(enum shmrt_arch arch)
{
	for (size_t i = 0; i < N_ARCHS; i++)
		if (arch_names[i].arch == arch)
			return arch_names[i].type;
	return "?";
}

/* The value of key, NULL when absent or null (transformers writes null for
 * optional keys left unset, such as "rope_scaling": null). */
static json_t *value(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_null(v) ? NULL : v;
}

static int missing(const struct cfg *c, const char *key)
{
	return shmrt_fail(EINVAL, "%s: key '%s%s' is missing", c->file, c->scope, key);
}

static int wrong_type(const struct cfg *c, const char *key, const char *want)
{
	return shmrt_fail(EINVAL, "%s: key '%s%s' must be %s", c->file, c->scope, key, want);
}

/* The getters return 1 when the key is there (*out set), 0 when it is
 * absent and optional (*out untouched), or -errno. */

static int check_int(const struct cfg *c, const char *key, json_t *v, int min, int max, int *out)
{
	if (!json_is_integer(v))
		return wrong_type(c, key, "an integer");
	json_int_t x = json_integer_value(v);
	if (x < min || x > max)
		return shmrt_fail(EINVAL, "%s: key '%s%s' is %lld, outside [%d, %d]", c->file, c->scope, key,
				  (long long)x, min, max);
	*out = (int)x;
	return 1;
}

static int get_int(const struct cfg *c, json_t *obj, const char *key, bool required, int min, int max, int *out)
{
	json_t *v = value(obj, key);
	if (!v)
		return required ? missing(c, key) : 0;
	return check_int(c, key, v, min, max, out);
}

/* A positive number; JSON integers count ("rope_theta": 10000). */
static int get_real(const struct cfg *c, json_t *obj, const char *key, bool required, float *out)
{
	json_t *v = value(obj, key);
	if (!v)
		return required ? missing(c, key) : 0;
	if (!json_is_number(v))
		return wrong_type(c, key, "a number");
	double x = json_number_value(v);
	if (!(x > 0))
		return shmrt_fail(EINVAL, "%s: key '%s%s' is %g, must be positive", c->file, c->scope, key, x);
	*out = (float)x;
	return 1;
}

static int get_bool(const struct cfg *c, const char *key, bool *out)
{
	json_t *v = value(c->root, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return wrong_type(c, key, "true or false");
	*out = json_is_true(v);
	return 1;
}

static int get_string(const struct cfg *c, json_t *obj, const char *key, const char **out)
{
	json_t *v = value(obj, key);
	if (!v)
		return 0;
	if (!json_is_string(v))
		return wrong_type(c, key, "a string");
	*out = json_string_value(v);
	return 1;
}

static const struct arch_name *arch_by(const char *s, int by_class)
{
	for (size_t i = 0; i < N_ARCHS; i++)
		if (!strcmp(s, by_class ? arch_names[i].cls : arch_names[i].type))
			return &arch_names[i];
	return NULL;
}

/* architectures[0] and model_type: either will do, both must agree. */
static int parse_arch(const struct cfg *c, struct shmrt_model_config *m)
{
	const struct arch_name *by_cls = NULL, *by_type = NULL;
	json_t *a = value(c->root, "architectures");
	if (a) {
		json_t *first = json_array_get(a, 0);
		if (!json_is_array(a) || !json_is_string(first))
			return wrong_type(c, "architectures", "a list of class names");
		if (!(by_cls = arch_by(json_string_value(first), 1)))
			return shmrt_fail(ENOTSUP,
					  "%s: architecture '%s' is not supported (LlamaForCausalLM, "
					  "MistralForCausalLM, Qwen2ForCausalLM)",
					  c->file, json_string_value(first));
	}
	const char *type = NULL; /* gcc 12 -O3 cannot tell get_string sets it when rc > 0 */
	int rc = get_string(c, c->root, "model_type", &type);
	if (rc < 0)
		return rc;
	if (rc > 0 && !(by_type = arch_by(type, 0)))
		return shmrt_fail(ENOTSUP, "%s: model_type '%s' is not supported (llama, mistral, qwen2)", c->file, type);
	if (!by_cls && !by_type)
		return missing(c, "architectures");
	if (by_cls && by_type && by_cls != by_type)
		return shmrt_fail(EINVAL, "%s: architectures[0] '%s' and model_type '%s' disagree", c->file, by_cls->cls,
				  type);
	m->arch = (by_cls ? by_cls : by_type)->arch;
	return 0;
}

static int parse_sizes(const struct cfg *c, struct shmrt_model_config *m)
{
	const struct {
		const char *key;
		int *dst;
	} required[] = {
		{"hidden_size", &m->hidden_size},
		{"intermediate_size", &m->intermediate_size},
		{"num_hidden_layers", &m->num_layers},
		{"num_attention_heads", &m->num_heads},
		{"vocab_size", &m->vocab_size},
		{"max_position_embeddings", &m->max_position_embeddings},
	};
	for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
		int rc = get_int(c, c->root, required[i].key, true, 1, CFG_MAX_INT, required[i].dst);
		if (rc < 0)
			return rc;
	}
	m->num_kv_heads = m->num_heads;
	int rc = get_int(c, c->root, "num_key_value_heads", false, 1, CFG_MAX_INT, &m->num_kv_heads);
	if (rc < 0)
		return rc;
	if (m->num_heads % m->num_kv_heads)
		return shmrt_fail(EINVAL, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
				  c->file, m->num_heads, m->num_kv_heads);
	rc = get_int(c, c->root, "head_dim", false, 1, CFG_MAX_INT, &m->head_dim);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (m->hidden_size % m->num_heads)
			return shmrt_fail(EINVAL,
					  "%s: hidden_size %d is not a multiple of num_attention_heads %d "
					  "(and head_dim is not given)",
					  c->file, m->hidden_size, m->num_heads);
		m->head_dim = m->hidden_size / m->num_heads;
	}
	if (m->head_dim % 2)
		return shmrt_fail(EINVAL, "%s: head_dim %d is odd; rotary embedding turns pairs of dimensions",
				  c->file, m->head_dim);
	return 0;
}

static int parse_llama3_rope(const struct cfg *c, json_t *obj, struct shmrt_rope_config *r)
{
	int rc;
	if ((rc = get_real(c, obj, "factor", true, &r->factor)) < 0 ||
	    (rc = get_real(c, obj, "low_freq_factor", true, &r->low_freq_factor)) < 0 ||
	    (rc = get_real(c, obj, "high_freq_factor", true, &r->high_freq_factor)) < 0 ||
	    (rc = get_int(c, obj, "original_max_position_embeddings", true, 1, CFG_MAX_INT,
			  &r->original_max_position)) < 0)
		return rc;
	/* The smoothing between the two bands divides by their difference. */
	if (!(r->high_freq_factor > r->low_freq_factor))
		return shmrt_fail(EINVAL, "%s: %shigh_freq_factor %g must exceed low_freq_factor %g", c->file,
				  c->scope, r->high_freq_factor, r->low_freq_factor);
	r->scaling = SHMRT_ROPE_LLAMA3;
	return 0;
}

/* rope_theta and rope_scaling (transformers v4: its type under "rope_type",
 * or "type" in older files), or rope_parameters holding both (v5). */
static int parse_rope_object(const struct cfg *c, json_t *obj, bool has_theta, struct shmrt_rope_config *r)
{
	const char *type = NULL;
	int rc;
	if (has_theta && (rc = get_real(c, obj, "rope_theta", false, &r->theta)) < 0)
		return rc;
	if ((rc = get_string(c, obj, "rope_type", &type)) == 0)
		rc = get_string(c, obj, "type", &type);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return missing(c, "rope_type");
	if (!strcmp(type, "llama3"))
		return parse_llama3_rope(c, obj, r);
	if (strcmp(type, "default"))
		return shmrt_fail(ENOTSUP, "%s: %srope_type '%s' is not supported (default, llama3)", c->file,
				  c->scope, type);
	return 0;
}

static int parse_rope(struct cfg *c, struct shmrt_model_config *m)
{
	m->rope = (struct shmrt_rope_config){.theta = 10000.0f, .scaling = SHMRT_ROPE_DEFAULT};
	int rc = get_real(c, c->root, "rope_theta", false, &m->rope.theta);
	if (rc < 0)
		return rc;
	json_t *params = value(c->root, "rope_parameters");
	json_t *obj = params ? params : value(c->root, "rope_scaling");
	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return wrong_type(c, params ? "rope_parameters" : "rope_scaling", "an object or null");
	c->scope = params ? "rope_parameters." : "rope_scaling.";
	rc = parse_rope_object(c, obj, params != NULL, &m->rope);
	c->scope = "";
	return rc;
}

/* What the architecture implies: biases, activation, sliding window. */
static int parse_variant(const struct cfg *c, struct shmrt_model_config *m)
{
	const char *act = "silu";
	bool mlp_bias = false, attention_bias = false, use_window = false;
	int rc;
	if ((rc = get_string(c, c->root, "hidden_act", &act)) < 0 || (rc = get_bool(c, "mlp_bias", &mlp_bias)) < 0)
		return rc;
	if (strcmp(act, "silu"))
		return shmrt_fail(ENOTSUP, "%s: hidden_act '%s' is not supported (silu)", c->file, act);
	if (mlp_bias)
		return shmrt_fail(ENOTSUP, "%s: mlp_bias true is not supported", c->file);
	m->sliding_window = 0;
	switch (m->arch) {
	case SHMRT_ARCH_LLAMA: /* attention_bias covers q, k, v and o */
		if ((rc = get_bool(c, "attention_bias", &attention_bias)) < 0)
			return rc;
		m->qkv_bias = m->o_bias = attention_bias;
		break;
	case SHMRT_ARCH_MISTRAL:
		m->qkv_bias = m->o_bias = false;
		if ((rc = get_int(c, c->root, "sliding_window", false, 1, CFG_MAX_INT, &m->sliding_window)) < 0)
			return rc;
		break;
	case SHMRT_ARCH_QWEN2: /* Qwen2Attention: q/k/v with bias, o without */
		m->qkv_bias = true;
		m->o_bias = false;
		if ((rc = get_bool(c, "use_sliding_window", &use_window)) < 0)
			return rc;
		if (use_window)
			return shmrt_fail(ENOTSUP,
					  "%s: use_sliding_window true is not supported (Qwen2's per-layer window); "
					  "set it false to serve max_position_embeddings with full attention",
					  c->file);
		break;
	}
	m->max_context = m->max_position_embeddings;
	if (m->sliding_window && m->sliding_window < m->max_context)
		m->max_context = m->sliding_window;
	rc = get_bool(c, "tie_word_embeddings", &m->tie_word_embeddings);
	return rc < 0 ? rc : 0;
}

/* bos_token_id: an int or null; eos_token_id: an int, a list of ints or null. */
static int parse_special_ids(const struct cfg *c, struct shmrt_model_config *m)
{
	int max = m->vocab_size - 1;
	m->bos_token_id = -1;
	int rc = get_int(c, c->root, "bos_token_id", false, 0, max, &m->bos_token_id);
	if (rc < 0)
		return rc;
	m->n_eos = 0;
	json_t *eos = value(c->root, "eos_token_id");
	if (!eos)
		return 0;
	if (json_is_integer(eos)) {
		m->n_eos = 1;
		rc = check_int(c, "eos_token_id", eos, 0, max, &m->eos_token_ids[0]);
		return rc < 0 ? rc : 0;
	}
	if (!json_is_array(eos))
		return wrong_type(c, "eos_token_id", "an integer or a list of integers");
	if (json_array_size(eos) > SHMRT_MAX_EOS_IDS)
		return shmrt_fail(EINVAL, "%s: key 'eos_token_id' lists %zu ids, at most %d are supported", c->file,
				  json_array_size(eos), SHMRT_MAX_EOS_IDS);
	size_t i;
	json_t *id;
	json_array_foreach(eos, i, id) {
		char key[48];
		snprintf(key, sizeof(key), "eos_token_id[%zu]", i);
		if ((rc = check_int(c, key, id, 0, max, &m->eos_token_ids[i])) < 0)
			return rc;
	}
	m->n_eos = (int)json_array_size(eos);
	return 0;
}

static int parse_dtype(const struct cfg *c, struct shmrt_model_config *m)
{
	static const struct {
		const char *name;
		enum shmrt_dtype dtype;
	} dtypes[] = {{"bfloat16", SHMRT_BF16}, {"float16", SHMRT_F16}, {"float32", SHMRT_F32}};
	const char *key = json_object_get(c->root, "torch_dtype") ? "torch_dtype" : "dtype";
	const char *s = NULL;
	m->dtype = SHMRT_F32;
	int rc = get_string(c, c->root, key, &s);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(dtypes); i++)
		if (!strcmp(s, dtypes[i].name)) {
			m->dtype = dtypes[i].dtype;
			return 0;
		}
	return shmrt_fail(ENOTSUP, "%s: %s '%s' is not supported (bfloat16, float16, float32)", c->file, key, s);
}

static int parse_root(struct cfg *c, struct shmrt_model_config *m)
{
	if (!json_is_object(c->root))
		return shmrt_fail(EINVAL, "%s: not a JSON object", c->file);
	memset(m, 0, sizeof(*m));
	int rc;
	if ((rc = parse_arch(c, m)) < 0 || (rc = parse_sizes(c, m)) < 0 || (rc = parse_rope(c, m)) < 0 ||
	    (rc = parse_variant(c, m)) < 0 || (rc = parse_special_ids(c, m)) < 0 || (rc = parse_dtype(c, m)) < 0)
		return rc;
	m->rms_norm_eps = 1e-6f;
	rc = get_real(c, c->root, "rms_norm_eps", false, &m->rms_norm_eps);
	return rc < 0 ? rc : 0;
}

int shmrt_model_config_parse(const char *json, size_t len, const char *name, struct shmrt_model_config *out)
{
	shmrt_clear_error();
	struct cfg c = {.file = name, .scope = ""};
	int rc = shmrt_json_parse(json, len, name, &c.root);
	if (rc < 0)
		return rc;
	rc = parse_root(&c, out);
	json_decref(c.root);
	return rc;
}

int shmrt_model_config_load(const char *path, struct shmrt_model_config *out)
{
	shmrt_clear_error();
	struct cfg c = {.file = path, .scope = ""};
	int rc = shmrt_json_load_file(path, CFG_MAX_BYTES, &c.root);
	if (rc < 0)
		return rc;
	rc = parse_root(&c, out);
	json_decref(c.root);
	return rc;
}
