/* shmrt bench e2e's output: the table with ratios and the target, the
 * JSON document, the CSV rows. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "e2e.h"
#include "cpu_kernels.h"

static double tok_s(const struct e2e_row *w)
{
	return w->ns > 0 ? w->tokens / w->ns * 1e9 : NAN;
}

/* Milliseconds per decode step (a step decodes `batch` tokens). */
static double ms_per_step(const struct e2e_row *w)
{
	return w->tokens > 0 ? w->ns / (w->tokens / w->batch) / 1e6 : NAN;
}

static const struct e2e_row *find(const struct e2e_report *r, const char *engine, int batch)
{
	for (int i = 0; i < r->n_rows; i++)
		if (r->rows[i].batch == batch && !strcmp(r->rows[i].engine, engine))
			return &r->rows[i];
	return NULL;
}

/* The faster llama.cpp row at this batch, or NULL. */
static const struct e2e_row *best_peer(const struct e2e_report *r, int batch)
{
	const struct e2e_row *best = NULL;
	for (int i = 0; i < r->n_rows; i++)
		if (r->rows[i].batch == batch && !strncmp(r->rows[i].engine, "llama.cpp", 9) &&
		    (!best || tok_s(&r->rows[i]) > tok_s(best)))
			best = &r->rows[i];
	return best;
}

/* tokens/s over the faster llama.cpp's at the same batch; NAN without it. */
static double vs_peer(const struct e2e_report *r, const struct e2e_row *w)
{
	const struct e2e_row *p = best_peer(r, w->batch);
	return p ? tok_s(w) / tok_s(p) : NAN;
}

/* Prefill tokens/s: shmrt's, and the faster llama.cpp environment's (NAN
 * without one; *peer_env names it). */
static double prefill_tok_s(const struct e2e_report *r)
{
	return r->prefill_ns > 0 ? r->prefill_tokens / r->prefill_ns * 1e9 : NAN;
}

static double peer_prefill_tok_s(const struct e2e_report *r, const char **peer_env)
{
	double best = NAN;
	for (int e = 0; e < 2; e++) {
		double t = r->peer_prefill_ns[e] > 0 ? r->peer_prefill_tokens[e] / r->peer_prefill_ns[e] * 1e9 : NAN;
		if (!isnan(t) && (isnan(best) || t > best)) {
			best = t;
			*peer_env = e ? "llama.cpp-omp-passive" : "llama.cpp";
		}
	}
	return best;
}

/* The lower of the bandwidth and compute ceilings: what a row is held to. */
static double min_ceiling(const struct e2e_row *w)
{
	return w->compute_tok_s > 0 && w->compute_tok_s < w->ceiling_tok_s ? w->compute_tok_s : w->ceiling_tok_s;
}

static void put(double x, int width, int precision, const char *suffix)
{
	if (isnan(x))
		printf(" %*s%s", width, "-", *suffix ? " " : "");
	else
		printf(" %*.*f%s", width, precision, x, suffix);
}

