/* What a benchmark left on disk, for the tests of its --csv and --tmpdir:
 * the lines of a file, the entries of a directory. */
#ifndef SHMRT_TESTS_FILE_COUNTS_H
#define SHMRT_TESTS_FILE_COUNTS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static inline int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f, "no file at %s", path);
	int n = 0;
	for (int c; (c = fgetc(f)) != EOF;)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Entries other than "." and "..". */
static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d, "opendir %s", dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

#endif
