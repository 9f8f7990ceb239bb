/* A synthetic Llama checkpoint for shmrt bench load (load.h): real layout
 * and sizes, pseudo-random bytes. Written in chunks, so a checkpoint of a
 * few GiB needs only a few MiB of memory. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "shmrt/error.h"
#include "load.h"

#define CHUNK ((size_t)8 << 20)
#define MAX_TENSORS_PER_LAYER 9

struct names {
	char (*name)[96];
	struct shmrt_st_tensor *t;
	size_t n, cap;
};

static void add(struct names *v, const char *name, int64_t rows, int64_t cols)
{
	size_t i = v->n++;
	snprintf(v->name[i], sizeof(v->name[i]), "%s", name);
	v->t[i] = (struct shmrt_st_tensor){.name = v->name[i], .dtype = SHMRT_BF16, .ndim = cols ? 2 : 1,
					   .shape = {rows, cols}};
}

static void add_layer(struct names *v, const struct load_synth *s, int l)
{
	static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
	static const char *const mlp[] = {"gate_proj", "up_proj", "down_proj"};
	int64_t d = s->hidden, kv = (int64_t)s->hidden / s->heads * s->kv_heads, f = s->intermediate;
	int64_t attn_shape[4][2] = {{d, d}, {kv, d}, {kv, d}, {d, d}}, mlp_shape[3][2] = {{f, d}, {f, d}, {d, f}};
	char name[96];
	snprintf(name, sizeof(name), "model.layers.%d.input_layernorm.weight", l);
	add(v, name, d, 0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "model.layers.%d.self_attn.%s.weight", l, attn[i]);
		add(v, name, attn_shape[i][0], attn_shape[i][1]);
	}
	snprintf(name, sizeof(name), "model.layers.%d.post_attention_layernorm.weight", l);
	add(v, name, d, 0);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "model.layers.%d.mlp.%s.weight", l, mlp[i]);
		add(v, name, mlp_shape[i][0], mlp_shape[i][1]);
	}
}

static uint64_t tensor_bytes(const struct shmrt_st_tensor *t)
{
	uint64_t n = shmrt_dtype_size(t->dtype);
	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

/* splitmix64: distinct, incompressible bytes. */
static void fill(uint64_t *w, size_t n, uint64_t *state)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		w[i] = z ^ (z >> 31);
	}
}

static int write_data(int fd, const char *path, uint64_t off, uint64_t bytes, uint64_t *state, uint64_t *buf)
{
	while (bytes) {
		size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK;
		fill(buf, (n + 7) / 8, state);
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, (char *)buf + done, n - done, (off_t)(off + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int err = w < 0 ? errno : EIO;
				fprintf(stderr, "shmrt bench load: %s: %s\n", path, strerror(err));
				return -err;
			}
			done += (size_t)w;
		}
		off += n;
		bytes -= n;
	}
	return 0;
}

/* One safetensors file of tensors t[0..n). */
static int write_file(const char *path, const struct shmrt_st_tensor *t, size_t n, uint64_t *state, uint64_t *buf)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "shmrt bench load: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	uint64_t off, bytes = 0;
	int rc = shmrt_st_write_header(fd, path, t, n, &off);
	if (rc < 0)
		fprintf(stderr, "shmrt bench load: %s\n", shmrt_last_error());
	for (size_t i = 0; i < n; i++)
		bytes += tensor_bytes(&t[i]);
	if (rc == 0)
		rc = write_data(fd, path, off, bytes, state, buf);
	if (rc == 0 && fdatasync(fd) < 0) {
		rc = -errno;
		fprintf(stderr, "shmrt bench load: %s: fdatasync: %s\n", path, strerror(errno));
	}
	close(fd);
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc = f && fputs(text, f) >= 0 ? 0 : -EIO;
	if (f && fclose(f) != 0)
		rc = -EIO;
	if (rc < 0)
		fprintf(stderr, "shmrt bench load: cannot write %s\n", path);
	return rc;
}

static int write_config(const char *dir, const struct load_synth *s)
{
	char path[4096], text[1024];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	snprintf(text, sizeof(text),
		 "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d,\n"
		 " \"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d,\n"
		 " \"num_key_value_heads\": %d, \"vocab_size\": %d, \"max_position_embeddings\": 2048,\n"
		 " \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\"}\n",
		 s->hidden, s->intermediate, s->layers, s->heads, s->kv_heads, s->vocab);
	return write_text(path, text);
}

/* model.safetensors.index.json: tensor -> file name. */
static int write_index(const char *dir, const struct names *v, const size_t *first, int shards, uint64_t total)
{
	json_t *map = json_object();
	for (int k = 0; k < shards; k++) {
		char file[64];
		snprintf(file, sizeof(file), "model-%05d-of-%05d.safetensors", k + 1, shards);
		for (size_t i = first[k]; i < first[k + 1]; i++)
			json_object_set_new(map, v->t[i].name, json_string(file));
	}
	json_t *doc = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
	char path[4096];
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	int rc = doc && json_dump_file(doc, path, JSON_INDENT(2)) == 0 ? 0 : -EIO;
	if (rc < 0)
		fprintf(stderr, "shmrt bench load: cannot write %s\n", path);
	json_decref(doc);
	return rc;
}

/* Tensors in file order; first[k] is shard k's first, first[shards] = n. */
static void layout(const struct load_synth *s, struct names *v, size_t *first)
{
	add(v, "model.embed_tokens.weight", s->vocab, s->hidden);
	for (int k = 0; k < s->shards; k++) {
		first[k] = k ? v->n : 0;
		for (int l = s->layers * k / s->shards; l < s->layers * (k + 1) / s->shards; l++)
			add_layer(v, s, l);
	}
	add(v, "model.norm.weight", s->hidden, 0);
	add(v, "lm_head.weight", s->vocab, s->hidden);
	first[s->shards] = v->n;
}

int load_write_checkpoint(const char *dir, const struct load_synth *s, uint64_t *bytes)
{
	struct names v = {.cap = (size_t)s->layers * MAX_TENSORS_PER_LAYER + 3};
	v.name = calloc(v.cap, sizeof(*v.name));
	v.t = calloc(v.cap, sizeof(*v.t));
	size_t *first = calloc((size_t)s->shards + 1, sizeof(*first));
	uint64_t *buf = malloc(CHUNK);
	int rc = v.name && v.t && first && buf ? 0 : -ENOMEM;
	if (rc == 0) {
		layout(s, &v, first);
		rc = write_config(dir, s);
	}
	uint64_t state = 0x5348u, total = 0; /* "SH" */
	for (size_t i = 0; i < v.n; i++)
		total += tensor_bytes(&v.t[i]);
	for (int k = 0; rc == 0 && k < s->shards; k++) {
		char path[4096];
		if (s->shards == 1)
			snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		else
			snprintf(path, sizeof(path), "%s/model-%05d-of-%05d.safetensors", dir, k + 1, s->shards);
		rc = write_file(path, v.t + first[k], first[k + 1] - first[k], &state, buf);
	}
	if (rc == 0 && s->shards > 1)
		rc = write_index(dir, &v, first, s->shards, total);
	*bytes = total;
	free(buf);
	free(first);
	free(v.t);
	free(v.name);
	return rc;
}
