/* shmrt generate --name: the prompt sent to a running runtime (client.h). */
#ifndef SHMRT_TOOLS_GENERATE_NAME_H
#define SHMRT_TOOLS_GENERATE_NAME_H

#include <stdint.h>

struct generate_remote {
	const char *name;
	const char *prompt;     /* text, or */
	const int32_t *tokens;  /* ids */
	int n_tokens;
	int max_tokens, ignore_eos, json;
	double temperature, top_p;
	uint64_t seed;
};

/* Streams the text (or the JSON document) to stdout; returns the exit status. */
int generate_by_name(const struct generate_remote *g);

#endif
