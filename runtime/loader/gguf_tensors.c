/* A GGUF file's tensors under Hugging Face names (gguf_model.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_model.h"
#include "fail.h"

/* GGUF's names (llama.cpp src/llama-arch.cpp, LLM_TENSOR_NAMES) and the
 * Hugging Face ones the model loads (runtime/model/model.c). */
static const struct {
	const char *gguf, *hf;
	bool rope_permuted; /* q or k: rows reordered per head (llama) */
} layer_names[] = {
	{"attn_norm.weight", "input_layernorm.weight", false},
	{"attn_q.weight", "self_attn.q_proj.weight", true},
	{"attn_k.weight", "self_attn.k_proj.weight", true},
	{"attn_v.weight", "self_attn.v_proj.weight", false},
	{"attn_q.bias", "self_attn.q_proj.bias", true},
	{"attn_k.bias", "self_attn.k_proj.bias", true},
	{"attn_v.bias", "self_attn.v_proj.bias", false},
	{"attn_output.weight", "self_attn.o_proj.weight", false},
	{"attn_output.bias", "self_attn.o_proj.bias", false},
	{"ffn_norm.weight", "post_attention_layernorm.weight", false},
	{"ffn_gate.weight", "mlp.gate_proj.weight", false},
	{"ffn_up.weight", "mlp.up_proj.weight", false},
	{"ffn_down.weight", "mlp.down_proj.weight", false},
};
#define N_LAYER_NAMES (sizeof(layer_names) / sizeof(layer_names[0]))

static const struct {
	const char *gguf, *hf;
} global_names[] = {
	{"token_embd.weight", "model.embed_tokens.weight"},
	{"output_norm.weight", "model.norm.weight"},
	{"output.weight", "lm_head.weight"},
};

/* The Hugging Face name of GGUF tensor name into hf; -ENOENT if the model
 * does not use it. *head_rows: rows per head to un-permute, or 0. */
static int hf_name(const char *name, const struct shmrt_model_config *cfg, char *hf, size_t cap,
		   uint32_t *head_rows)
{
	*head_rows = 0;
	for (size_t i = 0; i < sizeof(global_names) / sizeof(global_names[0]); i++)
		if (!strcmp(name, global_names[i].gguf)) {
			snprintf(hf, cap, "%s", global_names[i].hf);
			return 0;
		}
	int layer, at = 0;
	if (sscanf(name, "blk.%d.%n", &layer, &at) != 1 || at == 0 || layer < 0 || layer >= cfg->num_layers)
		return -ENOENT;
	for (size_t i = 0; i < N_LAYER_NAMES; i++)
		if (!strcmp(name + at, layer_names[i].gguf)) {
			snprintf(hf, cap, "model.layers.%d.%s", layer, layer_names[i].hf);
			if (layer_names[i].rope_permuted && cfg->arch == SHMRT_ARCH_LLAMA)
				*head_rows = (uint32_t)cfg->head_dim;
			return 0;
		}
	return -ENOENT;
}

static int add(struct shmrt_st_header *h, const struct shmrt_gguf_tensor *t, const char *hf, const char *file)
{
	struct shmrt_tensor_info *o = &h->tensors[h->n];
	*o = (struct shmrt_tensor_info){.dtype = t->dtype, .ndim = t->n_dims, .file = file, .offset = t->offset,
					.size = t->size};
	if (t->n_dims > SHMRT_TENSOR_MAX_DIMS)
		return shmrt_fail(EINVAL, "%s: tensor '%s' has %d dimensions", file, t->name, t->n_dims);
	/* ggml's ne[0] is the innermost: reversed, it is the row-major shape */
	for (int d = 0; d < t->n_dims; d++)
		o->shape[d] = t->ne[t->n_dims - 1 - d];
	if (!(o->name = strdup(hf)))
		return shmrt_fail(ENOMEM, "%s: no memory", file);
	h->n++;
	return 0;
}

int shmrt_gguf_tensor_table(const struct shmrt_gguf *g, const struct shmrt_model_config *cfg, const char *file,
			    struct shmrt_st_header *out, uint32_t **head_rows)
{
	size_t n = shmrt_gguf_tensor_count(g);
	*out = (struct shmrt_st_header){0};
	out->tensors = calloc(n ? n : 1, sizeof(*out->tensors));
	*head_rows = calloc(n ? n : 1, sizeof(**head_rows));
	if (!out->tensors || !*head_rows)
		return shmrt_fail(ENOMEM, "%s: no memory for %zu tensors", file, n);
	for (size_t i = 0; i < n; i++) {
		const struct shmrt_gguf_tensor *t = shmrt_gguf_tensor_at(g, i);
		char hf[128];
		uint32_t rows;
		if (hf_name(t->name, cfg, hf, sizeof(hf), &rows) < 0)
			continue; /* not the model's (rope_freqs is refused by the config) */
		/* whole heads of whole rows, or the file lies about the model */
		int64_t total_rows = t->n_dims == 1 ? t->ne[0] : t->ne[1];
		if (rows && total_rows % rows)
			return shmrt_fail(EINVAL, "%s: tensor '%s' has %lld rows, not whole heads of %u", file, t->name,
					  (long long)total_rows, rows);
		(*head_rows)[out->n] = rows;
		int rc = add(out, t, hf, file);
		if (rc)
			return rc;
	}
	return 0;
}

/* Row r of a head in one order goes to row map(r) in the other. */
static int reorder(void *p, uint64_t n_rows, uint64_t row_bytes, uint32_t head_rows, bool to_hf)
{
	uint64_t head_bytes = (uint64_t)head_rows * row_bytes, half = head_rows / 2;
	uint8_t *tmp = malloc(head_bytes ? head_bytes : 1);
	if (!tmp)
		return shmrt_fail(ENOMEM, "no memory to reorder rows");
	for (uint64_t h = 0; h < n_rows / head_rows; h++) {
		uint8_t *head = (uint8_t *)p + h * head_bytes;
		memcpy(tmp, head, head_bytes);
		for (uint64_t s = 0; s < 2; s++)
			for (uint64_t i = 0; i < half; i++) {
				uint64_t hf = s * half + i, gg = 2 * i + s;
				memcpy(head + (to_hf ? hf : gg) * row_bytes, tmp + (to_hf ? gg : hf) * row_bytes,
				       row_bytes);
			}
	}
	free(tmp);
	return 0;
}

int shmrt_gguf_unpermute(void *p, uint64_t n_rows, uint64_t row_bytes, uint32_t head_rows)
{
	return reorder(p, n_rows, row_bytes, head_rows, true);
}

int shmrt_gguf_permute(void *p, uint64_t n_rows, uint64_t row_bytes, uint32_t head_rows)
{
	return reorder(p, n_rows, row_bytes, head_rows, false);
}
