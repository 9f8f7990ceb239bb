/* shmrt bench shm: the transport's all-reduce in the budget's tmpfs, with
 * the chunk the budget rule chose (shm.h). Figures as nccl-tests reports
 * them (nccl-tests, doc/PERFORMANCE.md): busbw = bytes / time x 2(W-1)/W,
 * the time being the median of rank 0's calls, as bench xfer takes it: on
 * a machine shared with other work some calls wait whole scheduler slices
 * for a preempted rank, which a mean would charge to the transport. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "fail.h"
#include "clock.h"
#include "shm.h"

/* Calls per size: about 256 MiB moved, 11 .. MAX_CALLS calls; the same on
 * every rank (the calls are collective). */
#define MAX_CALLS 2001
static long calls_for(size_t bytes)
{
	long n = (long)(((size_t)256 << 20) / bytes);
	return n < 11 ? 11 : n > MAX_CALLS ? MAX_CALLS : n;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* One rank: joins, warms up, times each call of each size; rank 0 writes
 * the times, ns[size][call]. */
static int rank_main(void *region, size_t size, int rank, int world, const size_t *bytes, int n, int64_t *ns)
{
	struct shmrt_xfer_config cfg = {.rank = rank, .world = world, .region = region, .region_size = size,
					.device = -1};
	struct shmrt_xfer *x;
	if (shmrt_xfer_open(&x, "shm", &cfg) < 0)
		return 1;
	size_t max = 0;
	for (int i = 0; i < n; i++)
		max = bytes[i] > max ? bytes[i] : max;
	float *send = calloc(max / 4 + 1, 4), *recv = calloc(max / 4 + 1, 4);
	int rc = send && recv ? 0 : -ENOMEM;
	for (int i = 0; i < n && !rc; i++) {
		size_t count = bytes[i] / 4;
		for (int w = 0; w < 3 && !rc; w++)
			rc = shmrt_xfer_all_reduce(x, send, recv, count, SHMRT_F32, NULL);
		rc = rc ? rc : shmrt_xfer_barrier(x);
		for (long k = 0, m = calls_for(bytes[i]); k < m && !rc; k++) {
			int64_t t0 = shmrt_now_ns();
			rc = shmrt_xfer_all_reduce(x, send, recv, count, SHMRT_F32, NULL);
			if (rank == 0)
				ns[(size_t)i * MAX_CALLS + (size_t)k] = shmrt_now_ns() - t0;
		}
	}
	free(send);
	free(recv);
	shmrt_xfer_close(x);
	return rc ? 1 : 0;
}

/* The region: a file of the tmpfs, allocated whole (as the arena is). */
static void *map_region(const char *dir, size_t size, char *path, size_t cap)
{
	snprintf(path, cap, "%s/bench-shm-xfer", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return shmrt_fail(errno, "create %s: %m", path), NULL;
	int err = posix_fallocate(fd, 0, (off_t)size);
	void *p = err ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		shmrt_fail(err ? err : errno, "the staging of %zu bytes in %s: %s", size, dir, strerror(err ? err : errno));
		unlink(path);
		return NULL;
	}
	return p;
}

int shm_allreduce_gbps(const char *dir, int world, size_t chunk, const size_t *bytes, int n, double *gbps)
{
	size_t size = shmrt_xfer_footprint(world, chunk);
	char path[4200];
	void *region = size ? map_region(dir, size, path, sizeof(path)) : NULL;
	if (!region)
		return size ? -errno : shmrt_fail(EINVAL, "no staging for %d ranks, chunk %zu", world, chunk);
	size_t ns_bytes = (size_t)n * MAX_CALLS * sizeof(int64_t);
	int64_t *ns = mmap(NULL, ns_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int rc = ns == MAP_FAILED ? shmrt_fail(errno, "mmap: %m") : shmrt_xfer_format(region, size, world, chunk);
	pid_t pids[SHMRT_XFER_MAX_WORLD];
	int started = 0;
	for (; !rc && started < world; started++) {
		pids[started] = fork();
		if (pids[started] < 0) {
			rc = shmrt_fail(errno, "fork: %m");
			break;
		}
		if (pids[started] == 0)
			_exit(rank_main(region, size, started, world, bytes, n, ns));
	}
	for (int i = 0; i < started; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			rc = rc ? rc : shmrt_fail(EIO, "all-reduce rank %d failed (status %#x)", i, st);
	}
	for (int i = 0; i < n && !rc; i++) {
		int64_t *t = ns + (size_t)i * MAX_CALLS;
		long m = calls_for(bytes[i]);
		qsort(t, (size_t)m, sizeof(*t), cmp_i64);
		gbps[i] = (double)bytes[i] / (double)(t[m / 2] > 0 ? t[m / 2] : 1) * 2.0 * (world - 1) / world;
	}
	if (ns != MAP_FAILED)
		munmap(ns, ns_bytes);
	munmap(region, size);
	unlink(path);
	return rc;
}
