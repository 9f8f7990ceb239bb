/* shmrt bench e2e: decode tokens/s of one process at batch 1, 8 and 32 on
 * the `small` preset (or --model: a checkpoint or a GGUF file), beside the
 * memory-bandwidth ceiling measured in the same run and llama.cpp on the
 * same weights at the same batches. Issues 4, 16 and 17.
 *
 * A turn at batch B: B sequences of the same prompt length are prefilled
 * in one step, then `steps` decode steps each feed every sequence its last
 * greedy token and sample the next (sampling included, as in serving);
 * only the decode steps are timed. Rounds take turns: a bandwidth sample,
 * then each batch, then llama.cpp at each batch, so that the host's load on
 * this shared machine falls on all of them alike.
 *
 * llama.cpp (bench/llama_cpp_peer.py) decodes the same way: B sequences
 * of the same prompts in one context of n_seq_max = B, each prompt
 * prefilled as its own sequence, then each decode step one llama_decode of
 * B tokens (one a sequence, its own seq_id and position); the same
 * threads; the same weights: a GGUF model is that file, a checkpoint is
 * converted by bench/to_gguf.py (its dtype kept).
 *
 * llama.cpp runs twice a round: as it comes (its OpenMP threads spin
 * between operations) and with OMP_WAIT_POLICY=passive (they sleep). On a
 * machine whose cores other jobs share, a spinning thread whose partner
 * was preempted burns its time slice at every barrier: on the 2-vCPU build
 * VM that made the default 15-20x slower than passive (bench/RESULTS.md).
 * The target is against the faster of the two.
 *
 * The ceiling: a decode step reads every weight once (model.h's
 * shmrt_model_step_weight_bytes) and each sequence's K/V cache (f32), so
 * at batch B it cannot beat B x bandwidth / (weight bytes + B x KV bytes
 * of the mean context) tokens/s. The bandwidth is bench kernels' read
 * bandwidth on the CPU kernels' thread pool (kb_cpu_mem_read_buf), over a
 * buffer the size of the weights (at least 4x the last-level cache when
 * they do not fit in it).
 *
 * The compute ceiling (issue 16): a token costs 2 flops per matmul weight
 * and 4 x head_dim per query head and cached position. Attention and the
 * matmuls keep fp32 activations, so the fp32 FMA peak is theirs; a bf16
 * matmul on AVX512-BF16's dot product (kernels/cpu/matmul_bf16dot.c, when
 * SHMRT_CPU_BF16DOT=on) is held to that instruction's peak. Batched decode is
 * bound by the lower of the two ceilings; the table gives both and the
 * fraction of the lower.
 *
 * The limits are maxima, sampled before every turn (a bandwidth pass and
 * bursts of each peak) and the best kept: on this shared machine a round
 * whose only samples fell in a busy second read half the FMA peak and
 * half the bandwidth, and the rows came out at 1.07-1.65 of their
 * "ceiling" (issue 16 asks that none exceed 1.0). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "shmrt/mkmodel.h"
#include "shmrt/model.h"
#include "cpu_pool.h"
#include "clock.h"
#include "bench.h"
#include "e2e.h"
#include "cpu_kernels.h"
#include "e2e_mp.h"
#include "fail.h"
#include "kernels.h"
#include "array_size.h"

struct args {
	const char *model, *preset, *csv, *tmpdir;
	bool quick, json, no_peer;
	int batches[E2E_MAX_BATCHES], n_batches;
	int prompt, steps, rounds;
	int prefill; /* --prefill: tokens of the prefill prompt, 0 for none */
	int quantize_to; /* --quantize: shmrt_model_options.quantize_to */
};

/* The prompt of sequence s: ids spread over the vocabulary, clear of the
 * special tokens mkmodel puts last. */
static int32_t prompt_token(int vocab, int s, int i)
{
	return (int32_t)((1000 + 37 * s + 11 * i) % (vocab - 2));
}

struct run {
	struct shmrt_model *m;
	const struct args *a;
	int vocab;
	int32_t first_tokens[E2E_MAX_STEPS]; /* batch 1's greedy tokens, sequence 0 */
	int n_first;
};

