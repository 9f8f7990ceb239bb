/* shmrt quantize: a bf16/f16/f32 checkpoint directory written as a GGUF
 * file of Q8_0, Q4_0 or Q4_K weights that llama.cpp loads and runs, and
 * shmrt loads back (--model FILE.gguf).
 *
 * What llama.cpp's converter and quantizer would write for the model
 * (convert_hf_to_gguf.py, llama-quantize): general.architecture llama or
 * qwen2 and its <arch>.* hyperparameters (llama.cpp src/llama-arch.cpp's
 * LLM_KV names), the tensors under llama.cpp's names (token_embd,
 * blk.N.attn_q, ..., output_norm, output), a llama model's q/k rows
 * permuted for llama.cpp's RoPE (LlamaModel.permute: shmrt_gguf_permute),
 * norms and biases f32, every matrix in the asked type; a matrix whose
 * rows are not whole blocks of it falls back to Q8_0 (llama.cpp's
 * fallback for the K-quants), else stays f32, and the command says so.
 * The tokenizer metadata comes from tokenizer.json (quantize_vocab.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dtype_conv.h"
#include "fail.h"
#include "gguf_model.h"
#include "gguf_write.h"
#include "quantize.h"
#include "quantize_vocab.h"
#include "shmrt/shmrt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt quantize --model DIR --out FILE.gguf --type q8_0|q4_0|q4_k\n\n"
		   "Writes the checkpoint in DIR (config.json, safetensors in bf16, f16 or f32,\n"
		   "tokenizer.json) as a GGUF file that llama.cpp and shmrt load: its matrices\n"
		   "quantized to TYPE (a matrix whose rows are not whole blocks of TYPE falls\n"
		   "back to q8_0, as llama.cpp does), norms and biases f32.\n\n"
		   "  --model DIR    a llama or qwen2 checkpoint directory\n"
		   "  --out FILE     the GGUF file to write (replaced)\n"
		   "  --type TYPE    q8_0, q4_0 or q4_k\n");
}

/* One tensor of the file: the checkpoint's, its GGUF name and type. */
struct qtensor {
	char name[96];
	const struct shmrt_tensor_info *t;
	enum shmrt_dtype dt;
	int64_t rows, cols; /* cols 0: a vector */
	uint32_t head_rows; /* llama's q/k: rows per head to permute */
};

struct job {
	const char *dir, *out;
	enum shmrt_dtype type;
	struct shmrt_checkpoint *ck;
	const struct shmrt_model_config *cfg;
	struct qtensor *ts;
	int n;
	int fallbacks;
	uint64_t in_bytes, out_bytes; /* the tensors' bytes in the checkpoint and in the file */
};

/* The type a tensor is written in; notes a fallback. */
static enum shmrt_dtype tensor_type(struct job *j, const struct qtensor *q)
{
	if (!q->cols)
		return SHMRT_F32;
	enum shmrt_dtype dt;
	if (!shmrt_quantize_row_type(j->type, q->cols, &dt))
		dt = SHMRT_F32;
	if (dt != j->type) {
		fprintf(stderr, "shmrt quantize: %s: rows of %lld are not whole %s blocks: %s\n", q->name,
			(long long)q->cols, shmrt_dtype_name(j->type), shmrt_dtype_name(dt));
		j->fallbacks++;
	}
	return dt;
}

/* Adds checkpoint tensor hf as GGUF tensor name (absent: only if optional). */
static int add_tensor(struct job *j, const char *name, const char *hf, bool optional, bool rope)
{
	const struct shmrt_tensor_info *t;
	int rc = shmrt_checkpoint_find(j->ck, hf, &t);
	if (rc == -ENOENT && optional)
		return 0;
	if (rc)
		return rc;
	if (shmrt_dtype_is_quantized(t->dtype) || t->ndim < 1 || t->ndim > 2)
		return shmrt_fail(ENOTSUP, "%s: tensor '%s' is %s with %d dimensions: only bf16/f16/f32 vectors and "
				  "matrices are quantized", j->dir, hf, shmrt_dtype_name(t->dtype), t->ndim);
	struct qtensor *q = &j->ts[j->n++];
	*q = (struct qtensor){.t = t, .rows = t->shape[0], .cols = t->ndim == 2 ? t->shape[1] : 0};
	snprintf(q->name, sizeof(q->name), "%s", name);
	if (rope && j->cfg->arch == SHMRT_ARCH_LLAMA)
		q->head_rows = (uint32_t)j->cfg->head_dim;
	q->dt = tensor_type(j, q);
	return 0;
}

