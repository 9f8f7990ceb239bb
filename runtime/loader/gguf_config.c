/* A GGUF file's model hyperparameters as a model config (gguf_model.h).
 *
 * Keys as llama.cpp's converter writes them (llama.cpp src/llama-arch.cpp,
 * LLM_KV_* names: "<arch>.block_count", "<arch>.attention.head_count", ...);
 * defaults as llama.cpp's loader applies them (head_count_kv = head_count,
 * key_length = embedding_length / head_count, rope.freq_base 10000). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gguf_model.h"
#include "fail.h"

#define MAX_INT (1 << 24) /* as config.json's bound (model_config.c) */

struct keys {
	const struct shmrt_gguf *g;
	const char *arch; /* general.architecture */
};

/* "<arch>.<suffix>" into key. */
static const char *arch_key(const struct keys *k, const char *suffix, char *key, size_t cap)
{
	snprintf(key, cap, "%s.%s", k->arch, suffix);
	return key;
}

/* An integer key in [min, max]; an absent optional one leaves *out. */
static int get_int(const struct keys *k, const char *suffix, bool optional, int min, int max, int *out)
{
	char key[96];
	int64_t v;
	arch_key(k, suffix, key, sizeof(key));
	if (optional && !shmrt_gguf_find(k->g, key))
		return 0;
	int rc = shmrt_gguf_get_int(k->g, key, min, max, &v);
	if (!rc)
		*out = (int)v;
	return rc;
}

static int get_float(const struct keys *k, const char *suffix, float *out)
{
	char key[96];
	double v;
	arch_key(k, suffix, key, sizeof(key));
	if (!shmrt_gguf_find(k->g, key))
		return 0;
	int rc = shmrt_gguf_get_float(k->g, key, &v);
	if (!rc)
		*out = (float)v;
	return rc;
}

static int parse_arch(struct keys *k, struct shmrt_model_config *m)
{
	static const struct {
		const char *name;
		enum shmrt_arch arch;
	} archs[] = {{"llama", SHMRT_ARCH_LLAMA}, {"qwen2", SHMRT_ARCH_QWEN2}};
	const char *s;
	size_t len;
	int rc = shmrt_gguf_get_str(k->g, "general.architecture", &s, &len);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
		if (len == strlen(archs[i].name) && !memcmp(s, archs[i].name, len)) {
			k->arch = archs[i].name;
			m->arch = archs[i].arch;
			return 0;
		}
	return shmrt_fail(ENOTSUP, "%s: general.architecture '%.*s' is not supported (llama, qwen2)",
			  shmrt_gguf_path(k->g), (int)(len > 64 ? 64 : len), s);
}

static int parse_sizes(const struct keys *k, struct shmrt_model_config *m)
{
	const char *path = shmrt_gguf_path(k->g);
	int rc;
	if ((rc = get_int(k, "block_count", false, 1, 4096, &m->num_layers)) ||
	    (rc = get_int(k, "embedding_length", false, 1, MAX_INT, &m->hidden_size)) ||
	    (rc = get_int(k, "feed_forward_length", false, 1, MAX_INT, &m->intermediate_size)) ||
	    (rc = get_int(k, "attention.head_count", false, 1, 4096, &m->num_heads)) ||
	    (rc = get_int(k, "context_length", false, 1, MAX_INT, &m->max_position_embeddings)))
		return rc;
	m->num_kv_heads = m->num_heads;
	m->head_dim = m->hidden_size / m->num_heads;
	if ((rc = get_int(k, "attention.head_count_kv", true, 1, 4096, &m->num_kv_heads)) ||
	    (rc = get_int(k, "attention.key_length", true, 2, 65536, &m->head_dim)))
		return rc;
	int rot = m->head_dim, vlen = m->head_dim;
	if ((rc = get_int(k, "rope.dimension_count", true, 2, 65536, &rot)) ||
	    (rc = get_int(k, "attention.value_length", true, 1, 65536, &vlen)))
		return rc;
	if (rot != m->head_dim || vlen != m->head_dim)
		return shmrt_fail(ENOTSUP, "%s: rope.dimension_count %d and attention.value_length %d must equal the "
				  "head size %d (partial rotary embeddings are not supported)",
				  path, rot, vlen, m->head_dim);
	if (m->num_heads % m->num_kv_heads || m->head_dim % 2)
		return shmrt_fail(EINVAL, "%s: %d KV heads do not divide %d heads, or the head size %d is odd", path,
				  m->num_kv_heads, m->num_heads, m->head_dim);
	m->max_context = m->max_position_embeddings;
	return 0;
}

