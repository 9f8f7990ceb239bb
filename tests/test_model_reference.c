/* The forward pass against Hugging Face transformers: for each case of
 * fixtures/model/cases.json (made by make_reference.py), regenerate the
 * checkpoint with mkmodel from its preset and seed, and check
 *  - the files hash as they did when the fixtures were made (else the
 *    generator changed and the fixtures must be remade);
 *  - `shmrt logits` matches transformers' float32 logits within TOL
 *    (relative to the row's largest logit), and so does a prefill in chunks;
 *  - greedy generation (library, whole and chunked prefill, and `shmrt
 *    generate --json`) gives transformers' tokens exactly;
 *  - the checkpoint's tokenizer.json encodes as HF `tokenizers` does;
 *  - `shmrt logits` and `shmrt generate` with --workers 2 (tensor parallel
 *    over forked ranks, model.h) do the same: same TOL, same tokens.
 * Usage: test_model_reference SHMRT_EXE FIXTURE_DIR [BACKEND] */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <sys/wait.h>

#include "model_test.h"

extern char **environ;

/* transformers and shmrt both accumulate in fp32; they differ in order of
 * summation only (measured: ~2e-6). */
#define TOL 1e-4

static const char *exe, *fixtures, *backend = "cpu";
static double worst;

static uint64_t fnv1a64(const char *path)
{
	FILE *f = fopen(path, "rb");
	CHECK(f, "open %s", path);
	uint64_t h = 0xcbf29ce484222325ull;
	for (int c; (c = getc(f)) != EOF;)
		h = (h ^ (uint8_t)c) * 0x100000001b3ull;
	fclose(f);
	return h;
}

/* Runs argv with stdout to out_path (or /dev/null); returns the exit status. */
static int run(char *const argv[], const char *out_path)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
					 0644);
	pid_t pid;
	CHECK(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static float *read_f32(const char *path, size_t n)
{
	float *v = malloc(n * sizeof(float));
	FILE *f = fopen(path, "rb");
	CHECK(v && f, "open %s", path);
	CHECK(fread(v, sizeof(float), n, f) == n && getc(f) == EOF, "%s does not hold %zu floats", path, n);
	fclose(f);
	return v;
}

static int ids_of(json_t *a, int32_t **ids)
{
	int n = (int)json_array_size(a);
	*ids = malloc(((size_t)n + 1) * sizeof(int32_t));
	for (int i = 0; i < n; i++)
		(*ids)[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
	return n;
}

static char *id_list(const int32_t *ids, int n)
{
	char *s = malloc((size_t)n * 12 + 1);
	size_t at = 0;
	for (int i = 0; i < n; i++)
		at += (size_t)sprintf(s + at, "%s%d", i ? "," : "", ids[i]);
	s[at] = 0;
	return s;
}

static void check_rows(const char *what, const float *got, const float *want, int rows, int vocab)
{
	for (int r = 0; r < rows; r++) {
		double e = test_row_error(got + (size_t)r * vocab, want + (size_t)r * vocab, vocab);
		CHECK(e <= TOL, "%s: row %d: relative error %.3g > %g", what, r, e, TOL);
		worst = fmax(worst, e);
	}
}

static void check_hashes(const struct test_model_dir *d, json_t *c)
{
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(c, "fnv1a64"), key, v) {
		char path[128], hex[17];
		test_model_file(d, key, path, sizeof(path));
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fnv1a64(path));
		CHECK(!strcmp(hex, json_string_value(v)),
		      "%s of preset %s differs from the one the fixtures were made from (hash %s, want %s): "
		      "mkmodel changed; rerun tests/fixtures/model/make_reference.py",
		      key, json_string_value(json_object_get(c, "preset")), hex, json_string_value(v));
	}
}