int e2e_decode(struct shmrt_model *m, int B, const int32_t *prompts, int prompt, int steps, int32_t *first0,
	       int64_t *ns)
{
	int bs = 16, per_seq = (prompt + steps + bs) / bs;
	struct shmrt_kv_pool *pool = NULL;
	struct shmrt_kv_seq *seqs = calloc((size_t)B, sizeof(*seqs));
	struct shmrt_seq_input *in = calloc((size_t)B, sizeof(*in));
	struct shmrt_sample_params *sp = calloc((size_t)B, sizeof(*sp));
	int32_t *next = calloc((size_t)B, sizeof(int32_t));
	int rc = seqs && in && sp && next ? 0 : -ENOMEM;
	if (rc == 0)
		rc = shmrt_kv_pool_new(m, B * per_seq, bs, &pool);
	for (int s = 0; rc == 0 && s < B; s++) {
		in[s] = (struct shmrt_seq_input){&seqs[s], prompts + (size_t)s * (size_t)prompt, prompt};
		sp[s] = (struct shmrt_sample_params){.temperature = 0, .top_p = 1, .seq_id = (uint64_t)s};
	}
	if (rc == 0 && (rc = shmrt_model_step(m, pool, in, B, SHMRT_LOGITS_LAST, NULL)) >= 0)
		rc = shmrt_model_sample(m, sp, B, next);
	int64_t t0 = shmrt_now_ns();
	for (int step = 0; rc >= 0 && step < steps; step++) {
		if (first0)
			first0[step] = next[0];
		for (int s = 0; s < B; s++)
			in[s] = (struct shmrt_seq_input){&seqs[s], &next[s], 1};
		if ((rc = shmrt_model_step(m, pool, in, B, SHMRT_LOGITS_LAST, NULL)) >= 0)
			rc = shmrt_model_sample(m, sp, B, next);
	}
	*ns = shmrt_now_ns() - t0;
	for (int s = 0; pool && s < B; s++)
		shmrt_kv_seq_reset(pool, &seqs[s]);
	shmrt_kv_pool_free(pool);
	free(seqs);
	free(in);
	free(sp);
	free(next);
	return rc < 0 ? rc : 0;
}

int e2e_prefill(struct shmrt_model *m, const int32_t *ids, int n, int64_t *ns)
{
	int bs = 16;
	struct shmrt_kv_pool *pool = NULL;
	struct shmrt_kv_seq seq = {0};
	int rc = shmrt_kv_pool_new(m, (n + bs) / bs + 1, bs, &pool);
	for (int pass = 0; rc >= 0 && pass < 2; pass++) {
		struct shmrt_seq_input in = {&seq, ids, n};
		int64_t t0 = shmrt_now_ns();
		rc = shmrt_model_step(m, pool, &in, 1, SHMRT_LOGITS_LAST, NULL);
		*ns = shmrt_now_ns() - t0;
		shmrt_kv_seq_reset(pool, &seq);
	}
	shmrt_kv_pool_free(pool);
	return rc < 0 ? rc : 0;
}

/* The prefill prompt: sequence 0's pattern, n tokens. */
static int32_t *prefill_ids(const struct run *r, int n)
{
	int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
	for (int i = 0; ids && i < n; i++)
		ids[i] = prompt_token(r->vocab, 0, i);
	return ids;
}

/* One prefill of the prefill prompt, added to the report. */
static int prefill_turn(struct run *r, struct e2e_report *rep)
{
	int32_t *ids = prefill_ids(r, rep->prefill);
	int64_t ns = 0;
	int rc = ids ? e2e_prefill(r->m, ids, rep->prefill, &ns) : shmrt_fail(ENOMEM, "no memory");
	free(ids);
	if (rc < 0)
		return fprintf(stderr, "shmrt bench e2e: prefill of %d tokens: %s\n", rep->prefill, shmrt_last_error()), rc;
	rep->prefill_tokens += rep->prefill;
	rep->prefill_ns += (double)ns;
	return 0;
}