/* llama.cpp's names per layer and the Hugging Face ones (as gguf_tensors.c). */
static const struct {
	const char *gguf, *hf;
	bool optional, rope;
} layer_tensors[] = {
	{"attn_norm.weight", "input_layernorm.weight", false, false},
	{"attn_q.weight", "self_attn.q_proj.weight", false, true},
	{"attn_k.weight", "self_attn.k_proj.weight", false, true},
	{"attn_v.weight", "self_attn.v_proj.weight", false, false},
	{"attn_q.bias", "self_attn.q_proj.bias", true, true},
	{"attn_k.bias", "self_attn.k_proj.bias", true, true},
	{"attn_v.bias", "self_attn.v_proj.bias", true, false},
	{"attn_output.weight", "self_attn.o_proj.weight", false, false},
	{"attn_output.bias", "self_attn.o_proj.bias", true, false},
	{"ffn_norm.weight", "post_attention_layernorm.weight", false, false},
	{"ffn_gate.weight", "mlp.gate_proj.weight", false, false},
	{"ffn_up.weight", "mlp.up_proj.weight", false, false},
	{"ffn_down.weight", "mlp.down_proj.weight", false, false},
};
#define N_LAYER_TENSORS (sizeof(layer_tensors) / sizeof(layer_tensors[0]))

static int plan_tensors(struct job *j)
{
	j->ts = calloc(N_LAYER_TENSORS * (size_t)j->cfg->num_layers + 3, sizeof(*j->ts));
	if (!j->ts)
		return shmrt_fail(ENOMEM, "no memory for the tensor list");
	int rc = add_tensor(j, "token_embd.weight", "model.embed_tokens.weight", false, false);
	for (int l = 0; !rc && l < j->cfg->num_layers; l++)
		for (size_t i = 0; !rc && i < N_LAYER_TENSORS; i++) {
			char name[96], hf[96];
			snprintf(name, sizeof(name), "blk.%d.%s", l, layer_tensors[i].gguf);
			snprintf(hf, sizeof(hf), "model.layers.%d.%s", l, layer_tensors[i].hf);
			rc = add_tensor(j, name, hf, layer_tensors[i].optional, layer_tensors[i].rope);
		}
	if (!rc)
		rc = add_tensor(j, "output_norm.weight", "model.norm.weight", false, false);
	if (!rc && !j->cfg->tie_word_embeddings)
		rc = add_tensor(j, "output.weight", "lm_head.weight", false, false);
	return rc;
}

static int add_arch_u32(struct shmrt_gguf_writer *w, const char *arch, const char *key, int v)
{
	char k[96];
	snprintf(k, sizeof(k), "%s.%s", arch, key);
	return shmrt_gguf_add_u32(w, k, (uint32_t)v);
}

static int add_arch_f32(struct shmrt_gguf_writer *w, const char *arch, const char *key, float v)
{
	char k[96];
	snprintf(k, sizeof(k), "%s.%s", arch, key);
	return shmrt_gguf_add_f32(w, k, v);
}

/* llama.cpp's llama_ftype of the file: MOSTLY_Q8_0, MOSTLY_Q4_0, MOSTLY_Q4_K_S. */
static uint32_t file_type(enum shmrt_dtype t)
{
	return t == SHMRT_Q8_0 ? 7 : t == SHMRT_Q4_0 ? 2 : 14;
}

