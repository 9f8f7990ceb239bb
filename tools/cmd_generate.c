/* shmrt generate: generate text (or token ids) with a model, in this
 * process (model.h; the multi-process runtime is `shmrt start`). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "chat_prompt.h"
#include "cmd.h"
#include "token_list.h"
#include "generate_name.h"
#include "tp_group.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt generate (--model DIR | --name NAME)\n"
		   "                      (--prompt TEXT | --chat TEXT | --tokens 1,2,3)\n"
		   "                      [--max-tokens N]\n"
		   "                      [--temperature T] [--top-p P] [--seed S] [--json]\n"
		   "                      [--backend NAME] [--activations f32|bf16] [--ignore-eos]\n"
		   "                      [--quantize TYPE] [--workers N]\n\n"
		   "Generates a continuation of the prompt with the checkpoint in DIR and prints\n"
		   "it as it comes (text when DIR has a tokenizer.json, else token ids); timings\n"
		   "go to stderr. Stops at max-tokens or at an eos id of config.json.\n\n"
		   "  --model DIR        a checkpoint directory (config.json, model.safetensors,\n"
		   "                     tokenizer.json), or a .gguf file\n"
		   "  --name NAME        send the prompt to the running runtime NAME (shmrt start)\n"
		   "                     instead of loading the model here\n"
		   "  --trust-owner USER with --name: the runtime may be USER's (by default only\n"
		   "                     this user's; as $SHMRT_TRUSTED_OWNER)\n"
		   "  --prompt TEXT      encoded with DIR/tokenizer.json, with its bos token\n"
		   "  --chat TEXT        TEXT as the user's message of a conversation, through the\n"
		   "                     model's chat template (tokenizer_config.json's, or the\n"
		   "                     GGUF file's), with the assistant's turn to come\n"
		   "  --tokens IDS       the prompt as comma-separated token ids\n"
		   "  --max-tokens N     new tokens at most (default 32)\n"
		   "  --temperature T    0: greedy (default 1)\n"
		   "  --top-p P          nucleus sampling mass (default 1: off)\n"
		   "  --seed S           sampling seed (default 0): same seed, same tokens\n"
		   "  --json             one JSON document on stdout: tokens, text, finish\n"
		   "                     reason, timings\n"
		   "  --backend NAME     cpu (default), cpu-ref or cuda\n"
		   "  --activations DT   f32 (default) or bf16 (cuda, cpu-ref): activations and\n"
		   "                     KV cache\n"
		   "  --ignore-eos       generate max-tokens tokens whatever they are\n"
		   "  --quantize TYPE    q8_0, q4_0 or q4_k: quantize the 2-D weights of a\n"
		   "                     bf16/f16/f32 checkpoint as they are loaded\n"
		   "  --workers N        with --model: tensor parallel over N forked CPU ranks\n"
		   "                     (shm transport; the model's heads must split evenly),\n"
		   "                     default 1\n");
}

struct args {
	const char *dir, *prompt, *chat, *tokens, *backend, *name;
	long max_tokens, seed, workers;
	double temperature, top_p;
	int json, ignore_eos;
	enum shmrt_dtype activations;
	int quantize_to;
};

/* Streams each token's text (or id) to stdout as it is sampled. */
struct printer {
	struct shmrt_detok_stream *detok;
	int first;
};

