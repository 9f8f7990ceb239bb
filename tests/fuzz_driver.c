/* Runs every file of the directories given through LLVMFuzzerTestOneInput:
 * a fuzz target's seed corpus as an ordinary test, for builds without
 * libFuzzer (gcc). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	CHECK(f, "cannot open %s", path);
	struct stat st;
	CHECK(fstat(fileno(f), &st) == 0, "stat %s", path);
	/* A buffer of exactly the file's size, so ASan sees any read past it. */
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	CHECK(buf && fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size, "read %s", path);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
	free(buf);
}

int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		CHECK(d, "cannot open directory %s", argv[i]);
		for (struct dirent *e; (e = readdir(d));) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			run_file(path);
			n++;
		}
		closedir(d);
	}
	CHECK(n > 0, "no inputs: the test would check nothing");
	printf("%d inputs ran\n", n);
	return 0;
}
