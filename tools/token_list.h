/* Token id lists on the command line ("1,2,3"), shared by logits and generate. */
#ifndef SHMRT_TOOLS_TOKEN_LIST_H
#define SHMRT_TOOLS_TOKEN_LIST_H

#include <stdint.h>

#include "shmrt/backend.h"

/* Parses s: comma-separated non-negative integers below 2^31. Returns the
 * count (*ids malloc'ed) or -1 with a message on stderr naming cmd. */
int parse_token_list(const char *cmd, const char *s, int32_t **ids);

/* Parses a number option; -1 with a message on stderr when s is not one. */
int parse_int_arg(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int parse_float_arg(const char *cmd, const char *opt, const char *s, double *out);

/* --activations f32|bf16; -1 with a message on stderr otherwise. */
int parse_activations(const char *cmd, const char *s, enum shmrt_dtype *out);

/* --quantize q8_0|q4_0|q4_k into *out (shmrt_model_options.quantize_to);
 * -1 with a message otherwise. */
int parse_quantize(const char *cmd, const char *s, int *out);

/* With --quantize: a line on stderr of what the weights take and what
 * quantizing them saved (the model's load stats). */
struct shmrt_model;
void report_quantize(const char *cmd, const struct shmrt_model *m, int quantize_to);

#endif
