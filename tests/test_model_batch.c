/* The cache paths of the forward step: a batch of sequences of different
 * lengths, prefilled at once or in chunks that continue after cached
 * tokens, mixed with decodes, must give each sequence the logits it gets
 * alone in one prefill; sampling, and the errors that must leave the
 * sequences as they were. Usage: test_model_batch [BACKEND] */
#include <errno.h>
#include <jansson.h>

#include "model_test.h"

/* The same sums over other batch shapes: only the order of accumulation
 * may differ (the matmul blocks by rows). With bf16 activations that can
 * flip a rounding of an activation (2^-8 relative), so more room; and bf16
 * against f32 activations differ by such roundings through every layer. */
#define TOL_F32 1e-4
#define TOL_BF16 2e-2
#define TOL_BF16_VS_F32 6e-2
static double TOL = TOL_F32;

#define NSEQ 5
static const int prompt_len[NSEQ] = {5, 17, 1, 33, 16};
#define NEW 6
#define MAXLEN (33 + NEW)

static const char *backend = "cpu";
static double worst;

struct seqdata {
	int32_t tokens[MAXLEN];
	int n;
	float *ref; /* [n][V]: the logits of a lone full prefill */
};

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static void reference(struct shmrt_model *m, struct seqdata *sd, int V)
{
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, 8, 16, &p));
	struct shmrt_kv_seq seq = {0};
	struct shmrt_seq_input in = {.seq = &seq, .tokens = sd->tokens, .n = sd->n};
	sd->ref = malloc((size_t)sd->n * V * sizeof(float));
	CHECK(shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_ALL, sd->ref) == sd->n, "lone prefill: %s",
	      shmrt_last_error());
	shmrt_kv_seq_reset(p, &seq);
	CHECK(shmrt_kv_pool_free_blocks(p) == 8, "blocks not returned");
	shmrt_kv_pool_free(p);
}

static void compare(const char *what, const float *got, const struct seqdata *sd, int pos, int V)
{
	double e = test_row_error(got, sd->ref + (size_t)pos * V, V);
	CHECK(e <= TOL, "%s: position %d: relative error %.3g", what, pos, e);
	worst = fmax(worst, e);
}

/* Each step, sequence s brings a chunk of its remaining tokens whose size
 * depends on s and the step (1 = decode, 0 = idle this step), all logits. */
static void chunked(struct shmrt_model *m, struct seqdata *sd, int V, int all_at_once)
{
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, NSEQ * 4, 16, &p));
	struct shmrt_kv_seq seq[NSEQ] = {0};
	float *logits = malloc((size_t)NSEQ * MAXLEN * V * sizeof(float));
	for (int step = 0;; step++) {
		struct shmrt_seq_input in[NSEQ];
		int n = 0, rows = 0;
		for (int s = 0; s < NSEQ; s++) {
			int left = sd[s].n - seq[s].len;
			int chunk = all_at_once ? (step == 0 ? prompt_len[s] : 1) : (s * 3 + step * 5) % 9;
			chunk = chunk < left ? chunk : left;
			in[n++] = (struct shmrt_seq_input){.seq = &seq[s], .tokens = sd[s].tokens + seq[s].len, .n = chunk};
			rows += chunk;
		}
		if (rows == 0)
			break;
		CHECK(shmrt_model_step(m, p, in, n, SHMRT_LOGITS_ALL, logits) == rows, "step %d: %s", step,
		      shmrt_last_error());
		for (int s = 0, r = 0; s < NSEQ; s++)
			for (int j = 0; j < in[s].n; j++, r++)
				compare(all_at_once ? "batched prefill + decode" : "chunked", logits + (size_t)r * V,
					&sd[s], seq[s].len - in[s].n + j, V);
	}
	for (int s = 0; s < NSEQ; s++)
		shmrt_kv_seq_reset(p, &seq[s]);
	CHECK(shmrt_kv_pool_free_blocks(p) == NSEQ * 4, "blocks not returned");
	shmrt_kv_pool_free(p);
	free(logits);
}

