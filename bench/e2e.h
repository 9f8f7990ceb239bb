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
	const char *dtype; /* shmrt's weights: the checkpoint's dtype, or most of a GGUF's matrices' type */
	bool gguf;         /* the model is a GGUF file (llama.cpp runs that file) */
	int threads, prompt, steps, rounds;
	bool quick;
	double weight_bytes;   /* read by one decode step */
	double kv_token_bytes; /* K and V of one token, all layers */
	double mem_gb_s;       /* read bandwidth: median over the rounds */
	double llc_bytes;      /* the last-level cache (bench_llc_bytes) */
	bool weights_fit_llc;  /* mem_gb_s was read over a buffer the weights' size, within it */
	double matmul_params;  /* weight elements a token multiplies (2 flops each) */
	double attn_flops_per_ctx; /* attention flops of a token per cached position */
	double fma_gflop_s;    /* fp32 FMA peak: the best burst of all rounds */
	double bf16dot_gflop_s; /* AVX512-BF16 dot product peak likewise; 0 without it */
	bool bf16dot_used;	/* the bf16 matmuls take the dot product (shmrt_cpu_bf16dot_used) */
	struct e2e_row rows[3 * E2E_MAX_BATCHES]; /* shmrt, then llama.cpp's two per batch */
	int n_rows;
	/* The peer: why there are no llama.cpp rows ("" when there are); its
	 * version and its weights' type; why its weights are not shmrt's
	 * ("" when they are); its greedy tokens at batch 1 against ours. */
	char peer_note[512];
	char peer_version[64];
	char peer_dtype[16];
	char weights_note[256];
	int greedy_same, greedy_compared;
	/* Prefill of one `prefill`-token prompt in one step, summed over the
	 * rounds: shmrt's, and llama.cpp's in each environment (as its rows). */
	int prefill;
	double prefill_tokens, prefill_ns;
	double peer_prefill_tokens[2], peer_prefill_ns[2];
	double prefill_compute_tok_s; /* its compute ceiling */
	double prefill_matmul_params; /* weight elements a prompt token multiplies (no lm_head) */
};

/* The llama.cpp peer (bench/llama_cpp_peer.py through python3). */
struct e2e_peer {
	char script[4096];  /* the driver */
	char gguf[4096];    /* the model when it is a GGUF file, else our weights converted, made once */
	char prompts[4096]; /* the prompts' file (e2e_peer_prompts) */
	bool own_gguf;      /* gguf is the conversion, removed by e2e_peer_cleanup */
	const char *model, *tmpdir;
	const char *quantize; /* the driver's --quantize (q8_0, q4_0) for a converted checkpoint, or NULL */
	int threads;
};

/* Whether python3 can import llama_cpp and gguf, and the driver script is
 * there: 0, or -errno with why in note. */
int e2e_peer_probe(struct e2e_peer *p, char *note, size_t cap);

/* Writes the prompts of n_seqs sequences (sequence s's at prompts[s *
 * prompt]), then the prefill prompt when n_prefill > 0, to a temporary
 * file for the driver. 0 or -errno with why in note. */
int e2e_peer_prompts(struct e2e_peer *p, const int32_t *prompts, int n_seqs, int prompt, const int32_t *prefill,
		     int n_prefill, char *note, size_t cap);

/* What the driver says of one run. */
struct e2e_peer_result {
	double ns[E2E_MAX_BATCHES]; /* decode time at batches[i] */
	int32_t tokens[E2E_MAX_STEPS]; /* sequence 0's greedy tokens at batch 1 */
	bool have_tokens; /* batch 1 was among the batches */
	double prefill_ns; /* the prefill prompt's, when asked for */
	char version[64], dtype[16];
};

/* Decodes `steps` tokens greedily at each of batches[0..n_batches) (batch B:
 * the first B prompts of e2e_peer_prompts, each its own sequence), with
 * env ("NAME=VALUE ..." or "") in the driver's environment, into *out.
 * Converts a checkpoint to GGUF on first use (a GGUF model is used as it
 * is). 0 or -errno with why in note. */
int e2e_peer_decode(struct e2e_peer *p, const char *env, const int *batches, int n_batches, int steps,
		    int prefill, struct e2e_peer_result *out, char *note, size_t note_cap);

/* Removes the conversion and the prompts' file. */
void e2e_peer_cleanup(struct e2e_peer *p);

struct shmrt_model;

/* B sequences, sequence s's prompt at prompts[s * prompt], prefilled in
 * one step, then `steps` greedy decode steps of all B in this process:
 * their time in *ns; sequence 0's tokens (the prefill's, then each step's
 * but the last) into first0 unless NULL. 0 or -errno. */
int e2e_decode(struct shmrt_model *m, int B, const int32_t *prompts, int prompt, int steps, int32_t *first0,
	       int64_t *ns);

/* One prompt of n tokens prefilled in one step in this process, twice
 * (the first warms up): the second's time in *ns. 0 or -errno. */
int e2e_prefill(struct shmrt_model *m, const int32_t *ids, int n, int64_t *ns);

void e2e_print_table(const struct e2e_report *r);
int e2e_print_json(const struct e2e_report *r);
int e2e_write_csv(const struct e2e_report *r, const char *path);

#endif
