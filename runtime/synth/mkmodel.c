/* Synthetic checkpoints: presets, config.json and model.safetensors
 * (mkmodel.h); the tokenizer is synth/tokenizer.c's. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "shmrt/mkmodel.h"
#include "shmrt/model_config.h"
#include "dtype_conv.h"
#include "fail.h"
#include "synth.h"
#include "philox.h"
#include "safetensors.h"
#include "array_size.h"

struct preset {
	const char *name;
	enum shmrt_arch arch;
	int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, max_pos;
	float theta;
	int llama3_original_max; /* 0: default rope; else Llama 3 scaling (factor 8, 1, 4) */
	bool tied, qkv_bias;
	enum shmrt_dtype dtype;
};

static const struct preset presets[] = {
	{"tiny", SHMRT_ARCH_LLAMA, 256, 512, 2, 4, 2, 64, 512, 512, 500000.0f, 64, false, false, SHMRT_BF16},
	{"tiny-tied", SHMRT_ARCH_LLAMA, 256, 512, 2, 4, 4, 64, 512, 512, 10000.0f, 0, true, false, SHMRT_F16},
	{"tiny-qwen2", SHMRT_ARCH_QWEN2, 256, 448, 2, 4, 2, 64, 512, 512, 1000000.0f, 0, true, true, SHMRT_F32},
	{"small", SHMRT_ARCH_LLAMA, 768, 2048, 12, 12, 4, 64, 32000, 4096, 500000.0f, 1024, true, false, SHMRT_BF16},
};

const char *shmrt_mkmodel_presets(void)
{
	return "tiny tiny-tied tiny-qwen2 small";
}

static const char *torch_dtype(enum shmrt_dtype dt)
{
	return dt == SHMRT_BF16 ? "bfloat16" : dt == SHMRT_F16 ? "float16" : "float32";
}

static int write_config(const struct preset *p, uint64_t seed, const char *path)
{
	bool qwen = p->arch == SHMRT_ARCH_QWEN2;
	json_t *c = json_object();
	json_object_set_new(c, "architectures", json_pack("[s]", qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
	json_object_set_new(c, "model_type", json_string(shmrt_arch_name(p->arch)));
	json_object_set_new(c, "hidden_size", json_integer(p->hidden));
	json_object_set_new(c, "intermediate_size", json_integer(p->intermediate));
	json_object_set_new(c, "num_hidden_layers", json_integer(p->layers));
	json_object_set_new(c, "num_attention_heads", json_integer(p->heads));
	json_object_set_new(c, "num_key_value_heads", json_integer(p->kv_heads));
	if (!qwen)
		json_object_set_new(c, "head_dim", json_integer(p->head_dim));
	json_object_set_new(c, "vocab_size", json_integer(p->vocab));
	json_object_set_new(c, "max_position_embeddings", json_integer(p->max_pos));
	json_object_set_new(c, "rms_norm_eps", json_real(1e-5));
	json_object_set_new(c, "rope_theta", json_real(p->theta));
	if (p->llama3_original_max)
		json_object_set_new(c, "rope_scaling",
				    json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", 8.0,
					      "low_freq_factor", 1.0, "high_freq_factor", 4.0,
					      "original_max_position_embeddings", p->llama3_original_max));
	else
		json_object_set_new(c, "rope_scaling", json_null());
	json_object_set_new(c, "tie_word_embeddings", json_boolean(p->tied));
	json_object_set_new(c, "hidden_act", json_string("silu"));
	if (qwen)
		json_object_set_new(c, "use_sliding_window", json_false());
	else {
		json_object_set_new(c, "attention_bias", json_false());
		json_object_set_new(c, "mlp_bias", json_false());
	}
	json_object_set_new(c, "bos_token_id", json_integer(p->vocab - 2));
	json_object_set_new(c, "eos_token_id", json_integer(p->vocab - 1));
	json_object_set_new(c, "torch_dtype", json_string(torch_dtype(p->dtype)));
	json_object_set_new(c, "shmrt_mkmodel", json_pack("{s:s, s:I}", "preset", p->name, "seed", (json_int_t)seed));
	int rc = json_dump_file(c, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(c);
	return rc ? shmrt_fail(EIO, "%s: cannot write", path) : 0;
}

/* ---- weights ---------------------------------------------------------------- */

enum init { INIT_LINEAR, INIT_NORM, INIT_BIAS, INIT_EMBED };

struct wt {
	char name[96];
	int64_t rows, cols; /* cols 0: a vector */
	enum init init;
};

struct wt_list {
	struct wt *t;
	size_t n, cap;
};

static int add(struct wt_list *l, const char *name, int64_t rows, int64_t cols, enum init init)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct wt *t = realloc(l->t, cap * sizeof(*t));
		if (!t)
			return shmrt_fail(ENOMEM, "mkmodel: no memory");
		l->t = t;
		l->cap = cap;
	}
	struct wt *w = &l->t[l->n++];
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->rows = rows;
	w->cols = cols;
	w->init = init;
	return 0;
}

