/* `shmrt bench e2e --quick --json --csv FILE` (the tiny preset, batches 1
 * and 8) prints one JSON document: a shmrt row per batch with positive,
 * finite tokens/s, bandwidth and compute ceilings and the fraction of the
 * lower, the weight bytes of a step, the measured bandwidth and FMA peak; and either llama.cpp rows at batches 1 and 8 (as it comes, and
 * with passive OpenMP waits) with each shmrt row's ratio to the faster, a
 * target per batch, llama.cpp's weight type (the checkpoint's: bf16) and
 * the greedy-token comparison, or a note saying why there are none (not
 * installed). The CSV has the same rows; the made checkpoint is gone
 * afterwards. Then the same with --model SmolLM2's GGUF file (fetched
 * with scripts/fetch_model.py into argv[3], or $SHMRT_SMOLLM2_GGUF; that
 * part is left out, saying so, when it cannot be fetched): "gguf" true,
 * the weights' type q4_1 on both sides; and with --quantize q8_0 (llama.cpp
 * on q8_0 too) and q4_k (llama.cpp on bf16, and a note). Not a speed test. argv[1]: the
 * shmrt program; argv[2]: scripts/fetch_model.py; argv[3]: its cache. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "command_output.h"
#include "file_counts.h"
#include "json_document.h"

static double positive(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	CHECK(json_is_number(v), "\"%s\" is not a number", key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "\"%s\" = %g", key, x);
	return x;
}

/* The llama.cpp rows, or the note that explains their absence. */
static void check_peer(const json_t *doc, int n_peer, const char *dtype, const char *peer_dtype)
{
	bool same_weights = !strcmp(dtype, peer_dtype);
	json_t *notes = json_object_get(doc, "notes");
	json_t *targets = json_object_get(doc, "targets");
	CHECK(json_is_array(targets), "no \"targets\" array");
	if (!n_peer) {
		const char *note = json_string_value(json_array_get(notes, 0));
		CHECK(note && !strncmp(note, "llama.cpp: not installed", 24),
		      "no llama.cpp row and no note saying it is not installed: %s", note ? note : "(none)");
		CHECK(!json_object_get(doc, "target"), "a target without a llama.cpp row");
		CHECK(json_array_size(targets) == 0, "targets without a llama.cpp row");
		return;
	}
	const char *note = json_string_value(json_array_get(notes, 0));
	if (same_weights)
		CHECK(json_array_size(notes) == 0, "llama.cpp rows and a note: %s", note);
	else /* --quantize q4_k: gguf-py cannot make it */
		CHECK(json_array_size(notes) == 1 && strstr(note, "not like for like") && strstr(note, "K formats"),
		      "llama.cpp on other weights, and no note or another: %s", note ?: "(none)");
	json_t *target = json_object_get(doc, "target");
	CHECK(json_is_boolean(json_object_get(target, "met")), "no target.met");
	positive(target, "ratio");
	CHECK(json_array_size(targets) == 2, "%zu targets for batches 1 and 8", json_array_size(targets));
	for (size_t i = 0; i < 2; i++) {
		json_t *t = json_array_get(targets, i);
		json_int_t batch = json_integer_value(json_object_get(t, "batch"));
		CHECK(batch == (i ? 8 : 1), "target %zu: batch %lld", i, (long long)batch);
		CHECK(json_is_boolean(json_object_get(t, "met")), "target %zu: no met", i);
		positive(t, "ratio");
	}
	json_t *l = json_object_get(doc, "llama_cpp");
	const char *pd = json_string_value(json_object_get(l, "dtype"));
	CHECK(pd && !strcmp(pd, peer_dtype), "llama.cpp's weights %s, not %s", pd ?: "(none)", peer_dtype);
	CHECK(json_is_boolean(json_object_get(l, "same_weights")) &&
		      json_is_true(json_object_get(l, "same_weights")) == same_weights,
	      "llama.cpp: same_weights is not %s", same_weights ? "true" : "false");
	json_int_t same = json_integer_value(json_object_get(l, "greedy_same"));
	json_int_t compared = json_integer_value(json_object_get(l, "greedy_compared"));
	CHECK(compared == 4 && same >= 0 && same <= compared, "greedy tokens: %lld of %lld", (long long)same,
	      (long long)compared);
	printf("llama.cpp %s (shmrt %s, llama.cpp %s): ratio %.2f at batch 1, %.2f at batch 8; greedy tokens %lld of %lld the same\n",
	       json_string_value(json_object_get(l, "version")), dtype, peer_dtype,
	       json_number_value(json_object_get(json_array_get(targets, 0), "ratio")),
	       json_number_value(json_object_get(json_array_get(targets, 1), "ratio")), (long long)same,
	       (long long)compared);
}

/* The document of one run: its rows (shmrt at 1 and 8, llama.cpp's four
 * or none), the peer's part (its weights peer_dtype); the number of rows. */