void e2e_print_table(const struct e2e_report *r)
{
	char what[128] = "";
	if (r->preset)
		snprintf(what, sizeof(what), "preset %s, ", r->preset);
	printf("shmrt bench e2e%s: %s (%s%.1f MB of weights read per decode step), cpu backend, %d thread%s\n"
	       "prompt %d tokens, %d decode steps per turn (greedy, sampling included), %d round%s taking turns\n",
	       r->quick ? " --quick" : "", r->model, what, r->weight_bytes / 1e6, r->threads, r->threads > 1 ? "s" : "",
	       r->prompt, r->steps, r->rounds, r->rounds > 1 ? "s" : "");
	printf("weights %s%s; read bandwidth %.2f GB/s (bench kernels' mem_read on the kernels' threads, the best of\n"
	       "samples before every turn), %s;\n"
	       "ceiling = batch x bandwidth / (weight bytes + batch x KV bytes of the mean context)\n"
	       "fp32 FMA peak %.1f GFLOP/s, bf16 dot peak %.1f (the best bursts before every turn, the kernels' threads);\n"
	       "compute = 1 / (2 x %.1f M matmul weights / their peak + attention flops of the mean context / fp32 peak)\n"
	       "per token, the matmul's peak the bf16 dot's where the kernels take it (bf16 weights%s); %% min: of the\n"
	       "lower ceiling\n\n",
	       r->dtype, r->gguf ? " (a GGUF file: llama.cpp runs the same file)" : "", r->mem_gb_s,
	       r->weights_fit_llc ? "the weights fit in the last-level cache:\nread over a buffer their size, from where it stays"
				  : "from memory:\nover a buffer the weights' size, at least 4x the last-level cache",
	       r->fma_gflop_s,
	       r->bf16dot_gflop_s, r->matmul_params / 1e6, r->bf16dot_used ? ": taken here" : ": not here");
	printf("%-21s %6s %10s %9s %13s %10s %13s %6s %12s\n", "engine", "batch", "tokens/s", "ms/step", "ceiling tok/s",
	       "% ceiling", "compute tok/s", "% min", "x llama.cpp");
	for (int i = 0; i < r->n_rows; i++) {
		const struct e2e_row *w = &r->rows[i];
		printf("%-21s %6d", w->engine, w->batch);
		put(tok_s(w), 10, 2, "");
		put(ms_per_step(w), 9, 1, "");
		put(w->ceiling_tok_s, 13, 1, "");
		put(100 * tok_s(w) / w->ceiling_tok_s, 9, 0, "%");
		put(w->compute_tok_s, 13, 1, "");
		put(100 * tok_s(w) / min_ceiling(w), 5, 0, "%");
		put(vs_peer(r, w), 12, 2, "");
		printf("\n");
	}
	bool any = false;
	for (int i = 0; i < r->n_rows; i++) {
		const struct e2e_row *ours = &r->rows[i], *peer = best_peer(r, ours->batch);
		if (strcmp(ours->engine, "shmrt") || !peer)
			continue;
		double x = tok_s(ours) / tok_s(peer);
		printf("%starget: shmrt at batch %d = %.2f x %s %s (>= 1, same threads, %s weights against %s): %s\n",
		       any ? "" : "\n", ours->batch, x, peer->engine, r->peer_version, r->dtype, r->peer_dtype,
		       x >= 1 ? "met" : "NOT met");
		any = true;
	}
	if (any && r->greedy_compared)
		printf("greedy tokens at batch 1: the first %d of %d the same as llama.cpp's\n", r->greedy_same,
		       r->greedy_compared);
	if (r->prefill) {
		const char *env = "llama.cpp";
		double ours = prefill_tok_s(r), theirs = peer_prefill_tok_s(r, &env);
		printf("\nprefill of one %d-token prompt in one step (the second of two each round): shmrt %.1f tok/s = %.0f%%\n"
		       "of its compute ceiling %.1f tok/s (matmuls without the lm_head, attention over half the prompt)",
		       r->prefill, ours, 100 * ours / r->prefill_compute_tok_s, r->prefill_compute_tok_s);
		if (!isnan(theirs))
			printf(";\n%s %.1f tok/s (one llama_decode of the prompt, n_ubatch %d)\n"
			       "target: shmrt prefill = %.2f x %s (>= 1): %s\n",
			       env, theirs, r->prefill, ours / theirs, env, ours >= theirs ? "met" : "NOT met");
		else
			printf("\n");
	}
	if (r->weights_note[0])
		printf("\n%s\n", r->weights_note);
	if (r->peer_note[0])
		printf("\n%s\n", r->peer_note);
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

int e2e_print_json(const struct e2e_report *r)
{
	json_t *rows = json_array(), *notes = json_array();
	for (int i = 0; i < r->n_rows; i++) {
		const struct e2e_row *w = &r->rows[i];
		const struct e2e_row *p = best_peer(r, w->batch);
		json_t *row = json_pack("{s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "engine", w->engine, "batch", w->batch,
					"tokens_per_s", num_or_null(tok_s(w)), "ms_per_step", num_or_null(ms_per_step(w)),
					"ceiling_tokens_per_s", num_or_null(w->ceiling_tok_s), "fraction_of_ceiling",
					num_or_null(tok_s(w) / w->ceiling_tok_s), "ratio_to_llama_cpp",
					num_or_null(vs_peer(r, w)), "llama_cpp_tokens_per_s",
					num_or_null(p ? tok_s(p) : NAN));
		json_object_set_new(row, "compute_ceiling_tokens_per_s", num_or_null(w->compute_tok_s));
		json_object_set_new(row, "fraction_of_min_ceiling", num_or_null(tok_s(w) / min_ceiling(w)));
		json_array_append_new(rows, row);
	}
	if (r->peer_note[0])
		json_array_append_new(notes, json_string(r->peer_note));
	if (r->weights_note[0])
		json_array_append_new(notes, json_string(r->weights_note));
	json_t *doc = json_pack("{s:s, s:o, s:s, s:b, s:i, s:i, s:i, s:i, s:b, s:f, s:f, s:f, s:o, s:o}", "model",
				r->model, "preset", r->preset ? json_string(r->preset) : json_null(), "dtype", r->dtype,
				"gguf", r->gguf, "threads", r->threads, "prompt_tokens", r->prompt, "decode_steps", r->steps, "rounds", r->rounds,
				"quick", r->quick, "weight_bytes_per_step", r->weight_bytes, "kv_bytes_per_token",
				r->kv_token_bytes, "mem_read_gb_per_s", r->mem_gb_s, "results", rows, "notes", notes);
	json_object_set_new(doc, "fma_peak_gflop_per_s", json_real(r->fma_gflop_s));
	json_object_set_new(doc, "weights_fit_last_level_cache", json_boolean(r->weights_fit_llc));
	json_object_set_new(doc, "last_level_cache_bytes", json_real(r->llc_bytes));
	json_object_set_new(doc, "bf16dot_peak_gflop_per_s", json_real(r->bf16dot_gflop_s));
	json_object_set_new(doc, "matmul_weights_per_token", json_real(r->matmul_params));
	if (r->prefill) {
		const char *env = "llama.cpp";
		double theirs = peer_prefill_tok_s(r, &env);
		json_object_set_new(doc, "prefill",
				    json_pack("{s:i, s:o, s:o, s:o, s:o, s:s}", "prompt_tokens", r->prefill,
					      "tokens_per_s", num_or_null(prefill_tok_s(r)), "compute_ceiling_tokens_per_s",
					      num_or_null(r->prefill_compute_tok_s), "llama_cpp_tokens_per_s",
					      num_or_null(theirs), "ratio_to_llama_cpp",
					      num_or_null(prefill_tok_s(r) / theirs), "llama_cpp_engine", env));
	}
	const struct e2e_row *ours = find(r, "shmrt", 1), *peer = best_peer(r, 1);
	if (ours && peer) {
		double x = tok_s(ours) / tok_s(peer);
		json_object_set_new(doc, "target", json_pack("{s:s, s:s, s:f, s:f, s:b}", "what",
							     "shmrt tokens/s at batch 1 / the faster llama.cpp's",
							     "peer", peer->engine, "ratio", x, "min", 1.0, "met", x >= 1));
		json_object_set_new(doc, "llama_cpp", json_pack("{s:s, s:s, s:b, s:i, s:i}", "version", r->peer_version,
								"dtype", r->peer_dtype, "same_weights",
								!r->weights_note[0], "greedy_same", r->greedy_same,
								"greedy_compared", r->greedy_compared));
	}
	json_t *targets = json_array(); /* every batch with a llama.cpp row */
	for (int i = 0; i < r->n_rows; i++) {
		const struct e2e_row *w = &r->rows[i], *p = best_peer(r, w->batch);
		if (strcmp(w->engine, "shmrt") || !p)
			continue;
		double x = tok_s(w) / tok_s(p);
		json_array_append_new(targets, json_pack("{s:i, s:s, s:o, s:f, s:b}", "batch", w->batch, "peer",
							 p->engine, "ratio", num_or_null(x), "min", 1.0, "met", x >= 1));
	}
	json_object_set_new(doc, "targets", targets);
	int rc = json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
	printf("\n");
	json_decref(doc);
	return rc ? -EIO : 0;
}

int e2e_write_csv(const struct e2e_report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "engine,batch,tokens_per_s,ms_per_step,ceiling_tokens_per_s,ratio_to_llama_cpp,"
		   "compute_ceiling_tokens_per_s\n");
	for (int i = 0; i < r->n_rows; i++) {
		const struct e2e_row *w = &r->rows[i];
		double v[5] = {tok_s(w), ms_per_step(w), w->ceiling_tok_s, vs_peer(r, w), w->compute_tok_s};
		fprintf(f, "%s,%d", w->engine, w->batch);
		for (int k = 0; k < 5; k++)
			if (isnan(v[k]))
				fprintf(f, ",");
			else
				fprintf(f, ",%.4f", v[k]);
		fprintf(f, "\n");
	}
	return fclose(f) ? -errno : 0;
}
