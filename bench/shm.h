/* shmrt bench shm: what a shared-memory budget buys (bench/shm.c). */
#ifndef SHMRT_BENCH_SHM_H
#define SHMRT_BENCH_SHM_H

#include <stddef.h>
#include <stdint.h>

#define SHM_MAX_BUDGETS 32
/* all-reduce sizes: a decode step at batch 1, at the large batch, and the
 * largest step (max batch tokens: the prefill) */
#define SHM_AR_SIZES 3

struct shm_row {
	uint64_t budget_mib;
	int started;
	char refusal[512];    /* why it did not start (the runtime's message) */
	uint64_t arena_bytes; /* as sized for the budget */
	size_t xfer_chunk;    /* the staging's chunk the budget rule chose (workers > 1) */
	double tps_b1, tps_bn; /* decode tokens/s through the runtime */
	size_t ar_bytes[SHM_AR_SIZES];
	double ar_gbps[SHM_AR_SIZES]; /* all-reduce bus bandwidth, GB/s */
	uint64_t fs_used;     /* the tmpfs's used bytes (statvfs), after the runs */
	uint64_t touched;     /* the arena's touched bytes (shm_usage.h), after the runs */
};

struct shm_run {
	const char *model; /* the checkpoint directory */
	const char *preset; /* or NULL for --model */
	int workers, batch, prompt, steps, repeat, hidden;
	uint64_t min_mib; /* the sizing's minimum for these limits with the smallest chunk */
	struct shm_row rows[SHM_MAX_BUDGETS];
	int n_rows;
	int have_knee;
	uint64_t knee_mib;
};

/* All-reduce (sum, f32) bus bandwidth through the shm transport among
 * `world` processes, with its region in a file of directory dir formatted
 * with `chunk`: gbps[i] for bytes[i], i < n. 0 or -errno. */
int shm_allreduce_gbps(const char *dir, int world, size_t chunk, const size_t *bytes, int n, double *gbps);

/* The table with ratios to the best budget (stdout), the CSV and JSON of
 * the rows, and the plot (gnuplot, else matplotlib, else a message). */
void shm_print_table(const struct shm_run *r);
int shm_write_csv(const struct shm_run *r, const char *path);
void shm_print_json(const struct shm_run *r);
int shm_plot(const struct shm_run *r, const char *png);

#endif
