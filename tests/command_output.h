/* Running a command from a test program: all it writes on stdout, and its
 * exit status. */
#ifndef SHMRT_TESTS_COMMAND_OUTPUT_H
#define SHMRT_TESTS_COMMAND_OUTPUT_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* Runs cmd through the shell; returns its stdout (malloc'd, NUL-ended) and
 * sets *status to pclose()'s status (see WIFEXITED). */
char *command_output(const char *cmd, int *status);

#endif