static int parse_rope(const struct keys *k, struct shmrt_model_config *m)
{
	m->rope = (struct shmrt_rope_config){.theta = 10000.0f, .scaling = SHMRT_ROPE_DEFAULT};
	m->rms_norm_eps = 1e-5f; /* llama.cpp's default for llama */
	int rc = get_float(k, "rope.freq_base", &m->rope.theta);
	if (!rc)
		rc = get_float(k, "attention.layer_norm_rms_epsilon", &m->rms_norm_eps);
	if (rc)
		return rc;
	if (!(m->rope.theta > 0))
		return shmrt_fail(EINVAL, "%s: %s.rope.freq_base must be positive", shmrt_gguf_path(k->g), k->arch);
	char key[96];
	const char *s;
	size_t len;
	/* Llama 3.1's scaling is baked into a rope_freqs tensor by the
	 * converter; linear and YaRN scaling are keys: none is run yet. */
	if (shmrt_gguf_find_tensor(k->g, "rope_freqs.weight"))
		return shmrt_fail(ENOTSUP, "%s: rope_freqs.weight (Llama 3.1 rope scaling in GGUF) is not supported",
				  shmrt_gguf_path(k->g));
	arch_key(k, "rope.scaling.type", key, sizeof(key));
	if (shmrt_gguf_find(k->g, key) && !shmrt_gguf_get_str(k->g, key, &s, &len) &&
	    !(len == 4 && !memcmp(s, "none", 4)))
		return shmrt_fail(ENOTSUP, "%s: %s '%.*s' is not supported (none)", shmrt_gguf_path(k->g), key,
				  (int)(len > 32 ? 32 : len), s);
	return 0;
}

/* Vocabulary size, tied embeddings and biases: what the tensors say. */
static int parse_tensors(const struct keys *k, struct shmrt_model_config *m)
{
	const struct shmrt_gguf_tensor *embd = shmrt_gguf_find_tensor(k->g, "token_embd.weight");
	if (!embd || embd->n_dims != 2)
		return shmrt_fail(EINVAL, "%s: tensor 'token_embd.weight' is missing or not a matrix",
				  shmrt_gguf_path(k->g));
	if (embd->ne[1] > MAX_INT)
		return shmrt_fail(EINVAL, "%s: a vocabulary of %lld tokens", shmrt_gguf_path(k->g),
				  (long long)embd->ne[1]);
	m->vocab_size = (int)embd->ne[1];
	m->tie_word_embeddings = !shmrt_gguf_find_tensor(k->g, "output.weight");
	m->qkv_bias = shmrt_gguf_find_tensor(k->g, "blk.0.attn_q.bias") != NULL;
	m->o_bias = shmrt_gguf_find_tensor(k->g, "blk.0.attn_output.bias") != NULL;
	/* the dtype the weights came in, as config.json's torch_dtype says it:
	 * that of the first layer's attention norm (f32 in llama.cpp's files) */
	const struct shmrt_gguf_tensor *norm = shmrt_gguf_find_tensor(k->g, "blk.0.attn_norm.weight");
	m->dtype = norm && !shmrt_dtype_is_quantized(norm->dtype) ? norm->dtype : SHMRT_F32;
	return 0;
}

static int parse_special_ids(const struct keys *k, struct shmrt_model_config *m)
{
	int64_t v;
	m->bos_token_id = -1;
	m->n_eos = 0;
	if (shmrt_gguf_find(k->g, "tokenizer.ggml.bos_token_id")) {
		int rc = shmrt_gguf_get_int(k->g, "tokenizer.ggml.bos_token_id", 0, m->vocab_size - 1, &v);
		if (rc)
			return rc;
		m->bos_token_id = (int)v;
	}
	/* eos, and the end-of-turn token where it differs (chat models) */
	static const char *const eos_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"};
	for (int i = 0; i < 2; i++) {
		if (!shmrt_gguf_find(k->g, eos_keys[i]))
			continue;
		int rc = shmrt_gguf_get_int(k->g, eos_keys[i], 0, m->vocab_size - 1, &v);
		if (rc)
			return rc;
		if (m->n_eos == 0 || m->eos_token_ids[0] != (int)v)
			m->eos_token_ids[m->n_eos++] = (int)v;
	}
	return 0;
}

int shmrt_gguf_model_config(const struct shmrt_gguf *g, struct shmrt_model_config *out)
{
	struct keys k = {.g = g};
	memset(out, 0, sizeof(*out));
	int rc = parse_arch(&k, out);
	if (!rc)
		rc = parse_sizes(&k, out);
	if (!rc)
		rc = parse_rope(&k, out);
	if (!rc)
		rc = parse_tensors(&k, out);
	if (!rc)
		rc = parse_special_ids(&k, out);
	return rc;
}