static void check_cli_logits(const struct test_model_dir *d, const int32_t *toks, int n, const float *want, int V,
			     char *workers)
{
	char out[128];
	test_model_file(d, "logits.f32", out, sizeof(out));
	char *list = id_list(toks, n);
	char *argv[] = {(char *)exe, "logits", "--model", (char *)d->path, "--tokens", list, "--out", out,
			"--backend", (char *)backend, "--workers", workers, NULL};
	CHECK(run(argv, NULL) == 0, "shmrt logits --workers %s failed", workers);
	float *got = read_f32(out, (size_t)n * V);
	check_rows(strcmp(workers, "1") ? "shmrt logits --workers N" : "shmrt logits", got, want, n, V);
	free(got);
	free(list);
}

/* --workers reaches the model: 3 ranks cannot split the presets' 4 heads. */
static void check_cli_bad_workers(const struct test_model_dir *d)
{
	char out[128];
	test_model_file(d, "logits.f32", out, sizeof(out));
	char *argv[] = {(char *)exe, "logits", "--model", (char *)d->path, "--tokens", "1,2", "--out", out,
			"--backend", (char *)backend, "--workers", "3", NULL};
	CHECK(run(argv, NULL) != 0, "shmrt logits --workers 3 split 4 heads");
}

/* The same logits through the library, the prompt in chunks of 7. */
static void check_chunked_logits(struct shmrt_model *m, const int32_t *toks, int n, const float *want, int V)
{
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, (n + 15) / 16, 16, &p));
	struct shmrt_kv_seq seq = {0};
	float *got = malloc((size_t)n * V * sizeof(float));
	for (int at = 0; at < n; at += 7) {
		struct shmrt_seq_input in = {.seq = &seq, .tokens = toks + at, .n = n - at < 7 ? n - at : 7};
		CHECK(shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_ALL, got + (size_t)at * V) == in.n, "step");
	}
	check_rows("chunked prefill", got, want, n, V);
	shmrt_kv_seq_reset(p, &seq);
	shmrt_kv_pool_free(p);
	free(got);
}

static void check_greedy(struct shmrt_model *m, const int32_t *prompt, int np, const int32_t *want, int nw)
{
	int32_t *out = malloc((size_t)nw * sizeof(int32_t));
	for (int chunk = 0; chunk <= 4; chunk += 4) {
		struct shmrt_gen_options o = {.max_tokens = nw, .temperature = 0, .ignore_eos = 1, .prefill_chunk = chunk};
		CHECK(shmrt_generate(m, prompt, np, &o, out, nw, NULL) == nw, "generate: %s", shmrt_last_error());
		for (int i = 0; i < nw; i++)
			CHECK(out[i] == want[i], "greedy (prefill chunk %d): token %d is %d, transformers says %d", chunk,
			      i, out[i], want[i]);
	}
	free(out);
}

static void check_cli_generate(const struct test_model_dir *d, const int32_t *prompt, int np, const int32_t *want,
			       int nw, char *workers)
{
	char out[128], max[16];
	test_model_file(d, "logits.f32", out, sizeof(out));
	snprintf(max, sizeof(max), "%d", nw);
	char *list = id_list(prompt, np);
	char *argv[] = {(char *)exe, "generate", "--model", (char *)d->path, "--tokens", list, "--max-tokens", max,
			"--temperature", "0", "--ignore-eos", "--json", "--backend", (char *)backend, "--workers",
			workers, NULL};
	CHECK(run(argv, out) == 0, "shmrt generate --workers %s failed", workers);
	json_error_t err;
	json_t *doc = json_load_file(out, JSON_ALLOW_NUL, &err); /* the text may hold byte 0 */
	CHECK(doc, "shmrt generate --json: not one JSON document: %s", err.text);
	json_t *toks = json_object_get(doc, "tokens");
	CHECK((int)json_array_size(toks) == nw, "shmrt generate: %zu tokens", json_array_size(toks));
	for (int i = 0; i < nw; i++)
		CHECK(json_integer_value(json_array_get(toks, (size_t)i)) == want[i],
		      "shmrt generate --workers %s: token %d", workers, i);
	CHECK(json_is_string(json_object_get(doc, "text")), "shmrt generate: no text");
	json_decref(doc);
	free(list);
}