/* One turn at batch B: adds the decoded tokens and the time to *row. */
static int decode_turn(struct run *r, int B, struct e2e_row *row)
{
	const struct args *a = r->a;
	int32_t *prompts = malloc((size_t)B * (size_t)a->prompt * sizeof(int32_t));
	int64_t ns = 0;
	int rc = prompts ? 0 : shmrt_fail(ENOMEM, "no memory");
	for (int s = 0; !rc && s < B; s++)
		for (int i = 0; i < a->prompt; i++)
			prompts[s * a->prompt + i] = prompt_token(r->vocab, s, i);
	if (!rc)
		rc = e2e_decode(r->m, B, prompts, a->prompt, a->steps, B == 1 ? r->first_tokens : NULL, &ns);
	free(prompts);
	if (rc < 0)
		return fprintf(stderr, "shmrt bench e2e: batch %d: %s\n", B, shmrt_last_error()), rc;
	if (B == 1)
		r->n_first = a->steps;
	row->tokens += (double)B * a->steps;
	row->ns += (double)ns;
	return 0;
}

/* The prompts of the largest batch, for the peer (batch B takes the first
 * B, as decode_turn makes them). */
static int peer_prompts(struct run *r, struct e2e_peer *peer, struct e2e_report *rep)
{
	const struct args *a = r->a;
	int n = 0;
	for (int b = 0; b < a->n_batches; b++)
		n = a->batches[b] > n ? a->batches[b] : n;
	int32_t *prompts = malloc((size_t)n * (size_t)a->prompt * sizeof(int32_t));
	if (!prompts)
		return snprintf(rep->peer_note, sizeof(rep->peer_note), "llama.cpp: no memory"), -ENOMEM;
	for (int s = 0; s < n; s++)
		for (int i = 0; i < a->prompt; i++)
			prompts[s * a->prompt + i] = prompt_token(r->vocab, s, i);
	int32_t *pre = prefill_ids(r, rep->prefill);
	int rc = pre ? e2e_peer_prompts(peer, prompts, n, a->prompt, pre, rep->prefill, rep->peer_note,
					sizeof(rep->peer_note))
		     : -ENOMEM;
	free(prompts);
	free(pre);
	return rc;
}

/* llama.cpp at every batch, with one environment: rows[b] is its row at
 * a->batches[b]. A failure turns its rows off with a note, not the
 * benchmark. */
static void peer_turn(struct run *r, struct e2e_peer *peer, struct e2e_report *rep, struct e2e_row *rows)
{
	const struct args *a = r->a;
	struct e2e_peer_result res;
	if (e2e_peer_decode(peer, rows[0].env, a->batches, a->n_batches, a->steps, rep->prefill, &res, rep->peer_note,
			    sizeof(rep->peer_note)) < 0)
		return;
	int env = rows[0].env[0] != 0; /* 0: as it comes, 1: OMP passive (measure()'s order) */
	if (rep->prefill && res.prefill_ns > 0) {
		rep->peer_prefill_tokens[env] += rep->prefill;
		rep->peer_prefill_ns[env] += res.prefill_ns;
	}
	for (int b = 0; b < a->n_batches; b++) {
		rows[b].tokens += (double)a->batches[b] * a->steps;
		rows[b].ns += res.ns[b];
	}
	snprintf(rep->peer_version, sizeof(rep->peer_version), "%s", res.version);
	snprintf(rep->peer_dtype, sizeof(rep->peer_dtype), "%s", res.dtype);
	if (strcmp(res.dtype, rep->dtype))
		snprintf(rep->weights_note, sizeof(rep->weights_note),
			 "llama.cpp runs %s weights, shmrt %s: not like for like%s", res.dtype, rep->dtype,
			 !strcmp(rep->dtype, "q4_k") && !rep->gguf
				 ? " (gguf-py cannot quantize the K formats: llama.cpp runs the checkpoint's own dtype)"
				 : "");
	if (!res.have_tokens)
		return;
	int n = a->steps < r->n_first ? a->steps : r->n_first, same = 0;
	while (same < n && res.tokens[same] == r->first_tokens[same])
		same++;
	rep->greedy_same = same;
	rep->greedy_compared = n;
}

