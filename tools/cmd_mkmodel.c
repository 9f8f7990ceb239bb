/* shmrt mkmodel: write a deterministic synthetic checkpoint (mkmodel.h). */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>

#include "shmrt/shmrt.h"
#include "shmrt/mkmodel.h"
#include "cmd.h"
#include "token_list.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt mkmodel --preset NAME --out DIR [--seed N] [--json]\n\n"
		   "Writes a synthetic checkpoint in Hugging Face layout (config.json,\n"
		   "model.safetensors, tokenizer.json) into DIR. The same preset and seed give\n"
		   "the same files on every machine; the weights are random.\n\n"
		   "  --preset NAME  one of: %s\n"
		   "                 tiny        Llama 3 style, GQA, llama3 rope scaling, bf16 (1.4M params)\n"
		   "                 tiny-tied   Llama 2 style, tied embeddings, f16\n"
		   "                 tiny-qwen2  Qwen2, q/k/v biases, GQA, tied, f32\n"
		   "                 small       Llama 3.2 style, 12 layers, tied, bf16 (100M params)\n"
		   "  --out DIR      created if missing; its three files are replaced\n"
		   "  --seed N       random seed of the weights (default 0)\n"
		   "  --json         print {\"dir\", \"preset\", \"seed\", \"parameters\", \"bytes\"}\n",
		shmrt_mkmodel_presets());
}

/* Parameters and bytes of the checkpoint just written. */
static int count(const char *dir, uint64_t *params, uint64_t *bytes)
{
	struct shmrt_checkpoint *ck;
	if (shmrt_checkpoint_open(dir, &ck) < 0)
		return -1;
	*params = *bytes = 0;
	for (size_t i = 0; i < shmrt_checkpoint_tensor_count(ck); i++) {
		const struct shmrt_tensor_info *t = shmrt_checkpoint_tensor(ck, i);
		*params += t->size / shmrt_dtype_size(t->dtype);
		*bytes += t->size;
	}
	shmrt_checkpoint_close(ck);
	return 0;
}

int cmd_mkmodel(int argc, char **argv)
{
	const char *preset = NULL, *out = NULL;
	long seed = 0;
	int json = 0;
	static const struct option opts[] = {{"preset", required_argument, 0, 'p'},
					      {"out", required_argument, 0, 'o'},
					      {"seed", required_argument, 0, 's'},
					      {"json", no_argument, 0, 'j'},
					      {"help", no_argument, 0, 'h'},
					      {0}};
	for (int c; (c = getopt_long(argc, argv, "p:o:s:jh", opts, NULL)) != -1;) {
		if (c == 'p')
			preset = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 's') {
			if (parse_int_arg("mkmodel", "--seed", optarg, 0, LONG_MAX, &seed))
				return 2;
		} else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc || !preset || !out) {
		fprintf(stderr, optind < argc ? "shmrt mkmodel: unexpected argument '%s'\n"
					      : "shmrt mkmodel: --preset and --out are required%s\n",
			optind < argc ? argv[optind] : "");
		return usage(stderr), 2;
	}
	uint64_t params, bytes;
	if (shmrt_mkmodel(preset, (uint64_t)seed, out) < 0 || count(out, &params, &bytes) < 0) {
		fprintf(stderr, "shmrt mkmodel: %s\n", shmrt_last_error());
		return 1;
	}
	if (json) {
		json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I}", "dir", out, "preset", preset, "seed",
					(json_int_t)seed, "parameters", (json_int_t)params, "bytes", (json_int_t)bytes);
		json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(doc);
	} else
		printf("wrote %s: preset %s, seed %ld, %.1fM parameters, %.1f MiB of weights\n", out, preset, seed,
		       params / 1e6, bytes / 1048576.0);
	return 0;
}