static void check_tokenizer(const struct test_model_dir *d, json_t *c)
{
	char path[128];
	test_model_file(d, "tokenizer.json", path, sizeof(path));
	struct shmrt_tokenizer *tok;
	CHECK_OK(shmrt_tokenizer_load(path, NULL, &tok));
	const char *text = json_string_value(json_object_get(c, "text"));
	int32_t *want, got[512];
	int nw = ids_of(json_object_get(c, "text_ids"), &want);
	int n = shmrt_tokenizer_encode(tok, text, strlen(text), SHMRT_ENCODE_ADD_SPECIAL, got, 512);
	CHECK(n == nw, "tokenizer: %d ids, HF tokenizers gives %d", n, nw);
	for (int i = 0; i < n; i++)
		CHECK(got[i] == want[i], "tokenizer: id %d is %d, HF tokenizers gives %d", i, got[i], want[i]);
	char back[1024];
	CHECK(shmrt_tokenizer_decode(tok, got, (size_t)n, SHMRT_DECODE_SKIP_SPECIAL, back, sizeof(back)) ==
		      (int)strlen(text) && !strcmp(back, text),
	      "tokenizer: decode(encode(text)) is not the text");
	shmrt_tokenizer_free(tok);
	free(want);
}

static void check_case(json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	struct test_model_dir d;
	test_model_make(&d, json_string_value(json_object_get(c, "preset")),
			(uint64_t)json_integer_value(json_object_get(c, "seed")));
	check_hashes(&d, c);
	int32_t *toks, *prompt, *greedy;
	int n = ids_of(json_object_get(c, "tokens"), &toks);
	int np = ids_of(json_object_get(c, "greedy_prompt"), &prompt);
	int ng = ids_of(json_object_get(c, "greedy_tokens"), &greedy);
	int V = (int)json_integer_value(json_object_get(c, "vocab"));
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", fixtures, json_string_value(json_object_get(c, "logits")));
	float *want = read_f32(path, (size_t)n * V);

	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = backend};
	CHECK_OK(shmrt_model_load(d.path, &mo, &m));
	CHECK(shmrt_model_config(m)->vocab_size == V, "vocab");
	check_cli_logits(&d, toks, n, want, V, "1");
	check_cli_logits(&d, toks, n, want, V, "2");
	check_cli_bad_workers(&d);
	check_chunked_logits(m, toks, n, want, V);
	check_greedy(m, prompt, np, greedy, ng);
	check_cli_generate(&d, prompt, np, greedy, ng, "1");
	check_cli_generate(&d, prompt, np, greedy, ng, "2");
	check_tokenizer(&d, c);
	shmrt_model_free(m);
	printf("%-12s %-40s ok\n", name, json_string_value(json_object_get(c, "covers")));
	test_model_remove(&d);
	free(toks);
	free(prompt);
	free(greedy);
	free(want);
}

int main(int argc, char **argv)
{
	CHECK(argc >= 3, "usage: test_model_reference SHMRT_EXE FIXTURE_DIR [BACKEND]");
	exe = argv[1];
	fixtures = argv[2];
	if (argc > 3)
		backend = argv[3];
	const struct shmrt_backend *b;
	int rc = shmrt_backend_get(backend, &b);
	if (rc == -ENODEV)
		SKIP("backend %s: %s", backend, shmrt_last_error());
	CHECK_OK(rc);
	char path[512];
	snprintf(path, sizeof(path), "%s/cases.json", fixtures);
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	CHECK(doc, "%s: %s", path, err.text);
	json_t *cases = json_object_get(doc, "cases"), *c;
	size_t i;
	CHECK(json_array_size(cases) >= 3, "%s: no cases", path);
	json_array_foreach(cases, i, c)
		check_case(c);
	printf("%zu cases match transformers %s (backend %s): largest relative logit error %.2g (tolerance %g)\n",
	       json_array_size(cases), json_string_value(json_object_get(doc, "transformers")), backend, worst, TOL);
	json_decref(doc);
	return 0;
}
