/* The shmrt program's subcommands: one file each, tools/cmd_NAME.c. */
#ifndef SHMRT_TOOLS_CMD_H
#define SHMRT_TOOLS_CMD_H

struct shmrt_cmd {
	const char *name;
	const char *summary;
	/* argv[0] is the subcommand's name; returns the exit status. */
	int (*run)(int argc, char **argv);
};

int cmd_info(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_size(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_child(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

/* True when argv holds -h or --help (then print usage and exit 0). */
int cmd_wants_help(int argc, char **argv);

#endif
