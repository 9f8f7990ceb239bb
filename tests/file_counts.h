/* What a benchmark left on disk, for the tests of its --csv and --tmpdir:
 * the lines of a file, the entries of a directory. */
#ifndef SHMRT_TESTS_FILE_COUNTS_H
#define SHMRT_TESTS_FILE_COUNTS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

int count_lines(const char *path);

/* Entries other than "." and "..". */
int count_entries(const char *dir);

#endif
