/* The shmrt program: dispatches to one subcommand per file (docs/ARCHITECTURE.md). */
#include <stdio.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "cmd.h"
#include "array_size.h"

static const struct shmrt_cmd commands[] = {
	{"info", "build features, devices, shared memory size", cmd_info},
	{"bench", "benchmarks (ipc, ...) against their peers and physical limits", cmd_bench},
	{"size", "the shared memory (/dev/shm) a model and limits need, and the container settings", cmd_size},
	{"clean", "remove stale arenas whose owner died", cmd_clean},
	{"tokenize", "text to token ids (tokenizer.json or tiktoken file)", cmd_tokenize},
	{"detokenize", "token ids to text", cmd_detokenize},
	{"mkmodel", "write a deterministic synthetic checkpoint", cmd_mkmodel},
	{"logits", "the logits of a token sequence, to a float32 file", cmd_logits},
	{"generate", "generate text with a model (in this process)", cmd_generate},
	{"quantize", "write a checkpoint as a GGUF file of q8_0, q4_0 or q4_k weights", cmd_quantize},
	{"start", "run the multi-process runtime (tokenizer, scheduler, workers)", cmd_start},
	{"probe", "exit 0 when a runtime is ready (--ready) or alive (--live)", cmd_probe},
	{"stat", "a runtime's processes, rings, queues, KV blocks, tokens/s", cmd_stat},
	{"serve", "the HTTP model server (Vertex AI predict, OpenAI API, health, metrics)", cmd_serve},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'shmrt COMMAND --help' describes one command.\n");
}

int cmd_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("shmrt %s\n", shmrt_version());
		return 0;
	}
	if (!strcmp(argv[1], "__child")) /* hidden: a process of `shmrt start` */
		return cmd_child(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "shmrt: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