/* LOGITS_LAST rows are the last new token of the sequences that have
 * one; sampling them greedily is their argmax, and seeded sampling does
 * not depend on the batch. */
static void last_and_sample(struct shmrt_model *m, struct seqdata *sd, int V)
{
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, NSEQ * 4, 16, &p));
	struct shmrt_kv_seq seq[NSEQ] = {0};
	struct shmrt_seq_input in[NSEQ];
	for (int s = 0; s < NSEQ; s++)
		in[s] = (struct shmrt_seq_input){.seq = &seq[s], .tokens = sd[s].tokens, .n = s == 2 ? 0 : prompt_len[s]};
	float *logits = malloc((size_t)NSEQ * V * sizeof(float));
	CHECK(shmrt_model_step(m, p, in, NSEQ, SHMRT_LOGITS_LAST, logits) == NSEQ - 1, "LOGITS_LAST rows");
	struct shmrt_sample_params greedy[NSEQ] = {{0}}, hot[NSEQ];
	int32_t tok[NSEQ], again[NSEQ], alone;
	CHECK_OK(shmrt_model_sample(m, greedy, NSEQ - 1, tok));
	for (int s = 0, r = 0; s < NSEQ; s++) {
		if (s == 2)
			continue;
		compare("last rows", logits + (size_t)r * V, &sd[s], prompt_len[s] - 1, V);
		CHECK(tok[r] == test_argmax(logits + (size_t)r * V, V), "greedy sample of row %d", r);
		hot[r] = (struct shmrt_sample_params){.temperature = 1.0f, .top_p = 0.9f, .seed = 42, .seq_id = (uint64_t)s};
		r++;
	}
	CHECK(shmrt_model_sample(m, greedy, NSEQ, tok) == -EINVAL, "sampling more rows than the step made");
	CHECK_OK(shmrt_model_sample(m, hot, NSEQ - 1, tok));
	CHECK_OK(shmrt_model_sample(m, hot, NSEQ - 1, again));
	for (int r = 0; r < NSEQ - 1; r++)
		CHECK(tok[r] == again[r] && tok[r] >= 0 && tok[r] < V, "seeded sampling is not reproducible");
	/* the last sequence alone, one more step of its own: same draw as in the batch */
	for (int s = 0; s < NSEQ; s++)
		shmrt_kv_seq_reset(p, &seq[s]);
	struct shmrt_seq_input one = {.seq = &seq[4], .tokens = sd[4].tokens, .n = prompt_len[4]};
	CHECK(shmrt_model_step(m, p, &one, 1, SHMRT_LOGITS_LAST, NULL) == 1, "lone step");
	CHECK_OK(shmrt_model_sample(m, &hot[NSEQ - 2], 1, &alone));
	CHECK(alone == tok[NSEQ - 2], "sampling depends on the batch: %d alone, %d in the batch", alone,
	      tok[NSEQ - 2]);
	shmrt_kv_seq_reset(p, &seq[4]);
	shmrt_kv_pool_free(p);
	free(logits);
}