/* The ceiling of each row from the bandwidth and the bytes of a step. */
static void set_ceilings(struct e2e_report *rep)
{
	double mean_ctx = rep->prompt + (rep->steps + 1) / 2.0;
	struct shmrt_matmul_args probe = {.m = 1, .w_dtype = SHMRT_BF16};
	rep->bf16dot_used = !strcmp(rep->dtype, "bf16") && shmrt_cpu_bf16dot_used(&probe);
	double mm_peak = rep->bf16dot_used ? rep->bf16dot_gflop_s : rep->fma_gflop_s;
	/* a prompt's tokens see (n + 1) / 2 positions on average */
	rep->prefill_compute_tok_s =
		1e9 / (2 * rep->prefill_matmul_params / mm_peak +
		       rep->attn_flops_per_ctx * (rep->prefill + 1) / 2.0 / rep->fma_gflop_s);
	for (int i = 0; i < rep->n_rows; i++) {
		double B = rep->rows[i].batch;
		rep->rows[i].ceiling_tok_s =
			B * rep->mem_gb_s * 1e9 / (rep->weight_bytes + B * rep->kv_token_bytes * mean_ctx);
		rep->rows[i].compute_tok_s =
			1e9 / (2 * rep->matmul_params / mm_peak + rep->attn_flops_per_ctx * mean_ctx / rep->fma_gflop_s);
	}
}

/* One sample of each limit, the best kept: a read pass over the buffer
 * (50 ms; 10 with --quick) and two bursts of each compute peak. */
static void sample_limits(struct e2e_report *rep, const float *buf, size_t bytes, bool quick)
{
	double gbs = kb_cpu_mem_read_buf(buf, bytes, quick ? 10000000 : 50000000);
	rep->mem_gb_s = gbs > rep->mem_gb_s ? gbs : rep->mem_gb_s;
	double peak = kb_cpu_peak(KB_PEAK_FMA, 2);
	rep->fma_gflop_s = peak > rep->fma_gflop_s ? peak : rep->fma_gflop_s;
	peak = kb_cpu_peak(KB_PEAK_BF16DOT, 2);
	rep->bf16dot_gflop_s = peak > rep->bf16dot_gflop_s ? peak : rep->bf16dot_gflop_s;
}

