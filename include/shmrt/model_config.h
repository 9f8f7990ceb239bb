/* shmrt — a model's config.json (Hugging Face layout).
 *
 * Llama 2/3, Mistral and Qwen2 checkpoints describe their shape in
 * config.json. shmrt_model_config_load() reads one into a plain struct and
 * checks it: a missing key, a value of the wrong type, heads that do not
 * divide, an architecture or rope scaling we do not run is an error whose
 * message names the file and the key.
 *
 * Defaults for absent keys are those of transformers' LlamaConfig,
 * MistralConfig and Qwen2Config: num_key_value_heads = num_attention_heads,
 * head_dim = hidden_size / num_attention_heads, rope_theta = 10000,
 * rms_norm_eps = 1e-6, tie_word_embeddings = false, no bias. The sizes
 * (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * vocab_size, max_position_embeddings) are required.
 *
 * Sliding windows. Mistral 7B v0.1 sets sliding_window (4096) below
 * max_position_embeddings (32768): each token sees only the last 4096.
 * We do not implement windowed attention; instead max_context is capped
 * at the window, where full causal attention and windowed attention give
 * the same result, so generation stays exact (just shorter). Qwen2 carries
 * sliding_window but applies it only with use_sliding_window = true, which
 * we reject (its per-layer window, max_window_layers, is not implemented). */
#ifndef SHMRT_MODEL_CONFIG_H
#define SHMRT_MODEL_CONFIG_H

#include <stdbool.h>

#include "common.h"
#include "backend.h" /* struct shmrt_rope_config */
#include "dtype.h"

enum shmrt_arch {
	SHMRT_ARCH_LLAMA = 1,   /* LlamaForCausalLM, model_type "llama" */
	SHMRT_ARCH_MISTRAL = 2, /* MistralForCausalLM, "mistral" */
	SHMRT_ARCH_QWEN2 = 3,   /* Qwen2ForCausalLM, "qwen2" */
};

#define SHMRT_MAX_EOS_IDS 8

struct shmrt_model_config {
	enum shmrt_arch arch;
	int hidden_size;
	int intermediate_size;
	int num_layers;   /* num_hidden_layers */
	int num_heads;    /* num_attention_heads */
	int num_kv_heads; /* num_key_value_heads; divides num_heads (GQA) */
	int head_dim;     /* even (rotary pairs) */
	int vocab_size;
	int max_position_embeddings;
	int max_context;    /* positions we serve: the above, capped at sliding_window */
	int sliding_window; /* 0: none (see above) */
	float rms_norm_eps;
	struct shmrt_rope_config rope; /* rope_theta, rope_scaling */
	bool tie_word_embeddings;      /* lm_head is embed_tokens */
	bool qkv_bias;                 /* q/k/v_proj have biases (Qwen2; Llama attention_bias) */
	bool o_bias;                   /* o_proj has a bias (Llama attention_bias) */
	int bos_token_id;              /* -1: none */
	int n_eos;                     /* eos_token_id: an int or a list; 0: none */
	int eos_token_ids[SHMRT_MAX_EOS_IDS];
	enum shmrt_dtype dtype; /* torch_dtype (or "dtype"); f32 when absent, as transformers */
};

/* Reads and checks path (a config.json). */
SHMRT_API int shmrt_model_config_load(const char *path, struct shmrt_model_config *out);

/* The same from json[0..len); name is the file name used in messages. */
SHMRT_API int shmrt_model_config_parse(const char *json, size_t len, const char *name,
				       struct shmrt_model_config *out);

/* "llama", "mistral", "qwen2" (config.json's model_type), "?" otherwise. */
SHMRT_API const char *shmrt_arch_name(enum shmrt_arch arch);

#endif
