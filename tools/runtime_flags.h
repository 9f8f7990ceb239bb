/* The runtime's flags (workers, limits, restart, backend), shared by
 * `shmrt start` and `shmrt serve`, which both run a runtime. */
#ifndef SHMRT_TOOLS_RUNTIME_FLAGS_H
#define SHMRT_TOOLS_RUNTIME_FLAGS_H

#include <getopt.h>
#include <stdio.h>

#include "shmrt/runtime.h"

/* getopt_long entries (their val is the short letter below); the command
 * appends its own and a terminating {0}. */
#define RUNTIME_FLAGS_COUNT 13
extern const struct option runtime_flag_options[RUNTIME_FLAGS_COUNT];
#define RUNTIME_FLAGS_SHORT "w:rs:t:l:b:k:c:B:H:x:R:q:"

/* Applies option c: 1 when it was one of ours, 0 when not, -1 for a bad
 * value (a message on stderr naming cmd). */
int runtime_flag(const char *cmd, int c, const char *arg, struct shmrt_runtime_options *o);

/* Their lines of a usage text. */
void runtime_flags_usage(FILE *f);

#endif