static int on_token(void *ctx, int32_t tok)
{
	struct printer *p = ctx;
	if (!p->detok) {
		printf("%s%d", p->first ? "" : ",", tok);
	} else {
		const char *text;
		int n = shmrt_detok_stream_push(p->detok, tok, &text);
		if (n < 0)
			return n;
		fwrite(text, 1, (size_t)n, stdout);
	}
	p->first = 0;
	fflush(stdout);
	return 0;
}

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {{"model", required_argument, 0, 'm'},
					      {"prompt", required_argument, 0, 'p'},
					      {"tokens", required_argument, 0, 't'},
					      {"chat", required_argument, 0, 'c'},
					      {"max-tokens", required_argument, 0, 'n'},
					      {"temperature", required_argument, 0, 'T'},
					      {"top-p", required_argument, 0, 'P'},
					      {"seed", required_argument, 0, 's'},
					      {"json", no_argument, 0, 'j'},
					      {"backend", required_argument, 0, 'b'},
					      {"ignore-eos", no_argument, 0, 'e'},
					      {"activations", required_argument, 0, 'a'},
					      {"name", required_argument, 0, 'N'},
					      {"trust-owner", required_argument, 0, 'O'},
					      {"workers", required_argument, 0, 'w'},
					      {"quantize", required_argument, 0, 'q'},
					      {"help", no_argument, 0, 'h'},
					      {0}};
	for (int c; (c = getopt_long(argc, argv, "m:p:c:t:n:T:P:s:jb:ea:N:w:q:h", opts, NULL)) != -1;) {
		int bad = 0;
		switch (c) {
		case 'm': a->dir = optarg; break;
		case 'p': a->prompt = optarg; break;
		case 'c': a->chat = optarg; break;
		case 't': a->tokens = optarg; break;
		case 'n': bad = parse_int_arg("generate", "--max-tokens", optarg, 1, INT_MAX / 2, &a->max_tokens); break;
		case 'T': bad = parse_float_arg("generate", "--temperature", optarg, &a->temperature); break;
		case 'P': bad = parse_float_arg("generate", "--top-p", optarg, &a->top_p); break;
		case 's': bad = parse_int_arg("generate", "--seed", optarg, 0, LONG_MAX, &a->seed); break;
		case 'j': a->json = 1; break;
		case 'b': a->backend = optarg; break;
		case 'e': a->ignore_eos = 1; break;
		case 'a': bad = parse_activations("generate", optarg, &a->activations); break;
		case 'q': bad = parse_quantize("generate", optarg, &a->quantize_to); break;
		case 'N': a->name = optarg; break;
		case 'O': setenv("SHMRT_TRUSTED_OWNER", optarg, 1); break;
		case 'w': bad = parse_int_arg("generate", "--workers", optarg, 1, SHMRT_XFER_MAX_WORLD, &a->workers); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "shmrt generate: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr), 2;
	}
	if (!a->dir == !a->name || (!!a->prompt + !!a->tokens + !!a->chat) != 1) {
		fprintf(stderr, "shmrt generate: one of --model or --name, and one of --prompt, --chat or --tokens, "
				"are required\n");
		return usage(stderr), 2;
	}
	if (a->name && a->workers > 1) {
		fprintf(stderr, "shmrt generate: --workers is for --model (a runtime started with --name has its own)\n");
		return 2;
	}
	if (a->temperature < 0 || !(a->top_p > 0 && a->top_p <= 1)) {
		fprintf(stderr, "shmrt generate: --temperature must be >= 0 and --top-p in (0, 1]\n");
		return 2;
	}
	return -1;
}

/* DIR/tokenizer.json, or NULL when there is none or (with --tokens) it
 * cannot be loaded: then ids are printed. */
static int load_tokenizer(const char *dir, int required, struct shmrt_tokenizer **tok)
{
	char path[PATH_MAX];
	*tok = NULL;
	if (shmrt_model_path_tokenizer(dir, path, sizeof(path)) < 0 || (!required && access(path, F_OK) != 0))
		return 0;
	if (shmrt_tokenizer_load(path, NULL, tok) < 0) {
		fprintf(stderr, "shmrt generate: %s%s\n", shmrt_last_error(),
			required ? "" : " (printing token ids instead of text)");
		*tok = NULL;
		return required ? -1 : 0;
	}
	return 0;
}

static void print_json(const struct args *a, const struct shmrt_tokenizer *tok, const int32_t *out, int n,
		       const struct shmrt_gen_stats *st)
{
	json_t *ids = json_array(), *text = json_null();
	for (int i = 0; i < n; i++)
		json_array_append_new(ids, json_integer(out[i]));
	if (tok) {
		int len = shmrt_tokenizer_decode(tok, out, (size_t)n, SHMRT_DECODE_LOSSY, NULL, 0);
		char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
		if (s && shmrt_tokenizer_decode(tok, out, (size_t)n, SHMRT_DECODE_LOSSY, s, (size_t)len + 1) >= 0) {
			json_decref(text);
			text = json_stringn(s, (size_t)len);
		}
		free(s);
	}
	double tps = st->decode_seconds > 0 && n > 1 ? (n - 1) / st->decode_seconds : 0;
	json_t *doc = json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:s, s:{s:f, s:f, s:f}}", "model", a->dir, "backend",
				a->backend, "prompt_tokens", st->prompt_tokens, "new_tokens", n, "tokens", ids, "text",
				text ? text : json_null(), "finish_reason", st->stopped_by_eos ? "stop" : "length",
				"timing", "prefill_seconds", st->prefill_seconds, "decode_seconds",
				st->decode_seconds, "decode_tokens_per_second", tps);
	json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(doc);
}

