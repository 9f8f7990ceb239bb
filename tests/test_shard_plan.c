/* Tensor-parallel shard plans (shard_plan.h) on synthetic checkpoints of
 * three small models: Llama with GQA in two shard files (BF16), Qwen2 with
 * q/k/v biases and tied embeddings (F16), Llama with attention_bias (F32).
 * For T = 1, 2, 4 every rank loads its plan (io_uring and pread in turn);
 * each shard is checked against the bytes written, and the ranks' shards
 * put back together must give every full tensor, each byte exactly once.
 * Then the plans that must fail: heads or kv heads or intermediate_size
 * not divisible by T, a bad rank, a missing tensor, a wrong shape. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "shmrt/shard_plan.h"
#include "check.h"
#include "synth_ckpt.h"
#include "array_size.h"

struct model {
	const char *name, *arch;
	int hidden, heads, kv, head_dim, inter, vocab, layers;
	bool tied, qkv_bias, o_bias, two_files;
	enum shmrt_dtype dtype;
};

static const struct model models[] = {
	{"llama-gqa", "LlamaForCausalLM", 64, 8, 4, 8, 96, 100, 2, false, false, false, true, SHMRT_BF16},
	{"qwen2", "Qwen2ForCausalLM", 48, 8, 4, 6, 64, 50, 1, true, true, false, false, SHMRT_F16},
	{"llama-bias", "LlamaForCausalLM", 32, 4, 4, 8, 40, 30, 1, false, true, true, false, SHMRT_F32},
};

static char root[] = "/tmp/shmrt-test-plan-XXXXXX";
static bool have_uring;

#define MAX_TENSORS 64

/* The tensors of m, as transformers names them; skip is left out and
 * bad_rows, when set, gives k_proj of layer 0 that many rows. */
static size_t model_tensors(const struct model *m, struct shmrt_st_tensor *t, char names[][96], const char *skip,
			    int bad_rows)
{
	int q = m->heads * m->head_dim, kv = m->kv * m->head_dim;
	size_t n = 0;
#define ADD(nd, d0, d1, ...)                                                                      \
	do {                                                                                      \
		snprintf(names[n], 96, __VA_ARGS__);                                              \
		if (!skip || strcmp(names[n], skip))                                              \
			t[n] = (struct shmrt_st_tensor){names[n], m->dtype, nd, {d0, d1}, NULL}, n++; \
	} while (0)
	ADD(2, m->vocab, m->hidden, "model.embed_tokens.weight");
	ADD(1, m->hidden, 0, "model.norm.weight");
	if (!m->tied)
		ADD(2, m->vocab, m->hidden, "lm_head.weight");
	for (int l = 0; l < m->layers; l++) {
		ADD(1, m->hidden, 0, "model.layers.%d.input_layernorm.weight", l);
		ADD(1, m->hidden, 0, "model.layers.%d.post_attention_layernorm.weight", l);
		ADD(2, q, m->hidden, "model.layers.%d.self_attn.q_proj.weight", l);
		ADD(2, l == 0 && bad_rows ? bad_rows : kv, m->hidden, "model.layers.%d.self_attn.k_proj.weight", l);
		ADD(2, kv, m->hidden, "model.layers.%d.self_attn.v_proj.weight", l);
		ADD(2, m->hidden, q, "model.layers.%d.self_attn.o_proj.weight", l);
		if (m->qkv_bias) {
			ADD(1, q, 0, "model.layers.%d.self_attn.q_proj.bias", l);
			ADD(1, kv, 0, "model.layers.%d.self_attn.k_proj.bias", l);
			ADD(1, kv, 0, "model.layers.%d.self_attn.v_proj.bias", l);
		}
		if (m->o_bias)
			ADD(1, m->hidden, 0, "model.layers.%d.self_attn.o_proj.bias", l);
		ADD(2, m->inter, m->hidden, "model.layers.%d.mlp.gate_proj.weight", l);
		ADD(2, m->inter, m->hidden, "model.layers.%d.mlp.up_proj.weight", l);
		ADD(2, m->hidden, m->inter, "model.layers.%d.mlp.down_proj.weight", l);
	}
#undef ADD
	CHECK(n <= MAX_TENSORS, "too many tensors");
	return n;
}