static int add_hparams(struct job *j, struct shmrt_gguf_writer *w)
{
	const struct shmrt_model_config *c = j->cfg;
	const char *arch = c->arch == SHMRT_ARCH_QWEN2 ? "qwen2" : "llama";
	int rc = shmrt_gguf_add_str(w, "general.architecture", arch, strlen(arch));
	if (!rc)
		rc = shmrt_gguf_add_str(w, "general.name", "shmrt quantize", 14);
	if (!rc)
		rc = shmrt_gguf_add_u32(w, "general.file_type", file_type(j->type));
	if (!rc)
		rc = shmrt_gguf_add_u32(w, "general.quantization_version", 2);
	if (!rc)
		rc = shmrt_gguf_add_u32(w, "general.alignment", SHMRT_GGUF_ALIGNMENT);
	if (!rc)
		rc = add_arch_u32(w, arch, "context_length", c->max_position_embeddings);
	if (!rc)
		rc = add_arch_u32(w, arch, "embedding_length", c->hidden_size);
	if (!rc)
		rc = add_arch_u32(w, arch, "block_count", c->num_layers);
	if (!rc)
		rc = add_arch_u32(w, arch, "feed_forward_length", c->intermediate_size);
	if (!rc)
		rc = add_arch_u32(w, arch, "attention.head_count", c->num_heads);
	if (!rc)
		rc = add_arch_u32(w, arch, "attention.head_count_kv", c->num_kv_heads);
	if (!rc)
		rc = add_arch_u32(w, arch, "attention.key_length", c->head_dim);
	if (!rc)
		rc = add_arch_u32(w, arch, "attention.value_length", c->head_dim);
	if (!rc)
		rc = add_arch_u32(w, arch, "rope.dimension_count", c->head_dim);
	if (!rc)
		rc = add_arch_f32(w, arch, "rope.freq_base", c->rope.theta);
	if (!rc)
		rc = add_arch_f32(w, arch, "attention.layer_norm_rms_epsilon", c->rms_norm_eps);
	return rc;
}

/* Tensor q: read, widened to f32, permuted, converted into out. */
static int convert(struct job *j, const struct qtensor *q, uint8_t *raw, float *x, uint8_t *out, uint64_t *size)
{
	int rc = shmrt_checkpoint_load_tensor(j->ck, q->t->name, raw, q->t->size, NULL, NULL);
	int64_t cols = q->cols ? q->cols : q->rows, rows = q->cols ? q->rows : 1;
	for (int64_t i = 0; !rc && i < rows * cols; i++)
		x[i] = shmrt_load(raw, q->t->dtype, i);
	/* a vector (a bias) is permuted as rows of one element */
	if (!rc && q->head_rows)
		rc = shmrt_gguf_permute(x, (uint64_t)q->rows, (uint64_t)(q->cols ? q->cols : 1) * sizeof(float),
					q->head_rows);
	uint64_t row_bytes = shmrt_dtype_row_bytes(q->dt, cols);
	for (int64_t r = 0; !rc && r < rows; r++) {
		if (q->dt == SHMRT_F32)
			memcpy(out + r * row_bytes, x + r * cols, row_bytes);
		else
			rc = shmrt_quantize_row(x + r * cols, cols, q->dt, out + r * row_bytes);
	}
	*size = row_bytes * (uint64_t)rows;
	return rc;
}

static int write_tensors(struct job *j, struct shmrt_gguf_writer *w, FILE *f)
{
	uint64_t most = 0;
	for (int i = 0; i < j->n; i++)
		most = j->ts[i].t->size > most ? j->ts[i].t->size : most;
	uint64_t elems = most / 2 + 1; /* the most elements: bf16/f16 take 2 bytes */
	uint8_t *raw = malloc(most + 1), *out = malloc(elems * 4);
	float *x = malloc(elems * sizeof(float));
	int rc = raw && out && x ? 0 : shmrt_fail(ENOMEM, "no memory for a tensor of %llu bytes",
						  (unsigned long long)most);
	for (int i = 0; !rc && i < j->n; i++) {
		uint64_t size;
		rc = convert(j, &j->ts[i], raw, x, out, &size);
		if (!rc)
			rc = shmrt_gguf_write_tensor(w, f, out, size);
		j->in_bytes += j->ts[i].t->size;
		j->out_bytes += size;
	}
	free(raw);
	free(out);
	free(x);
	return rc;
}

