/* shmrt mkmodel: write a deterministic synthetic checkpoint (mkmodel.h). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "shmrt/shmrt.h"
#include "shmrt/mkmodel.h"
#include "cmd.h"
#include "token_list.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt mkmodel --preset NAME --out DIR [--seed N]\n\n"
		   "Writes a synthetic checkpoint in Hugging Face layout (config.json,\n"
		   "model.safetensors, tokenizer.json) into DIR. The same preset and seed give\n"
		   "the same files on every machine; the weights are random.\n\n"
		   "  --preset NAME  one of: %s\n"
		   "                 tiny        Llama 3 style, GQA, llama3 rope scaling, bf16 (1.6M params)\n"
		   "                 tiny-tied   Llama 2 style, tied embeddings, f16\n"
		   "                 tiny-qwen2  Qwen2, q/k/v biases, GQA, tied, f32\n"
		   "                 small       Llama 3.2 style, 12 layers, tied, bf16 (100M params)\n"
		   "  --out DIR      created if missing; its three files are replaced\n"
		   "  --seed N       random seed of the weights (default 0)\n",
		shmrt_mkmodel_presets());
}

int cmd_mkmodel(int argc, char **argv)
{
	const char *preset = NULL, *out = NULL;
	long seed = 0;
	static const struct option opts[] = {{"preset", required_argument, 0, 'p'},
					      {"out", required_argument, 0, 'o'},
					      {"seed", required_argument, 0, 's'},
					      {"help", no_argument, 0, 'h'},
					      {0}};
	for (int c; (c = getopt_long(argc, argv, "p:o:s:h", opts, NULL)) != -1;) {
		if (c == 'p')
			preset = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 's') {
			if (parse_int_arg("mkmodel", "--seed", optarg, 0, LONG_MAX, &seed))
				return 2;
		} else if (c == 'h')
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
	if (shmrt_mkmodel(preset, (uint64_t)seed, out) < 0) {
		fprintf(stderr, "shmrt mkmodel: %s\n", shmrt_last_error());
		return 1;
	}
	printf("wrote %s: preset %s, seed %ld\n", out, preset, seed);
	return 0;
}