static int measure(struct run *r, struct e2e_report *rep, struct e2e_peer *peer, bool have_peer)
{
	const struct args *a = r->a;
	int rc = 0, peer_row = -1;
	for (int b = 0; b < a->n_batches; b++)
		rep->rows[rep->n_rows++] = (struct e2e_row){"shmrt", "", a->batches[b], 0, 0, NAN, NAN};
	if (have_peer && peer_prompts(r, peer, rep) == 0) { /* as it comes, then passive: see the top */
		peer_row = rep->n_rows;
		for (int b = 0; b < a->n_batches; b++)
			rep->rows[rep->n_rows++] = (struct e2e_row){"llama.cpp", "", a->batches[b], 0, 0, NAN, NAN};
		for (int b = 0; b < a->n_batches; b++)
			rep->rows[rep->n_rows++] = (struct e2e_row){"llama.cpp-omp-passive", "OMP_WAIT_POLICY=passive",
								    a->batches[b], 0, 0, NAN, NAN};
	}
	/* Over the weights' size: a decode step reads them again each step,
	 * from memory when they are larger than the last-level cache (and
	 * then over at least 4x the cache, so none of the buffer stays in it),
	 * else from wherever they stay, which a buffer their size read over
	 * and over measures (issue 16: on a Xeon with 480 MiB of L3 the small
	 * preset's 200 MB ran at 1.10 of a ceiling read from DRAM). */
	size_t bw_bytes = (size_t)rep->weight_bytes, llc = bench_llc_bytes();
	rep->llc_bytes = (double)llc;
	rep->weights_fit_llc = llc > 0 && bw_bytes <= llc;
	if (!rep->weights_fit_llc)
		bw_bytes = bw_bytes > 4 * llc ? bw_bytes : 4 * llc;
	size_t buf_bytes = (bw_bytes + 255) & ~(size_t)255;
	float *bw_buf = aligned_alloc(64, buf_bytes);
	if (!bw_buf)
		return fprintf(stderr, "shmrt bench e2e: no memory for the bandwidth buffer\n"), -ENOMEM;
	memset(bw_buf, 0, buf_bytes); /* fault the pages in */
	for (int round = 0; rc == 0 && round < a->rounds; round++) {
		for (int b = 0; rc == 0 && b <= a->n_batches; b++) {
			sample_limits(rep, bw_buf, bw_bytes, a->quick);
			if (b < a->n_batches)
				rc = decode_turn(r, a->batches[b], &rep->rows[b]);
			else if (rep->prefill)
				rc = prefill_turn(r, rep);
		}
		for (int i = peer_row; rc == 0 && i >= 0 && i < rep->n_rows && !rep->peer_note[0]; i += a->n_batches)
			peer_turn(r, peer, rep, &rep->rows[i]);
	}
	free(bw_buf);
	if (peer_row >= 0 && rep->peer_note[0])
		rep->n_rows = peer_row; /* the peer failed: its note says why */
	if (rc < 0)
		return rc;
	set_ceilings(rep);
	return 0;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt bench e2e [--model DIR | --preset NAME] [--batch 1,8,32] [--quick] [--json]\n"
		"                       [--csv FILE] [--prompt N] [--steps N] [--rounds N] [--no-peer]\n"
		"                       [--tmpdir DIR] [--quantize q8_0|q4_0|q4_k]\n\n"
		"Decode tokens/s of one process on the CPU backend at each batch size, the\n"
		"memory-bandwidth ceiling beside it (weight + KV bytes of a decode step against\n"
		"read bandwidth measured in the same run), the compute ceiling (the fp32 FMA peak\n"
		"measured in the same run over a token's flops), and llama.cpp at the same\n"
		"batches on the same weights and threads (llama-cpp-python and gguf from PyPI,\n"
		"when python3 has them; bench/llama_cpp_peer.py: B sequences batched with\n"
		"llama_decode; a GGUF model is run as it is, a checkpoint converted by\n"
		"bench/to_gguf.py), as it\n"
		"comes and with OMP_WAIT_POLICY=passive. Target: shmrt >= the faster llama.cpp\n"
		"at every batch.\n\n"
		"  --model PATH    a checkpoint directory or a .gguf file (default: `shmrt\n"
		"                  mkmodel --preset small` written under --tmpdir and removed\n"
		"                  afterwards)\n"
		"  --preset NAME   the mkmodel preset to make instead (default small; tiny with\n"
		"                  --quick)\n"
		"  --batch LIST    batch sizes, comma separated (default 1,8,32; 1,8 with --quick)\n"
		"  --prompt N      prompt tokens per sequence before decoding (default 16)\n"
		"  --steps N       decode steps per turn (default 32; 4 with --quick)\n"
		"  --prefill N     also time one N-token prompt prefilled in one step, against\n"
		"                  llama.cpp's prompt processing (one llama_decode) and the\n"
		"                  compute ceiling (default 512; 32 with --quick; 0: none)\n"
		"  --rounds N      turns of every batch and the peer (default 3; 1 with --quick)\n"
		"  --no-peer       leave llama.cpp out\n"
		"  --quick         a short run (tiny preset), for tests\n"
		"  --json          one JSON document on stdout\n"
		"  --csv FILE      also write the rows to FILE\n"
		"  --tmpdir DIR    where a made checkpoint goes (default /var/tmp)\n"
		"  --quantize TYPE shmrt quantizes the weights at load (q8_0, q4_0, q4_k), and\n"
		"                  to_gguf.py llama.cpp's the same way (q8_0, q4_0: gguf-py cannot\n"
		"                  quantize the K formats, so with q4_k llama.cpp runs the\n"
		"                  checkpoint's dtype, and a note says so)\n"
		"  --workers W     through the multi-process runtime instead, against one\n"
		"                  process ('shmrt bench e2e --workers 1 --help')\n"
		"Threads: the CPU kernels' ($SHMRT_CPU_THREADS, else every CPU this process may\n"
		"use); llama.cpp gets the same number.\n");
}

static int parse_batches(const char *s, struct args *a)
{
	a->n_batches = 0;
	for (const char *p = s; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 256 || a->n_batches == E2E_MAX_BATCHES || (*end && *end != ','))
			return -EINVAL;
		a->batches[a->n_batches++] = (int)v;
		p = *end ? end + 1 : end;
	}
	return a->n_batches ? 0 : -EINVAL;
}

static bool positive(const char *s, int max, int *out)
{
	char end;
	int v;
	if (sscanf(s, "%d%c", &v, &end) != 1 || v < 1 || v > max)
		return false;
	*out = v;
	return true;
}

