/* shmrt bench NAME: runs one benchmark from bench/. */
#include <stdio.h>
#include <string.h>

#include "../bench/bench.h"
#include "cmd.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt bench NAME [--quick] [--json] [--csv FILE]\n\nbenchmarks:\n");
	for (const struct shmrt_bench *b = shmrt_benches; b->name; b++)
		fprintf(f, "  %-8s %s\n", b->name, b->summary);
}

int cmd_bench(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (const struct shmrt_bench *b = shmrt_benches; b->name; b++)
		if (!strcmp(argv[1], b->name))
			return b->run(argc - 1, argv + 1);
	fprintf(stderr, "shmrt bench: unknown benchmark '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