static size_t check_doc(const json_t *doc, bool gguf, const char *dtype, const char *peer_dtype)
{
	const char *d = json_string_value(json_object_get(doc, "dtype"));
	CHECK(d && !strcmp(d, dtype), "dtype %s, not %s", d ?: "(none)", dtype);
	CHECK(json_is_boolean(json_object_get(doc, "gguf")) && json_is_true(json_object_get(doc, "gguf")) == gguf,
	      "\"gguf\" is not %s", gguf ? "true" : "false");
	positive(doc, "weight_bytes_per_step");
	positive(doc, "kv_bytes_per_token");
	positive(doc, "mem_read_gb_per_s");
	positive(doc, "fma_peak_gflop_per_s");
	positive(doc, "matmul_weights_per_token");
	/* --quick's prefill: one 32-token prompt in one step */
	json_t *pre = json_object_get(doc, "prefill");
	CHECK(json_integer_value(json_object_get(pre, "prompt_tokens")) == 32, "no prefill of 32 tokens");
	positive(pre, "tokens_per_s");
	positive(pre, "compute_ceiling_tokens_per_s");

	int seen[2] = {0}, peer_seen[2] = {0}, n_peer = 0;
	json_t *row;
	size_t i;
	json_array_foreach(json_object_get(doc, "results"), i, row) {
		const char *engine = json_string_value(json_object_get(row, "engine"));
		json_int_t batch = json_integer_value(json_object_get(row, "batch"));
		CHECK(engine, "row %zu: no engine", i);
		CHECK(batch == 1 || batch == 8, "row %zu: %s at batch %lld", i, engine, (long long)batch);
		positive(row, "tokens_per_s");
		positive(row, "ms_per_step");
		positive(row, "ceiling_tokens_per_s");
		CHECK(json_object_get(row, "llama_cpp_tokens_per_s"), "row %zu: no llama_cpp_tokens_per_s", i);
		if (!strncmp(engine, "llama.cpp", 9)) {
			n_peer++;
			peer_seen[batch == 8]++;
			positive(row, "llama_cpp_tokens_per_s");
			continue;
		}
		CHECK(!strcmp(engine, "shmrt"), "row %zu: engine %s", i, engine);
		positive(row, "compute_ceiling_tokens_per_s");
		positive(row, "fraction_of_min_ceiling");
		seen[batch == 8]++;
	}
	CHECK(seen[0] == 1 && seen[1] == 1, "shmrt rows: %d at batch 1, %d at batch 8", seen[0], seen[1]);
	CHECK(n_peer == 0 || (peer_seen[0] == 2 && peer_seen[1] == 2),
	      "llama.cpp rows: %d at batch 1, %d at batch 8 (as it comes and OMP passive at each, or none)",
	      peer_seen[0], peer_seen[1]);
	json_array_foreach(json_object_get(doc, "results"), i, row) {
		if (!n_peer || strcmp(json_string_value(json_object_get(row, "engine")), "shmrt"))
			continue;
		positive(row, "ratio_to_llama_cpp"); /* every batch has its llama.cpp */
		positive(row, "llama_cpp_tokens_per_s");
	}
	check_peer(doc, n_peer, dtype, peer_dtype);
	return i;
}

/* SmolLM2's GGUF file, or NULL (saying why). */
static char *smollm2(const char *fetch, const char *cache)
{
	const char *env = getenv("SHMRT_SMOLLM2_GGUF");
	if (env && *env)
		return strdup(env);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s'", fetch, cache);
	int status;
	char *out = command_output(cmd, &status);
	out[strcspn(out, "\n")] = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && out[0] && access(out, R_OK) == 0)
		return out;
	printf("SmolLM2's GGUF cannot be fetched (status %#x): the GGUF run is left out\n", status);
	free(out);
	return NULL;
}

int main(int argc, char **argv)
{
	CHECK(argc == 4, "usage: %s SHMRT_PROGRAM FETCH_MODEL_PY CACHE_DIR", argv[0]);
	char dir[] = "/var/tmp/shmrt-test-bench-e2e-XXXXXX", cmd[8192], csv[4096];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(csv, sizeof(csv), "%s.csv", dir);
	snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --json --tmpdir '%s' --csv '%s'", argv[1], dir, csv);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
	json_t *doc = json_document(out);
	CHECK(!strcmp(json_string_value(json_object_get(doc, "preset")) ?: "", "tiny"), "not the tiny preset");
	size_t n = check_doc(doc, false, "bf16", "bf16");
	CHECK(count_lines(csv) == (int)n + 1, "%s: %d lines for %zu rows", csv, count_lines(csv), n);
	CHECK(count_entries(dir) == 0, "%s: the made checkpoint (or the peer's files) left behind", dir);
	json_decref(doc);
	free(out);
	unlink(csv);

	/* --quantize: llama.cpp's GGUF quantized the same way where gguf-py can
	 * (q8_0), else its bf16 with a note (q4_k). */
	static const char *const quantize[][2] = {{"q8_0", "q8_0"}, {"q4_k", "bf16"}};
	for (int q = 0; q < 2; q++) {
		snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --json --tmpdir '%s' --quantize %s", argv[1], dir,
			 quantize[q][0]);
		out = command_output(cmd, &status);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
		doc = json_document(out);
		check_doc(doc, false, quantize[q][0], quantize[q][1]);
		CHECK(count_entries(dir) == 0, "%s: the made checkpoint (or the peer's files) left behind", dir);
		json_decref(doc);
		free(out);
	}

	char *gguf = smollm2(argv[2], argv[3]);
	if (gguf) {
		snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --json --tmpdir '%s' --model '%s'", argv[1], dir,
			 gguf);
		out = command_output(cmd, &status);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
		doc = json_document(out);
		CHECK(json_is_null(json_object_get(doc, "preset")), "a preset with --model");
		check_doc(doc, true, "q4_1", "q4_1");
		CHECK(count_entries(dir) == 0, "%s: the peer's files left behind", dir);
		CHECK(access(gguf, R_OK) == 0, "%s: the model is gone", gguf);
		json_decref(doc);
		free(out);
		free(gguf);
	}
	rmdir(dir);

	snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --batch 0 2>&1", argv[1]);
	out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--batch 0: exit status %#x", status);
	free(out);
	return 0;
}