/* -1 to run, or the exit status (usage), as the other benchmarks' parsers. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},  {"preset", required_argument, 0, 'P'},
		{"batch", required_argument, 0, 'B'},  {"quick", no_argument, 0, 'q'},
		{"json", no_argument, 0, 'j'},         {"csv", required_argument, 0, 'c'},
		{"prompt", required_argument, 0, 'p'}, {"steps", required_argument, 0, 's'},
		{"rounds", required_argument, 0, 'r'}, {"no-peer", no_argument, 0, 'n'},
		{"tmpdir", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
		{"quantize", required_argument, 0, 'Q'}, {"prefill", required_argument, 0, 'F'}, {0},
	};
	*a = (struct args){.tmpdir = "/var/tmp"};
	const char *batches = NULL;
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "m:P:B:qjc:p:s:r:nt:Q:F:h", opts, NULL)) != -1;) {
		if (c == 'm')
			a->model = optarg;
		else if (c == 'P')
			a->preset = optarg;
		else if (c == 'B')
			batches = optarg;
		else if (c == 'q')
			a->quick = true;
		else if (c == 'j')
			a->json = true;
		else if (c == 'c')
			a->csv = optarg;
		else if (c == 'n')
			a->no_peer = true;
		else if (c == 't')
			a->tmpdir = optarg;
		else if (c == 'Q') {
			enum shmrt_dtype q;
			if (shmrt_dtype_from_name(optarg, &q) || (q != SHMRT_Q8_0 && q != SHMRT_Q4_0 && q != SHMRT_Q4_K)) {
				fprintf(stderr, "shmrt bench e2e: --quantize wants q8_0, q4_0 or q4_k, not '%s'\n", optarg);
				return 2;
			}
			a->quantize_to = (int)q;
		}
		else if (c == 'F') {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 4096) {
				fprintf(stderr, "shmrt bench e2e: --prefill wants 0 to 4096 tokens, not '%s'\n", optarg);
				return 2;
			}
			a->prefill = v ? (int)v : -1; /* -1: asked for none */
		}
		else if ((c == 'p' && positive(optarg, 4096, &a->prompt)) ||
			 (c == 's' && positive(optarg, E2E_MAX_STEPS, &a->steps)) ||
			 (c == 'r' && positive(optarg, 64, &a->rounds)))
			continue;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc || (a->model && a->preset) || parse_batches(batches ? batches : a->quick ? "1,8" : "1,8,32", a))
		return usage(stderr), 2;
	if (!a->model && !a->preset)
		a->preset = a->quick ? "tiny" : "small";
	a->prompt = a->prompt ? a->prompt : 16;
	a->prefill = a->prefill < 0 ? 0 : a->prefill ? a->prefill : a->quick ? 32 : 512;
	a->steps = a->steps ? a->steps : a->quick ? 4 : 32;
	a->rounds = a->rounds ? a->rounds : a->quick ? 1 : 3;
	return -1;
}

static const char *dtype_name(enum shmrt_dtype d)
{
	return d == SHMRT_BF16 ? "bf16" : d == SHMRT_F16 ? "f16" : d == SHMRT_F32 ? "f32" : "?";
}

/* The type of most of a GGUF file's matrices ("q4_1" for SmolLM2's
 * Q4_1 file, whose embedding is Q8_0), or NULL when it cannot say. */
static const char *gguf_weight_type(const char *path)
{
	struct shmrt_checkpoint *ck;
	if (shmrt_checkpoint_open(path, &ck) < 0)
		return shmrt_clear_error(), NULL;
	int count[32] = {0}, best = -1;
	for (size_t i = 0; i < shmrt_checkpoint_tensor_count(ck); i++) {
		const struct shmrt_tensor_info *t = shmrt_checkpoint_tensor(ck, i);
		if (t->ndim == 2 && (unsigned)t->dtype < ARRAY_SIZE(count))
			count[t->dtype]++;
	}
	for (int d = 0; d < (int)ARRAY_SIZE(count); d++)
		if (count[d] && (best < 0 || count[d] > count[best]))
			best = d;
	shmrt_checkpoint_close(ck);
	return best < 0 ? NULL : shmrt_dtype_name((enum shmrt_dtype)best);
}

