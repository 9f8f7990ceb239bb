/* shmrt bench e2e: internal interfaces between its files. */
#ifndef SHMRT_BENCH_E2E_H
#define SHMRT_BENCH_E2E_H

#include <stdbool.h>
#include <stdint.h>

#define E2E_MAX_BATCHES 8
#define E2E_MAX_STEPS 1024

/* One engine at one batch size, over all rounds. */
struct e2e_row {
	const char *engine; /* "shmrt", "llama.cpp", "llama.cpp-omp-passive" */
	const char *env;    /* a llama.cpp row's environment */
	int batch;
	double tokens, ns;  /* decoded tokens, decode time (ns), summed over the rounds */
	double ceiling_tok_s; /* the memory-bandwidth ceiling at this batch */
	double compute_tok_s; /* the compute ceiling: fma peak / flops of a token */
};

struct e2e_report {
	const char *model, *preset; /* preset: NULL when --model was given */
	const char *dtype;
	int threads, prompt, steps, rounds;
	bool quick;
	double weight_bytes;   /* read by one decode step */
	double kv_token_bytes; /* K and V of one token, all layers */
	double mem_gb_s;       /* read bandwidth: median over the rounds */
	double matmul_params;  /* weight elements a token multiplies (2 flops each) */
	double attn_flops_per_ctx; /* attention flops of a token per cached position */
	double fma_gflop_s;    /* fp32 FMA peak: the best burst of all rounds */
	struct e2e_row rows[2 * E2E_MAX_BATCHES];
	int n_rows;
	/* The peer: why there are no llama.cpp rows ("" when there are); its
	 * version; its greedy tokens at batch 1 against ours. */
	char peer_note[512];
	char peer_version[64];
	int greedy_same, greedy_compared;
};

/* The llama.cpp peer (bench/llama_cpp_peer.py through python3). */
struct e2e_peer {
	char script[4096]; /* the driver */
	char gguf[4096];   /* our weights converted, made once */
	const char *model, *tmpdir;
	int threads;
};

/* Whether python3 can import llama_cpp and gguf, and the driver script is
 * there: 0, or -errno with why in note. */
int e2e_peer_probe(struct e2e_peer *p, char *note, size_t cap);

/* Decodes `steps` tokens greedily after prompt[0..n_prompt) at batch 1,
 * with env ("NAME=VALUE ..." or "") in the driver's environment:
 * the decode time in ns, the tokens (up to E2E_MAX_STEPS) in tokens[],
 * llama.cpp's version in version. Converts the weights to GGUF on first
 * use. 0 or -errno with why in note. */
int e2e_peer_decode(struct e2e_peer *p, const char *env, const int32_t *prompt, int n_prompt, int steps, double *ns,
		    int32_t *tokens, char *version, size_t version_cap, char *note, size_t note_cap);

struct shmrt_model;

/* B sequences, sequence s's prompt at prompts[s * prompt], prefilled in
 * one step, then `steps` greedy decode steps of all B in this process:
 * their time in *ns; sequence 0's tokens (the prefill's, then each step's
 * but the last) into first0 unless NULL. 0 or -errno. */
int e2e_decode(struct shmrt_model *m, int B, const int32_t *prompts, int prompt, int steps, int32_t *first0,
	       int64_t *ns);

void e2e_print_table(const struct e2e_report *r);
int e2e_print_json(const struct e2e_report *r);
int e2e_write_csv(const struct e2e_report *r, const char *path);

#endif