/* Failing steps leave the sequences and the pool as they were. */
static void errors(struct shmrt_model *m, struct seqdata *sd)
{
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, 3, 16, &p));
	struct shmrt_kv_seq a = {0}, b = {0};
	struct shmrt_seq_input in[2] = {{.seq = &a, .tokens = sd[1].tokens, .n = 17},
					{.seq = &b, .tokens = sd[3].tokens, .n = 33}};
	CHECK(shmrt_model_step(m, p, in, 2, SHMRT_LOGITS_LAST, NULL) == -ENOSPC, "5 blocks from a pool of 3");
	CHECK(a.len == 0 && a.n_blocks == 0 && b.len == 0 && b.n_blocks == 0 && shmrt_kv_pool_free_blocks(p) == 3,
	      "-ENOSPC changed the sequences or the pool");
	CHECK(shmrt_model_step(m, p, in, 1, SHMRT_LOGITS_LAST, NULL) == 1, "17 tokens");
	int32_t bad[2] = {1, shmrt_model_config(m)->vocab_size};
	struct shmrt_seq_input more = {.seq = &a, .tokens = bad, .n = 2};
	CHECK(shmrt_model_step(m, p, &more, 1, SHMRT_LOGITS_LAST, NULL) == -EINVAL, "a token past the vocabulary");
	CHECK(a.len == 17 && a.n_blocks == 2 && shmrt_kv_pool_free_blocks(p) == 1, "-EINVAL changed the sequence");
	/* the low-level step checks block tables and lengths */
	int32_t q = 1, ctx = 40, table[3] = {0, 1, 7};
	struct shmrt_step st = {.n_seqs = 1, .n_tokens = 1, .tokens = bad, .q_lens = &q, .ctx_lens = &ctx,
				.block_tables = table, .block_table_stride = 3};
	CHECK(shmrt_model_forward(m, p, &st, NULL) == -EINVAL, "block 7 of a pool of 3");
	ctx = shmrt_model_config(m)->max_context + 1;
	CHECK(shmrt_model_forward(m, p, &st, NULL) == -EINVAL, "past max_context");
	shmrt_kv_seq_reset(p, &a);
	shmrt_kv_seq_reset(p, &b); /* holds no block, but a table */
	CHECK(shmrt_kv_pool_free_blocks(p) == 3, "blocks not returned");
	shmrt_kv_pool_free(p);
}

/* Rewrites one integer or boolean key of the config and loads. */
static int load_with(const struct test_model_dir *d, const char *key, json_t *value)
{
	char path[128];
	test_model_file(d, "config.json", path, sizeof(path));
	json_t *cfg = json_load_file(path, 0, NULL);
	CHECK(cfg, "read %s", path);
	json_t *old = json_incref(json_object_get(cfg, key));
	json_object_set_new(cfg, key, value);
	CHECK(json_dump_file(cfg, path, 0) == 0, "write %s", path);
	struct shmrt_model *m = NULL;
	struct shmrt_model_options mo = {.backend = backend};
	int rc = shmrt_model_load(d->path, &mo, &m);
	shmrt_model_free(m);
	json_object_set_new(cfg, key, old);
	CHECK(json_dump_file(cfg, path, 0) == 0, "write %s", path);
	json_decref(cfg);
	return rc;
}

/* A checkpoint that disagrees with its config is an error naming the tensor. */
static void load_errors(void)
{
	struct test_model_dir d;
	test_model_make(&d, "tiny", 9);
	CHECK(load_with(&d, "intermediate_size", json_integer(500)) == -EINVAL &&
		      strstr(shmrt_last_error(), "model.layers.0.mlp.gate_proj.weight"),
	      "wrong intermediate_size: %s", shmrt_last_error());
	CHECK(load_with(&d, "num_hidden_layers", json_integer(3)) == -ENOENT &&
		      strstr(shmrt_last_error(), "model.layers.2."),
	      "a missing layer: %s", shmrt_last_error());
	CHECK(load_with(&d, "attention_bias", json_true()) == -ENOENT && strstr(shmrt_last_error(), "q_proj.bias"),
	      "missing biases: %s", shmrt_last_error());
	/* tied: the checkpoint's lm_head.weight is left unused */
	CHECK(load_with(&d, "tie_word_embeddings", json_true()) == 0, "tied: %s", shmrt_last_error());
	test_model_remove(&d);
}

/* bf16 activations against the f32 logits of the same checkpoint. */
static void check_bf16_vs_f32(const struct test_model_dir *d, const struct seqdata *sd, int V)
{
	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = backend};
	CHECK_OK(shmrt_model_load(d->path, &mo, &m));
	double worst_bf16 = 0;
	for (int s = 0; s < NSEQ; s++) {
		struct seqdata f32 = sd[s];
		reference(m, &f32, V);
		for (int i = 0; i < sd[s].n; i++) {
			double e = test_row_error(sd[s].ref + (size_t)i * V, f32.ref + (size_t)i * V, V);
			CHECK(e <= TOL_BF16_VS_F32, "bf16 against f32 activations: sequence %d position %d: %.3g", s, i, e);
			worst_bf16 = fmax(worst_bf16, e);
		}
		free(f32.ref);
	}
	printf("           bf16 activations: largest relative difference to f32 %.2g (tolerance %g)\n", worst_bf16,
	       TOL_BF16_VS_F32);
	shmrt_model_free(m);
}