static void write_model(const struct model *m, const char *dir, const char *skip, int bad_rows, int inter)
{
	char p[4200 + 64], cfg[1024]; /* dir (< 4200) and a file name: gcc -O3 checks */
	CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
	snprintf(cfg, sizeof(cfg),
		 "{\"architectures\": [\"%s\"], \"hidden_size\": %d, \"intermediate_size\": %d,"
		 " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,"
		 " \"head_dim\": %d, \"vocab_size\": %d, \"max_position_embeddings\": 64,"
		 " \"tie_word_embeddings\": %s, \"attention_bias\": %s}",
		 m->arch, m->hidden, inter, m->layers, m->heads, m->kv, m->head_dim, m->vocab, m->tied ? "true" : "false",
		 m->o_bias ? "true" : "false");
	snprintf(p, sizeof(p), "%s/config.json", dir);
	synth_text(p, cfg);

	static struct shmrt_st_tensor t[MAX_TENSORS];
	static char names[MAX_TENSORS][96];
	size_t n = model_tensors(m, t, names, skip, bad_rows);
	if (!m->two_files) {
		snprintf(p, sizeof(p), "%s/model.safetensors", dir);
		synth_write(p, t, n);
		return;
	}
	/* Two shards, the first half of the list in the first. */
	size_t half = n / 2;
	snprintf(p, sizeof(p), "%s/model-00001-of-00002.safetensors", dir);
	synth_write(p, t, half);
	snprintf(p, sizeof(p), "%s/model-00002-of-00002.safetensors", dir);
	synth_write(p, t + half, n - half);
	size_t cap = 64 + n * 160, len = 0;
	char *index = malloc(cap);
	len += (size_t)snprintf(index + len, cap - len, "{\"metadata\": {}, \"weight_map\": {");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(index + len, cap - len, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
					i ? ", " : "", t[i].name, i < half ? 1 : 2);
	snprintf(index + len, cap - len, "}}");
	snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
	synth_text(p, index);
	free(index);
}

/* A full tensor being put back together from the ranks' shards. */
struct whole {
	const struct shmrt_tensor_info *t;
	uint8_t *bytes, *hits; /* hits: how many shards wrote each byte */
};

static void put_back(struct whole *w, const struct shmrt_shard *s, const uint8_t *got, int world)
{
	const struct shmrt_tensor_info *t = s->tensor;
	uint64_t es = shmrt_dtype_size(t->dtype);
	uint64_t cols = t->ndim == 2 ? (uint64_t)t->shape[1] : 1, row = cols * es;
	uint64_t runs = s->kind == SHMRT_SHARD_ROW ? (uint64_t)t->shape[0] : 1;
	uint64_t run = s->bytes / runs, from = s->kind == SHMRT_SHARD_COLUMN ? (uint64_t)s->start * row
				       : s->kind == SHMRT_SHARD_ROW   ? (uint64_t)s->start * es
								      : 0;
	for (uint64_t r = 0; r < runs; r++) {
		uint64_t at = from + r * row;
		synth_check(t->name, at, got + r * run, run, "shard");
		memcpy(w->bytes + at, got + r * run, run);
		for (uint64_t k = 0; k < run; k++)
			w->hits[at + k]++;
	}
	/* Head-aligned: rank r of T owns rows (or columns) [r*D/T, (r+1)*D/T). */
	int64_t dim = s->kind == SHMRT_SHARD_ROW ? t->shape[1] : t->shape[0];
	int64_t part = s->kind == SHMRT_SHARD_ROW ? s->shape[1] : s->shape[0];
	if (s->kind != SHMRT_SHARD_REPLICATED)
		CHECK(part * world == dim && s->start % part == 0, "%s: part %lld of %lld", t->name, (long long)part,
		      (long long)dim);
}

/* Megatron's splits (shard_plan.h), and lm_head by vocabulary where the
 * world divides it. */
static enum shmrt_shard_kind expected_kind(const char *name, const struct model *m, int world)
{
	if (!strcmp(name, "lm_head.weight"))
		return world > 1 && m->vocab % world == 0 ? SHMRT_SHARD_COLUMN : SHMRT_SHARD_REPLICATED;
	static const char *const column[] = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"};
	static const char *const row[] = {"o_proj.weight", "down_proj"};
	for (size_t i = 0; i < 5; i++)
		if (strstr(name, column[i]))
			return SHMRT_SHARD_COLUMN;
	for (size_t i = 0; i < 2; i++)
		if (strstr(name, row[i]))
			return SHMRT_SHARD_ROW;
	return SHMRT_SHARD_REPLICATED;
}

