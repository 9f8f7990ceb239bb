/* shmrt logits: the logits of every position of a token sequence. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "shmrt/model.h"
#include "cmd.h"
#include "token_list.h"
#include "tp_group.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt logits --model DIR --tokens 1,2,3 --out FILE [--backend NAME]\n"
		   "                    [--activations f32|bf16] [--quantize TYPE] [--workers N]\n"
		   "                    [--json]\n\n"
		   "Runs the tokens through the model as one prefill and writes the logits of\n"
		   "every position to FILE: float32, little-endian, [tokens x vocab] row-major,\n"
		   "no header.\n\n"
		   "  --model DIR     a checkpoint directory (config.json, model.safetensors)\n"
		   "  --tokens IDS    comma-separated token ids\n"
		   "  --out FILE      where the logits go\n"
		   "  --backend NAME  cpu (default), cpu-ref or cuda\n"
		   "  --activations DT  f32 (default) or bf16 (cuda, cpu-ref)\n"
		   "  --quantize TYPE   q8_0, q4_0 or q4_k: quantize the 2-D weights of a\n"
		   "                    bf16/f16/f32 checkpoint as they are loaded\n"
		   "  --workers N     tensor parallel over N forked CPU ranks (shm transport;\n"
		   "                  the model's heads must split evenly), default 1\n"
		   "  --json          print {\"tokens\": N, \"vocab\": V, \"out\": FILE} on stdout\n");
}

/* Every rank of a tensor-parallel group runs the step; only the one with
 * a path (rank 0) writes and speaks. */
static int run(const struct shmrt_model_options *mo, const char *dir, const int32_t *ids, int n, const char *path,
	       int json)
{
	struct shmrt_model *m = NULL;
	struct shmrt_kv_pool *p = NULL;
	float *logits = NULL;
	int rc = shmrt_model_load(dir, mo, &m), V = 0;
	if (!rc) {
		if (path)
			report_quantize("logits", m, mo->quantize_to);
		V = shmrt_model_config(m)->vocab_size;
		rc = shmrt_kv_pool_new(m, (n + 15) / 16, 16, &p);
	}
	if (!rc && !(logits = malloc((size_t)n * (size_t)V * sizeof(float))))
		rc = -ENOMEM;
	struct shmrt_kv_seq seq = {0};
	struct shmrt_seq_input in = {.seq = &seq, .tokens = ids, .n = n};
	if (!rc)
		rc = shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_ALL, logits);
	if (rc < 0) {
		if (path) /* every rank fails alike; rank 0 says why */
			fprintf(stderr, "shmrt logits: %s\n", rc == -ENOMEM ? "no memory" : shmrt_last_error());
	} else if (path) {
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(logits, sizeof(float), (size_t)n * V, f) != (size_t)n * V || fclose(f)) {
			fprintf(stderr, "shmrt logits: %s: %s\n", path, strerror(errno));
			rc = -EIO;
		} else if (json) {
			json_t *doc = json_pack("{s:i, s:i, s:s, s:s}", "tokens", n, "vocab", V, "dtype", "float32",
						"out", path);
			json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
			putchar('\n');
			json_decref(doc);
		} else
			printf("wrote %d x %d float32 logits to %s\n", n, V, path);
	}
	shmrt_kv_seq_reset(p, &seq);
	shmrt_kv_pool_free(p);
	shmrt_model_free(m);
	free(logits);
	return rc < 0 ? 1 : 0;
}

int cmd_logits(int argc, char **argv)
{
	const char *dir = NULL, *tokens = NULL, *out = NULL;
	struct shmrt_model_options mo = {.backend = "cpu"};
	int json = 0;
	long workers = 1;
	static const struct option opts[] = {{"model", required_argument, 0, 'm'},
					      {"tokens", required_argument, 0, 't'},
					      {"out", required_argument, 0, 'o'},
					      {"backend", required_argument, 0, 'b'},
					      {"json", no_argument, 0, 'j'},
					      {"activations", required_argument, 0, 'a'},
					      {"workers", required_argument, 0, 'w'},
					      {"quantize", required_argument, 0, 'q'},
					      {"help", no_argument, 0, 'h'},
					      {0}};
	for (int c; (c = getopt_long(argc, argv, "m:t:o:b:ja:w:q:h", opts, NULL)) != -1;) {
		if (c == 'm')
			dir = optarg;
		else if (c == 't')
			tokens = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 'b')
			mo.backend = optarg;
		else if (c == 'a') {
			if (parse_activations("logits", optarg, &mo.activations))
				return 2;
		}
		else if (c == 'q') {
			if (parse_quantize("logits", optarg, &mo.quantize_to))
				return 2;
		}
		else if (c == 'j')
			json = 1;
		else if (c == 'w') {
			if (parse_int_arg("logits", "--workers", optarg, 1, SHMRT_XFER_MAX_WORLD, &workers))
				return 2;
		}
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc) {
		fprintf(stderr, "shmrt logits: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr), 2;
	}
	if (!dir || !tokens || !out) {
		fprintf(stderr, "shmrt logits: --model, --tokens and --out are required\n");
		return usage(stderr), 2;
	}
	int32_t *ids;
	int n = parse_token_list("logits", tokens, &ids);
	if (n < 0)
		return 2;
	struct tp_group g;
	int rc = tp_group_start("logits", (int)workers, mo.backend, &g);
	if (rc == 0) {
		tp_group_options(&g, &mo);
		rc = tp_group_finish(&g, run(&mo, dir, ids, n, g.rank ? NULL : out, json));
	} else
		rc = 1;
	free(ids);
	return rc;
}