static void count_layer(void *n)
{
	++*(int *)n;
}

/* 0, or -ENOTSUP when the backend does not run these activations. */
static int run_preset(const char *preset, uint64_t seed, enum shmrt_dtype act)
{
	int layers_seen = 0;
	struct test_model_dir d;
	test_model_make(&d, preset, seed);
	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = backend, .activations = act, .on_layer = count_layer,
					 .on_layer_arg = &layers_seen};
	CHECK_OK(shmrt_model_load(d.path, &mo, &m));
	int V = shmrt_model_config(m)->vocab_size;
	TOL = act == SHMRT_BF16 ? TOL_BF16 : TOL_F32;
	struct seqdata sd[NSEQ];
	uint32_t rng = (uint32_t)seed;
	for (int s = 0; s < NSEQ; s++) {
		sd[s].n = prompt_len[s] + NEW;
		for (int i = 0; i < sd[s].n; i++)
			sd[s].tokens[i] = (int32_t)(lcg(&rng) % (uint32_t)V);
	}
	struct shmrt_kv_pool *p;
	struct shmrt_kv_seq probe = {0};
	struct shmrt_seq_input in = {.seq = &probe, .tokens = sd[0].tokens, .n = 1};
	CHECK_OK(shmrt_kv_pool_new(m, 1, 16, &p));
	int rc = shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_LAST, NULL);
	CHECK(rc < 0 || layers_seen == shmrt_model_config(m)->num_layers, "on_layer called %d times in a step of %d layers",
	      layers_seen, shmrt_model_config(m)->num_layers);
	shmrt_kv_seq_reset(p, &probe);
	shmrt_kv_pool_free(p);
	if (rc == -ENOTSUP) {
		printf("%-10s %s activations: not run by backend %s (%s)\n", preset, shmrt_dtype_name(act), backend,
		       shmrt_last_error());
		shmrt_model_free(m);
		test_model_remove(&d);
		return rc;
	}
	CHECK_OK(rc);
	for (int s = 0; s < NSEQ; s++)
		reference(m, &sd[s], V);
	chunked(m, sd, V, 1);
	chunked(m, sd, V, 0);
	last_and_sample(m, sd, V);
	errors(m, sd);
	printf("%-10s %s activations: batched, ragged, chunked and decode steps match lone prefills\n", preset,
	       shmrt_dtype_name(act));
	if (act == SHMRT_BF16)
		check_bf16_vs_f32(&d, sd, V);
	for (int s = 0; s < NSEQ; s++)
		free(sd[s].ref);
	shmrt_model_free(m);
	test_model_remove(&d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		backend = argv[1];
	const struct shmrt_backend *b;
	int rc = shmrt_backend_get(backend, &b);
	if (rc == -ENODEV)
		SKIP("backend %s: %s", backend, shmrt_last_error());
	CHECK_OK(rc);
	load_errors();
	CHECK_OK(run_preset("tiny", 7, SHMRT_F32));
	CHECK_OK(run_preset("tiny-qwen2", 8, SHMRT_F32));
	/* "cpu" runs f32 only; "cpu-ref" and "cuda" must run bf16 */
	rc = run_preset("tiny", 7, SHMRT_BF16);
	CHECK(rc == 0 || !strcmp(backend, "cpu"), "bf16 activations on %s: %d", backend, rc);
	printf("backend %s: largest relative logit difference %.2g (tolerance %g for f32, %g for bf16)\n", backend,
	       worst, TOL_F32, TOL_BF16);
	return 0;
}
