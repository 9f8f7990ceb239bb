/* Benchmarks run by `shmrt bench NAME`: one file each, bench/NAME.c.
 * Each measures its peers and the physical limit in the same run and
 * prints ratios; --json gives one document, --csv FILE the rows. */
#ifndef SHMRT_BENCH_H
#define SHMRT_BENCH_H

#include <stddef.h>

struct shmrt_bench {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the benchmark's name */
};

/* The benchmarks built in, ended by a zeroed entry. */
extern const struct shmrt_bench shmrt_benches[];

/* The last-level cache of CPU 0 in bytes (bench/cpu_cache.c). */
size_t bench_llc_bytes(void);

int bench_ipc(int argc, char **argv);
int bench_kernels(int argc, char **argv);
int bench_load(int argc, char **argv);
int bench_e2e(int argc, char **argv);
int bench_xfer(int argc, char **argv);
int bench_tokenize(int argc, char **argv);
int bench_shm(int argc, char **argv);
int bench_serve(int argc, char **argv);

#endif