static int run(const struct args *a, const char *dir)
{
	struct shmrt_model *m;
	if (shmrt_model_load(dir, &(struct shmrt_model_options){.backend = "cpu", .quantize_to = a->quantize_to},
			     &m) < 0) {
		fprintf(stderr, "shmrt bench e2e: %s\n", shmrt_last_error());
		return -EINVAL;
	}
	const struct shmrt_model_config *cfg = shmrt_model_config(m);
	/* The weights' type: a GGUF file's own (its block formats stay with
	 * --quantize), else --quantize's, else the checkpoint's dtype. */
	bool gguf = shmrt_model_path_is_gguf(dir);
	const char *dt = gguf ? gguf_weight_type(dir) : NULL;
	enum shmrt_dtype file_dt;
	if (a->quantize_to && (!dt || (shmrt_dtype_from_name(dt, &file_dt) == 0 && !shmrt_dtype_is_quantized(file_dt))))
		dt = shmrt_dtype_name((enum shmrt_dtype)a->quantize_to);
	struct e2e_report rep = {.model = dir, .preset = a->model ? NULL : a->preset,
				 .dtype = dt ? dt : dtype_name(cfg->dtype), .gguf = gguf,
				 .threads = shmrt_pool_threads(), .prompt = a->prompt, .steps = a->steps,
				 .prefill = a->prefill < cfg->max_context ? a->prefill : cfg->max_context,
				 .rounds = a->rounds, .quick = a->quick,
				 .weight_bytes = (double)shmrt_model_step_weight_bytes(m),
				 .kv_token_bytes = (double)shmrt_kv_block_bytes(cfg, 16) / 16};
	double h = cfg->hidden_size, q = (double)cfg->num_heads * cfg->head_dim;
	rep.matmul_params = cfg->num_layers * (h * (q + 2.0 * cfg->num_kv_heads * cfg->head_dim) + q * h +
					       3 * h * cfg->intermediate_size) +
			    (double)cfg->vocab_size * h;
	rep.prefill_matmul_params = rep.matmul_params - (double)cfg->vocab_size * h; /* logits of the last token only */
	rep.attn_flops_per_ctx = 4.0 * cfg->head_dim * cfg->num_heads * cfg->num_layers;
	struct e2e_peer peer = {.model = dir, .tmpdir = a->tmpdir, .threads = rep.threads};
	if (gguf) /* llama.cpp runs the same file */
		snprintf(peer.gguf, sizeof(peer.gguf), "%s", dir);
	else if (a->quantize_to == SHMRT_Q8_0 || a->quantize_to == SHMRT_Q4_0) /* what to_gguf.py can make */
		peer.quantize = shmrt_dtype_name((enum shmrt_dtype)a->quantize_to);
	bool have_peer = false;
	if (a->no_peer)
		snprintf(rep.peer_note, sizeof(rep.peer_note), "llama.cpp: left out (--no-peer)");
	else
		have_peer = e2e_peer_probe(&peer, rep.peer_note, sizeof(rep.peer_note)) == 0;
	struct run r = {.m = m, .a = a, .vocab = cfg->vocab_size};
	int rc = measure(&r, &rep, &peer, have_peer);
	e2e_peer_cleanup(&peer);
	if (rc == 0)
		rc = a->json ? e2e_print_json(&rep) : (e2e_print_table(&rep), 0);
	if (rc == 0 && a->csv && (rc = e2e_write_csv(&rep, a->csv)) < 0)
		fprintf(stderr, "shmrt bench e2e: %s: %s\n", a->csv, strerror(-rc));
	shmrt_model_free(m);
	return rc;
}

/* Removes a directory mkmodel wrote: its three files, then itself. */
static void remove_model(const char *dir)
{
	static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json"};
	char p[4200];
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

int bench_e2e(int argc, char **argv)
{
	if (e2e_mp_wanted(argc, argv)) /* the multi-process runtime: bench/e2e_mp.c */
		return bench_e2e_mp(argc, argv);
	struct args a;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	char dir[4096];
	if (a.model) {
		snprintf(dir, sizeof(dir), "%s", a.model);
	} else {
		snprintf(dir, sizeof(dir), "%s/shmrt-bench-e2e-XXXXXX", a.tmpdir);
		if (!mkdtemp(dir)) {
			fprintf(stderr, "shmrt bench e2e: mkdtemp %s: %s\n", dir, strerror(errno));
			return 1;
		}
		if (shmrt_mkmodel(a.preset, 0, dir) < 0) {
			fprintf(stderr, "shmrt bench e2e: mkmodel %s: %s\n", a.preset, shmrt_last_error());
			remove_model(dir);
			return 1;
		}
	}
	rc = run(&a, dir);
	if (!a.model)
		remove_model(dir);
	return rc < 0;
}