static int list_weights(const struct preset *p, struct wt_list *l)
{
	int64_t H = p->hidden, I = p->intermediate, Q = (int64_t)p->heads * p->head_dim,
		KV = (int64_t)p->kv_heads * p->head_dim;
	char n[96];
	int rc = add(l, "model.embed_tokens.weight", p->vocab, H, INIT_EMBED);
	for (int i = 0; !rc && i < p->layers; i++) {
		struct {
			const char *what;
			int64_t rows, cols;
			enum init init;
		} parts[] = {
			{"input_layernorm.weight", H, 0, INIT_NORM},
			{"self_attn.q_proj.weight", Q, H, INIT_LINEAR},
			{"self_attn.k_proj.weight", KV, H, INIT_LINEAR},
			{"self_attn.v_proj.weight", KV, H, INIT_LINEAR},
			{"self_attn.q_proj.bias", Q, 0, INIT_BIAS},
			{"self_attn.k_proj.bias", KV, 0, INIT_BIAS},
			{"self_attn.v_proj.bias", KV, 0, INIT_BIAS},
			{"self_attn.o_proj.weight", H, Q, INIT_LINEAR},
			{"post_attention_layernorm.weight", H, 0, INIT_NORM},
			{"mlp.gate_proj.weight", I, H, INIT_LINEAR},
			{"mlp.up_proj.weight", I, H, INIT_LINEAR},
			{"mlp.down_proj.weight", H, I, INIT_LINEAR},
		};
		for (size_t k = 0; !rc && k < ARRAY_SIZE(parts); k++) {
			if (parts[k].init == INIT_BIAS && !p->qkv_bias)
				continue;
			snprintf(n, sizeof(n), "model.layers.%d.%s", i, parts[k].what);
			rc = add(l, n, parts[k].rows, parts[k].cols, parts[k].init);
		}
	}
	if (!rc)
		rc = add(l, "model.norm.weight", H, 0, INIT_NORM);
	if (!rc && !p->tied)
		rc = add(l, "lm_head.weight", p->vocab, H, INIT_LINEAR);
	return rc;
}

static uint64_t name_key(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* Element i of weight w: a uniform number in [-1, 1) from 24 random bits
 * (exact in fp32), scaled; the same on every machine. */
static float value(const struct wt *w, uint64_t seed, uint64_t key, int64_t i)
{
	uint32_t r[4];
	shmrt_rng_block(seed, key, (uint64_t)i / 4, r);
	float u = (float)(r[i % 4] >> 8) * (1.0f / 8388608.0f) - 1.0f;
	switch (w->init) {
	case INIT_NORM:
		return 1.0f + 0.2f * u;
	case INIT_BIAS:
		return 0.5f * u;
	case INIT_EMBED:
		/* small next to what the layers add (rmsnorm rescales the
		 * first layer's input): with tied embeddings a large table
		 * makes every token predict itself */
		return 0.05f * u;
	default:
		/* variance 1/fan_in: uniform on +-sqrt(3/fan_in) */
		return u * sqrtf(3.0f / (float)w->cols);
	}
}

#define CHUNK 65536

static int write_data(int fd, const char *path, const struct wt *w, enum shmrt_dtype dt, uint64_t seed,
		      uint64_t *at)
{
	int64_t n = w->rows * (w->cols ? w->cols : 1);
	size_t es = shmrt_dtype_size(dt);
	uint64_t key = name_key(w->name);
	static _Thread_local uint8_t buf[CHUNK * 4];
	for (int64_t i = 0; i < n; i += CHUNK) {
		int64_t len = n - i < CHUNK ? n - i : CHUNK;
		for (int64_t k = 0; k < len; k++)
			shmrt_store(buf, dt, k, value(w, seed, key, i + k));
		size_t bytes = (size_t)len * es;
		ssize_t wr = pwrite(fd, buf, bytes, (off_t)*at);
		if (wr != (ssize_t)bytes)
			return shmrt_fail(wr < 0 ? errno : EIO, "%s: write failed: %s", path,
					  wr < 0 ? strerror(errno) : "short write");
		*at += bytes;
	}
	return 0;
}

static int write_weights(const struct preset *p, uint64_t seed, const char *path)
{
	struct wt_list l = {0};
	int rc = list_weights(p, &l), fd = -1;
	struct shmrt_st_tensor *t = calloc(l.n ? l.n : 1, sizeof(*t));
	if (!rc && !t)
		rc = shmrt_fail(ENOMEM, "mkmodel: no memory");
	for (size_t i = 0; !rc && i < l.n; i++) {
		t[i] = (struct shmrt_st_tensor){.name = l.t[i].name, .dtype = p->dtype, .ndim = l.t[i].cols ? 2 : 1,
						.shape = {l.t[i].rows, l.t[i].cols}};
	}
	if (!rc && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		rc = shmrt_fail(errno, "%s: %s", path, strerror(errno));
	uint64_t at = 0;
	if (!rc)
		rc = shmrt_st_write_header(fd, path, t, l.n, &at);
	for (size_t i = 0; !rc && i < l.n; i++)
		rc = write_data(fd, path, &l.t[i], p->dtype, seed, &at);
	if (fd >= 0 && close(fd) && !rc)
		rc = shmrt_fail(errno, "%s: %s", path, strerror(errno));
	free(t);
	free(l.t);
	return rc;
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *s = malloc(len);
	if (s)
		snprintf(s, len, "%s/%s", dir, name);
	return s;
}

int shmrt_mkmodel(const char *preset, uint64_t seed, const char *dir)
{
	shmrt_clear_error();
	const struct preset *p = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(presets); i++)
		if (!strcmp(presets[i].name, preset))
			p = &presets[i];
	if (!p)
		return shmrt_fail(ENOENT, "mkmodel: no preset '%s' (there are: %s)", preset, shmrt_mkmodel_presets());
	if (mkdir(dir, 0755) && errno != EEXIST)
		return shmrt_fail(errno, "%s: %s", dir, strerror(errno));
	char *cfg = join(dir, "config.json"), *st = join(dir, "model.safetensors"), *tok = join(dir, "tokenizer.json");
	int rc = cfg && st && tok ? 0 : shmrt_fail(ENOMEM, "mkmodel: no memory");
	if (!rc)
		rc = write_config(p, seed, cfg);
	if (!rc)
		rc = write_weights(p, seed, st);
	if (!rc)
		rc = shmrt_mkmodel_tokenizer(tok, p->vocab);
	free(cfg);
	free(st);
	free(tok);
	return rc;
}