/* g: this process's place in the tensor-parallel group; every rank generates the same
 * tokens (same logits, same seed), rank 0 prints them. */
static int run(const struct args *a, const struct tp_group *g, struct shmrt_tokenizer *tok, const int32_t *prompt,
	       int n_prompt)
{
	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = a->backend, .activations = a->activations,
					 .quantize_to = a->quantize_to};
	tp_group_options(g, &mo);
	if (shmrt_model_load(a->dir, &mo, &m) < 0) {
		if (!g->rank) /* every rank fails alike; rank 0 says why */
			fprintf(stderr, "shmrt generate: %s\n", shmrt_last_error());
		return 1;
	}
	if (!g->rank && !a->json)
		report_quantize("generate", m, a->quantize_to);
	struct printer pr = {.first = 1};
	int rc = 0;
	if (tok && !a->json && shmrt_detok_stream_new(tok, SHMRT_DECODE_SKIP_SPECIAL, &pr.detok) < 0)
		rc = -ENOMEM;
	int32_t *out = malloc((size_t)a->max_tokens * sizeof(int32_t));
	struct shmrt_gen_options go = {.max_tokens = (int)a->max_tokens, .temperature = (float)a->temperature,
				       .top_p = (float)a->top_p, .seed = (uint64_t)a->seed,
				       .ignore_eos = a->ignore_eos, .on_token = a->json || g->rank ? NULL : on_token,
				       .ctx = &pr};
	struct shmrt_gen_stats st;
	if (!rc && !out)
		rc = -ENOMEM;
	if (!rc)
		rc = shmrt_generate(m, prompt, n_prompt, &go, out, (int)a->max_tokens, &st);
	if (g->rank) {
		/* the others print nothing */
	} else if (rc < 0) {
		fprintf(stderr, "shmrt generate: %s\n", rc == -ENOMEM ? "no memory" : shmrt_last_error());
	} else if (a->json) {
		print_json(a, tok, out, rc, &st);
	} else {
		const char *rest;
		int n = pr.detok ? shmrt_detok_stream_flush(pr.detok, &rest) : 0;
		if (n > 0)
			fwrite(rest, 1, (size_t)n, stdout);
		putchar('\n');
		fprintf(stderr, "[%d prompt tokens in %.3f s; %d new tokens, %.1f tokens/s decode; %s]\n", n_prompt,
			st.prefill_seconds, rc, st.decode_seconds > 0 && rc > 1 ? (rc - 1) / st.decode_seconds : 0.0,
			st.stopped_by_eos ? "stopped at eos" : "max tokens");
	}
	shmrt_detok_stream_free(pr.detok);
	free(out);
	shmrt_model_free(m);
	return rc < 0 ? 1 : 0;
}

int cmd_generate(int argc, char **argv)
{
	struct args a = {.backend = "cpu", .max_tokens = 32, .temperature = 1.0, .top_p = 1.0, .workers = 1};
	int rc = parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	struct shmrt_tokenizer *tok = NULL;
	int32_t *prompt = NULL;
	int n = -1;
	if (a.name) {
		if (a.tokens && (n = parse_token_list("generate", a.tokens, &prompt)) < 0)
			return 2;
		if (a.chat && (n = chat_prompt_ids_by_name(a.name, a.chat, &prompt)) < 0)
			return 1;
		struct generate_remote g = {.name = a.name, .prompt = a.prompt, .tokens = prompt, .n_tokens = n,
					    .max_tokens = (int)a.max_tokens, .ignore_eos = a.ignore_eos,
					    .json = a.json, .temperature = a.temperature, .top_p = a.top_p,
					    .seed = (uint64_t)a.seed};
		rc = generate_by_name(&g);
		free(prompt);
		return rc;
	}
	if (load_tokenizer(a.dir, !a.tokens, &tok) == 0)
		n = a.prompt ? encode_text(tok, a.prompt, SHMRT_ENCODE_ADD_SPECIAL, "the prompt", &prompt)
		    : a.chat ? chat_prompt_ids(a.dir, tok, a.chat, &prompt)
			     : parse_token_list("generate", a.tokens, &prompt);
	struct tp_group g;
	if (n < 0)
		rc = a.tokens && !tok ? 2 : 1;
	else if (tp_group_start("generate", (int)a.workers, a.backend, &g) < 0)
		rc = 1;
	else
		rc = tp_group_finish(&g, run(&a, &g, tok, prompt, n));
	free(prompt);
	shmrt_tokenizer_free(tok);
	return rc;
}