static void check_model(const struct model *m, int world)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/%s", root, m->name);
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	size_t nt = shmrt_checkpoint_tensor_count(ck);
	struct whole *wholes = calloc(nt, sizeof(*wholes));
	for (size_t i = 0; i < nt; i++) {
		wholes[i].t = shmrt_checkpoint_tensor(ck, i);
		wholes[i].bytes = calloc(1, wholes[i].t->size + 1);
		wholes[i].hits = calloc(1, wholes[i].t->size + 1);
	}
	uint64_t sum = 0;
	for (int rank = 0; rank < world; rank++) {
		struct shmrt_shard_plan *plan;
		CHECK_OK(shmrt_shard_plan_create(ck, rank, world, &plan));
		size_t n = shmrt_shard_plan_count(plan);
		CHECK(n == nt, "%s: plan of %zu tensors, checkpoint has %zu", m->name, n, nt);
		void **dst = calloc(n, sizeof(*dst));
		uint64_t bytes = 0;
		for (size_t i = 0; i < n; i++) {
			const struct shmrt_shard *s = shmrt_shard_plan_get(plan, i);
			CHECK(s->kind == expected_kind(s->tensor->name, m, world), "%s: kind %d", s->tensor->name, s->kind);
			const struct shmrt_shard *found;
			CHECK_OK(shmrt_shard_plan_find(plan, s->tensor->name, &found));
			CHECK(found == s, "find");
			dst[i] = malloc(s->bytes);
			bytes += s->bytes;
		}
		CHECK(bytes == shmrt_shard_plan_bytes(plan), "plan bytes");
		sum += bytes;
		struct shmrt_load_options o = {.method = have_uring && rank % 2 ? SHMRT_IO_URING : SHMRT_IO_PREAD,
					       .queue_depth = 4, .block_bytes = 4096};
		struct shmrt_load_stats st = {0};
		CHECK_OK(shmrt_shard_plan_load(ck, plan, dst, &o, &st));
		CHECK(st.bytes == bytes, "%s T=%d rank %d: %llu bytes loaded, plan has %llu", m->name, world, rank,
		      (unsigned long long)st.bytes, (unsigned long long)bytes);
		for (size_t i = 0; i < n; i++) {
			const struct shmrt_shard *s = shmrt_shard_plan_get(plan, i);
			size_t w = 0;
			while (wholes[w].t != s->tensor)
				w++;
			put_back(&wholes[w], s, dst[i], world);
			free(dst[i]);
		}
		free(dst);
		shmrt_shard_plan_destroy(plan);
	}
	/* Reassembled: split tensors once per byte, replicated ones T times. */
	uint64_t whole_bytes = 0;
	for (size_t i = 0; i < nt; i++) {
		const struct shmrt_tensor_info *t = wholes[i].t;
		int want = expected_kind(t->name, m, world) == SHMRT_SHARD_REPLICATED ? world : 1;
		synth_check(t->name, 0, wholes[i].bytes, t->size, "reassembled");
		for (uint64_t k = 0; k < t->size; k++)
			CHECK(wholes[i].hits[k] == want, "%s byte %llu written %d times, want %d", t->name,
			      (unsigned long long)k, wholes[i].hits[k], want);
		whole_bytes += t->size * (uint64_t)want;
		free(wholes[i].bytes);
		free(wholes[i].hits);
	}
	CHECK(sum == whole_bytes, "the ranks hold %llu bytes, want %llu", (unsigned long long)sum,
	      (unsigned long long)whole_bytes);
	free(wholes);
	shmrt_checkpoint_close(ck);
}

static void expect_plan_error(const char *dir, int rank, int world, int want, const char *msg)
{
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	struct shmrt_shard_plan *plan = (struct shmrt_shard_plan *)1;
	int rc = shmrt_shard_plan_create(ck, rank, world, &plan);
	CHECK(rc == want && !plan, "%s rank %d of %d: rc %d, want %d (%s)", dir, rank, world, rc, want,
	      shmrt_last_error());
	CHECK(strstr(shmrt_last_error(), msg), "message '%s' lacks '%s'", shmrt_last_error(), msg);
	shmrt_checkpoint_close(ck);
}

static void check_errors(void)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/%s", root, models[0].name);
	expect_plan_error(dir, 0, 3, -EINVAL, "tensor parallelism 3: num_attention_heads 8 is not a multiple of it");
	expect_plan_error(dir, 0, 8, -EINVAL, "tensor parallelism 8: num_key_value_heads 4 is not a multiple of it");
	expect_plan_error(dir, 2, 2, -EINVAL, "rank 2 of 2 ranks");
	expect_plan_error(dir, 0, 0, -EINVAL, "rank 0 of 0 ranks");

	snprintf(dir, sizeof(dir), "%s/inter42", root);
	write_model(&models[2], dir, NULL, 0, 42);
	expect_plan_error(dir, 0, 4, -EINVAL, "tensor parallelism 4: intermediate_size 42 is not a multiple of it");
	snprintf(dir, sizeof(dir), "%s/missing", root);
	write_model(&models[0], dir, "model.layers.1.mlp.up_proj.weight", 0, models[0].inter);
	expect_plan_error(dir, 0, 1, -ENOENT, "tensor 'model.layers.1.mlp.up_proj.weight' is missing");
	snprintf(dir, sizeof(dir), "%s/badshape", root);
	write_model(&models[0], dir, NULL, 16, models[0].inter);
	expect_plan_error(dir, 0, 2, -EINVAL,
			  "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 64]; config.json implies [32, 64]");
}

int main(void)
{
	CHECK(mkdtemp(root), "mkdtemp");
	struct shmrt_load_options o = {.method = SHMRT_IO_URING};
	have_uring = shmrt_checkpoint_load(NULL, NULL, 0, &o, NULL) == 0;
	for (size_t i = 0; i < ARRAY_SIZE(models); i++) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/%s", root, models[i].name);
		write_model(&models[i], dir, NULL, 0, models[i].inter);
		for (int world = 1; world <= 4; world *= 2)
			check_model(&models[i], world);
	}
	check_errors();
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0, "%s", cmd);
	printf("3 models, T = 1, 2, 4 (%s)\n", have_uring ? "io_uring and pread" : "pread");
	return 0;
}