static int add_tensor_infos(struct job *j, struct shmrt_gguf_writer *w)
{
	int rc = 0;
	for (int i = 0; !rc && i < j->n; i++) {
		const struct qtensor *q = &j->ts[i];
		int64_t ne[2] = {q->cols ? q->cols : q->rows, q->rows};
		rc = shmrt_gguf_add_tensor(w, q->name, q->cols ? 2 : 1, ne, q->dt);
	}
	return rc;
}

static int write_file(struct job *j)
{
	char tok[4096];
	struct shmrt_gguf_writer *w = NULL;
	int rc = shmrt_model_path_tokenizer(j->dir, tok, sizeof(tok));
	if (!rc)
		rc = shmrt_gguf_writer_new(&w);
	if (!rc)
		rc = add_hparams(j, w);
	if (!rc)
		rc = quantize_vocab(tok, j->cfg, w);
	if (!rc)
		rc = add_tensor_infos(j, w);
	FILE *f = rc ? NULL : fopen(j->out, "wb");
	if (!rc && !f)
		rc = shmrt_fail(errno, "%s: %s", j->out, strerror(errno));
	if (!rc)
		rc = shmrt_gguf_write_header(w, f);
	if (!rc)
		rc = write_tensors(j, w, f);
	if (f && fclose(f) && !rc)
		rc = shmrt_fail(EIO, "%s: %s", j->out, strerror(errno));
	shmrt_gguf_writer_free(w);
	return rc;
}

static int quantize(struct job *j)
{
	int rc = shmrt_checkpoint_open(j->dir, &j->ck);
	if (rc)
		return rc;
	j->cfg = shmrt_checkpoint_config(j->ck);
	if (j->cfg->rope.scaling != SHMRT_ROPE_DEFAULT)
		rc = shmrt_fail(ENOTSUP, "%s: rope scaling is not written to GGUF (llama.cpp keeps Llama 3's as a "
				"rope_freqs tensor, which shmrt does not load)", j->dir);
	if (!rc)
		rc = plan_tensors(j);
	if (!rc)
		rc = write_file(j);
	if (rc)
		remove(j->out);
	shmrt_checkpoint_close(j->ck);
	free(j->ts);
	return rc;
}

int cmd_quantize(int argc, char **argv)
{
	struct job j = {0};
	const char *type = NULL;
	static const struct option opts[] = {{"model", required_argument, 0, 'm'},
					      {"out", required_argument, 0, 'o'},
					      {"type", required_argument, 0, 't'},
					      {"help", no_argument, 0, 'h'},
					      {0}};
	for (int c; (c = getopt_long(argc, argv, "m:o:t:h", opts, NULL)) != -1;) {
		if (c == 'm')
			j.dir = optarg;
		else if (c == 'o')
			j.out = optarg;
		else if (c == 't')
			type = optarg;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc || !j.dir || !j.out || !type) {
		fprintf(stderr, "shmrt quantize: --model, --out and --type are required\n");
		return usage(stderr), 2;
	}
	if (shmrt_dtype_from_name(type, &j.type) || !shmrt_quantize_supported(j.type)) {
		fprintf(stderr, "shmrt quantize: --type wants q8_0, q4_0 or q4_k, not '%s'\n", type);
		return 2;
	}
	if (quantize(&j) < 0) {
		fprintf(stderr, "shmrt quantize: %s\n", shmrt_last_error());
		return 1;
	}
	printf("wrote %s: %d tensors, %s%s, %.2f MiB of weights (%.2f MiB in the checkpoint, %.2f MiB saved)\n",
	       j.out, j.n, shmrt_dtype_name(j.type), j.fallbacks ? " (some fell back, above)" : "",
	       (double)j.out_bytes / 1048576.0, (double)j.in_bytes / 1048576.0,
	       ((double)j.in_bytes - (double)j.out_bytes) / 1048576.0);
	return 0;
}
