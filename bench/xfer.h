/* shmrt bench xfer: all-reduce bus bandwidth of the transports (bench/xfer.c
 * runs, bench/xfer_report.c prints, bench/xfer_gpu.c holds device memory). */
#ifndef SHMRT_BENCH_XFER_H
#define SHMRT_BENCH_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_MAX_SIZES 16
#define XFER_MAX_GROUPS 8

/* One (transport, W, size) measured. */
struct xfer_row {
	const char *transport; /* "shm", "shm-gpu", "nccl" */
	int workers;
	size_t bytes;
	long iters;
	double time_us;              /* per call: median over the run of the slowest rank's time */
	double mean_us, best_us;     /* the run's mean (slowest rank), its fastest call */
	double algbw_gbps, busbw_gbps; /* 10^9 bytes/s */
};

struct xfer_report {
	struct xfer_row rows[4 * XFER_MAX_GROUPS * XFER_MAX_SIZES];
	int n_rows;
	size_t sizes[XFER_MAX_SIZES];
	double memcpy_gbps[XFER_MAX_SIZES]; /* one thread, same size, same run */
	/* W processes, pinned as the workers, each copying its own buffers of
	 * that size at once: what one of them gets (the mean), for workers[i]. */
	double memcpy_par_gbps[XFER_MAX_GROUPS][XFER_MAX_SIZES];
	int n_sizes;
	int workers[XFER_MAX_GROUPS];
	int n_workers;
	int cpus;  /* CPUs this process may run on */
	int gpus;  /* -1: not built with CUDA */
	bool nccl_built, quick;
	const char *nccl_note; /* why there are no nccl rows, or NULL */
};

/* Devices (bench/xfer_gpu.c; without CUDA these fail or return 0). The
 * count is taken in a child process, so that this one has not touched
 * CUDA when it forks the workers. */
int xfer_gpu_count(void);
int xfer_gpu_alloc(int device, size_t bytes, void **send, void **recv);
void xfer_gpu_free(void *send, void *recv);

void xfer_print_table(const struct xfer_report *r);
int xfer_print_json(const struct xfer_report *r);
int xfer_write_csv(const struct xfer_report *r, const char *path);

#endif
