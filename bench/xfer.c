/* shmrt bench xfer: all-reduce (sum, fp32) across W worker processes
 * through the shm transport, for sizes 4 KiB .. 64 MiB, beside the limit
 * measured in the same run: one thread's memcpy of the same size. Two
 * ways: "shm", out of place between private buffers (copies through the
 * staging), and "shm-buf", in place in each rank's shared buffer
 * (shmrt_xfer_buffer: peers read it directly). Where there are GPUs,
 * NCCL's all_reduce (and the shm transport on device buffers) with the
 * same sizes. Issue 5, "shmrt bench xfer".
 *
 * Figures as nccl-tests reports them (nccl-tests, doc/PERFORMANCE.md):
 * time per operation, algbw = bytes / time, busbw = algbw * 2(W-1)/W for
 * all-reduce, the rate each rank's link would need for that time, so that
 * it compares with a copy's bandwidth whatever W. Each rank times every
 * call; a call's time is the slowest rank's, and the figure is the median
 * over a run of calls (the mean and the best are kept too): on a machine
 * shared with other work a few calls wait for a preempted rank for whole
 * scheduler slices, which a mean would charge to the transport. The memcpy
 * figure is the best of its runs, before and after the transports, so
 * that the ratio errs against the transport. A second limit: W processes
 * pinned as the ranks each copying their own buffers of the size at once,
 * the share of the machine's copy bandwidth (its caches and memory) one
 * rank can have, since the W ranks run at once. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt_config.h"
#include "shmrt/shmrt.h"
#include "clock.h"
#include "bench.h"
#include "xfer.h"

static const size_t full_sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
static const size_t quick_sizes[] = {4 << 10, 64 << 10, 1 << 20, 16 << 20};

struct budget {
	int64_t per_size_ns; /* timed calls, per (transport, W, size) */
	int64_t memcpy_ns;   /* per size */
	int warmup;          /* calls before timing */
	int rounds;          /* memcpy runs; the best counts */
};
static const struct budget full_budget = {500000000, 200000000, 3, 3};
static const struct budget quick_budget = {30000000, 20000000, 1, 1};

/* Shared between the parent and one group of workers. */
/* Calls timed one by one, at most. */
#define MAX_CALLS 16384

struct shared {
	pthread_barrier_t start; /* concurrent memcpy: the processes start together */
	double par_gbps[SHMRT_XFER_MAX_WORLD][XFER_MAX_SIZES];
	_Atomic long iters[XFER_MAX_SIZES]; /* rank 0's choice, read after a barrier */
	int64_t run_ns[SHMRT_XFER_MAX_WORLD][XFER_MAX_SIZES]; /* each rank's whole run */
	int64_t median_ns[XFER_MAX_SIZES], best_ns[XFER_MAX_SIZES]; /* by rank 0 */
	uint32_t call_ns[SHMRT_XFER_MAX_WORLD][MAX_CALLS]; /* the size being timed */
};

/* Where a group's buffers are. */
enum buffers {
	PRIVATE, /* malloc: the ranks' copies through the staging */
	SHARED,  /* in place in shmrt_xfer_buffer: zero copy */
	DEVICE,  /* cudaMalloc on GPU `rank` */
};

/* What one group runs. */
struct group {
	const char *transport; /* as reported */
	const char *backend;   /* as asked of shmrt_xfer_open */
	int world;
	enum buffers buffers;
	const size_t *sizes;
	int n_sizes;
	const struct budget *b;
	void *region;
	size_t region_size;
	struct shared *sh;
	int cpus[CPU_SETSIZE];
	int n_cpus;
};

static int pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* n all-reduces of size s. */
static int calls(struct shmrt_xfer *x, struct group *g, int s, void *send, void *recv, long n)
{
	int rc = 0;
	for (long i = 0; rc == 0 && i < n; i++)
		rc = shmrt_xfer_all_reduce(x, send, recv, g->sizes[s] / sizeof(float), SHMRT_F32, NULL);
	return rc;
}

/* How many calls a timed run makes: batches of 1, 2, 4, ... calls until one
 * takes an eighth of the budget, timed by rank 0, which publishes its
 * choice before the barrier that ends each batch (the barrier's release
 * and acquire carry it). */
static int calibrate(struct shmrt_xfer *x, struct group *g, int rank, int s, void *send, void *recv, long *iters)
{
	for (long n = 1;; n *= 2) {
		int64_t t0 = shmrt_now_ns();
		int rc = calls(x, g, s, send, recv, n);
		if (rc == 0 && rank == 0) {
			int64_t t = shmrt_now_ns() - t0;
			if (t >= g->b->per_size_ns / 8 || n >= MAX_CALLS / 2) {
				long want = n * g->b->per_size_ns / (t > 0 ? t : 1);
				atomic_store(&g->sh->iters[s], want < 3 ? 3 : want > MAX_CALLS ? MAX_CALLS : want);
			}
		}
		if (rc == 0)
			rc = shmrt_xfer_barrier(x);
		if (rc < 0)
			return rc;
		if ((*iters = atomic_load(&g->sh->iters[s])) > 0)
			return 0;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Rank 0: call i took the longest of the ranks' times for it; the median
 * and the least of those over the run. */
static int call_stats(struct group *g, int s, long iters)
{
	int64_t *t = malloc((size_t)iters * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (long i = 0; i < iters; i++) {
		t[i] = 0;
		for (int r = 0; r < g->world; r++)
			t[i] = g->sh->call_ns[r][i] > t[i] ? g->sh->call_ns[r][i] : t[i];
	}
	qsort(t, (size_t)iters, sizeof(*t), cmp_i64);
	g->sh->median_ns[s] = t[iters / 2];
	g->sh->best_ns[s] = t[0];
	free(t);
	return 0;
}

/* One timed run, each call timed on its own, between barriers; rank 0
 * then reduces the call times while the others wait at a barrier. */
static int time_size(struct shmrt_xfer *x, struct group *g, int rank, int s, void *send, void *recv)
{
	long iters = 0;
	int rc = calls(x, g, s, send, recv, g->b->warmup);
	if (rc == 0)
		rc = calibrate(x, g, rank, s, send, recv, &iters);
	int64_t start = shmrt_now_ns(), t0 = start;
	for (long i = 0; rc == 0 && i < iters; i++) {
		rc = calls(x, g, s, send, recv, 1);
		int64_t t1 = shmrt_now_ns();
		g->sh->call_ns[rank][i] = (uint32_t)(t1 - t0 < UINT32_MAX ? t1 - t0 : UINT32_MAX);
		t0 = t1;
	}
	g->sh->run_ns[rank][s] = t0 - start;
	if (rc == 0)
		rc = shmrt_xfer_barrier(x);
	if (rc == 0 && rank == 0)
		rc = call_stats(g, s, iters);
	return rc == 0 ? shmrt_xfer_barrier(x) : rc;
}

/* This rank's send and recv: in the shared buffer after open (SHARED). */
static int buffers_get(struct group *g, int rank, struct shmrt_xfer *x, void **send, void **recv)
{
	size_t max = g->sizes[g->n_sizes - 1], cap;
	if (g->buffers == DEVICE)
		return xfer_gpu_alloc(rank, max, send, recv);
	if (g->buffers == SHARED) {
		int rc = shmrt_xfer_buffer(x, send, &cap);
		if (rc == 0)
			memset(*send, 0, max); /* zeros: in place, sums stay zero */
		*recv = *send;
		return rc;
	}
	*send = malloc(max);
	*recv = malloc(max);
	if (!*send || !*recv)
		return -ENOMEM;
	/* Fault the pages in. Zeros, as the shared buffer. */
	memset(*send, 0, max);
	memset(*recv, 0, max);
	return 0;
}

static void buffers_put(struct group *g, void *send, void *recv)
{
	if (g->buffers == DEVICE)
		xfer_gpu_free(send, recv);
	else if (g->buffers == PRIVATE) {
		free(send);
		free(recv);
	}
}

static int worker(struct group *g, int rank)
{
	int rc = pin_to_cpu(g->cpus[rank % g->n_cpus]);
	void *send = NULL, *recv = NULL;
	struct shmrt_xfer_config cfg = {.rank = rank, .world = g->world, .region = g->region,
					.region_size = g->region_size, .device = g->buffers == DEVICE ? rank : -1,
					.timeout_ns = 60 * (int64_t)1000000000};
	struct shmrt_xfer *x = NULL;
	if (rc == 0)
		rc = shmrt_xfer_open(&x, g->backend, &cfg);
	if (rc == 0)
		rc = buffers_get(g, rank, x, &send, &recv);
	for (int s = 0; rc == 0 && s < g->n_sizes; s++)
		rc = time_size(x, g, rank, s, send, recv);
	if (rc < 0)
		fprintf(stderr, "shmrt bench xfer: %s, W=%d, rank %d: %s\n", g->transport, g->world, rank,
			*shmrt_last_error() ? shmrt_last_error() : strerror(-rc));
	shmrt_xfer_close(x);
	buffers_put(g, send, recv);
	return rc;
}

/* Forks the group's workers and waits for them all. */
static int run_group(struct group *g)
{
	pid_t pids[SHMRT_XFER_MAX_WORLD], parent = getpid();
	size_t buffer = g->buffers == SHARED ? g->sizes[g->n_sizes - 1] : 0;
	g->region_size = shmrt_xfer_footprint_buffers(g->world, 0, buffer);
	g->region = mmap(NULL, g->region_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g->region == MAP_FAILED)
		return -errno;
	int rc = shmrt_xfer_format_buffers(g->region, g->region_size, g->world, 0, buffer);
	memset(g->sh, 0, sizeof(*g->sh));
	fflush(NULL);
	int started = 0;
	for (; rc == 0 && started < g->world; started++) {
		pid_t pid = fork();
		if (pid < 0) {
			rc = -errno;
			break;
		}
		pids[started] = pid;
		if (pid == 0) {
			int r = started;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(getppid() != parent || worker(g, r) < 0);
		}
	}
	for (int r = 0; r < started; r++) {
		int status;
		if (rc < 0) /* a fork failed: the others would wait for the missing rank */
			kill(pids[r], SIGKILL);
		if (waitpid(pids[r], &status, 0) != pids[r] || !WIFEXITED(status) || WEXITSTATUS(status))
			rc = rc < 0 ? rc : -EPIPE;
	}
	munmap(g->region, g->region_size);
	return rc;
}

static void add_rows(struct xfer_report *rep, const struct group *g)
{
	for (int s = 0; s < g->n_sizes; s++) {
		int64_t worst = 0;
		for (int r = 0; r < g->world; r++)
			worst = g->sh->run_ns[r][s] > worst ? g->sh->run_ns[r][s] : worst;
		long iters = atomic_load(&g->sh->iters[s]);
		double t = (double)g->sh->median_ns[s], alg = (double)g->sizes[s] / t;
		rep->rows[rep->n_rows++] = (struct xfer_row){
			.transport = g->transport, .workers = g->world, .bytes = g->sizes[s], .iters = iters,
			.time_us = t / 1e3, .mean_us = (double)worst / (double)iters / 1e3,
			.best_us = (double)g->sh->best_ns[s] / 1e3, .algbw_gbps = alg,
			.busbw_gbps = alg * 2 * (g->world - 1) / g->world,
		};
	}
}

/* The best rate, GB/s, of copying n bytes from src to dst again and again,
 * in `rounds` runs sharing budget_ns. */
static double copy_rate(char *dst, const char *src, size_t n, const struct budget *b)
{
	double best = 0;
	memcpy(dst, src, n); /* warm */
	for (int k = 0; k < b->rounds; k++) {
		uint64_t copied = 0;
		int64_t t0 = shmrt_now_ns(), t1;
		do {
			memcpy(dst, src, n);
			/* Keeps the compiler from dropping repeated copies. */
			__asm__ volatile("" : : "r"(dst) : "memory");
			copied += n;
			t1 = shmrt_now_ns();
		} while (t1 - t0 < b->memcpy_ns / b->rounds);
		double gbps = (double)copied / (double)(t1 - t0);
		best = gbps > best ? gbps : best;
	}
	return best;
}

/* Two buffers of max bytes, every page faulted in. */
static int two_buffers(char **src, char **dst, size_t max)
{
	*src = malloc(max);
	*dst = malloc(max);
	if (!*src || !*dst) {
		free(*src);
		free(*dst);
		return -ENOMEM;
	}
	memset(*src, 1, max);
	memset(*dst, 2, max);
	return 0;
}

/* One thread copies size bytes from one buffer into another, again and
 * again: the same working set a rank's buffers have. Kept if better than
 * what memcpy_gbps already holds. */
static int measure_memcpy(struct xfer_report *rep, const struct budget *b)
{
	char *src, *dst;
	int rc = two_buffers(&src, &dst, rep->sizes[rep->n_sizes - 1]);
	for (int s = 0; rc == 0 && s < rep->n_sizes; s++) {
		double gbps = copy_rate(dst, src, rep->sizes[s], b);
		rep->memcpy_gbps[s] = gbps > rep->memcpy_gbps[s] ? gbps : rep->memcpy_gbps[s];
	}
	if (rc == 0) {
		free(src);
		free(dst);
	}
	return rc;
}

static int par_worker(struct group *g, int rank, const struct budget *b)
{
	char *src, *dst;
	int rc = pin_to_cpu(g->cpus[rank % g->n_cpus]);
	if (rc == 0)
		rc = two_buffers(&src, &dst, g->sizes[g->n_sizes - 1]);
	for (int s = 0; rc == 0 && s < g->n_sizes; s++) {
		pthread_barrier_wait(&g->sh->start);
		g->sh->par_gbps[rank][s] = copy_rate(dst, src, g->sizes[s], b);
	}
	if (rc == 0) {
		free(src);
		free(dst);
	}
	return rc;
}

/* W processes, pinned as the workers are, copy their own buffers at once:
 * the share of the machine's copy bandwidth one rank of W can have. */
static int measure_memcpy_par(struct xfer_report *rep, struct group *g, int wi, const struct budget *b)
{
	int world = rep->workers[wi], rc = 0, started = 0;
	pid_t pids[SHMRT_XFER_MAX_WORLD];
	pthread_barrierattr_t attr;
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&g->sh->start, &attr, (unsigned)world);
	pthread_barrierattr_destroy(&attr);
	fflush(NULL);
	for (; started < world; started++) {
		pid_t pid = fork();
		if (pid < 0) {
			rc = -errno;
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(par_worker(g, started, b) < 0);
		}
		pids[started] = pid;
	}
	for (int r = 0; r < started; r++) {
		int status;
		if (rc < 0) /* the others would wait at the barrier for the missing one */
			kill(pids[r], SIGKILL);
		if (waitpid(pids[r], &status, 0) != pids[r] || !WIFEXITED(status) || WEXITSTATUS(status))
			rc = rc < 0 ? rc : -EPIPE;
	}
	pthread_barrier_destroy(&g->sh->start);
	for (int s = 0; rc == 0 && s < rep->n_sizes; s++) {
		double sum = 0;
		for (int r = 0; r < world; r++)
			sum += g->sh->par_gbps[r][s];
		rep->memcpy_par_gbps[wi][s] = sum / world;
	}
	return rc;
}

static int parse_workers(const char *s, struct xfer_report *rep)
{
	rep->n_workers = 0;
	for (const char *p = s; *p;) {
		char *end;
		long w = strtol(p, &end, 10);
		if (end == p || w < 1 || w > SHMRT_XFER_MAX_WORLD || rep->n_workers == XFER_MAX_GROUPS ||
		    (*end && *end != ','))
			return -EINVAL;
		rep->workers[rep->n_workers++] = (int)w;
		p = *end ? end + 1 : end;
	}
	return rep->n_workers ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt bench xfer [--quick] [--json] [--csv FILE] [--workers 2,4]\n"
		   "all-reduce bus bandwidth of the shm transport between W worker processes, against\n"
		   "memcpy in the same run; NCCL's all_reduce where there are GPUs\n");
}

/* The groups of one transport, one per W; a failed group stops the run. */
static int run_transport(struct xfer_report *rep, struct group *g, const char *transport, const char *backend,
			 enum buffers buffers, int max_world)
{
	g->transport = transport;
	g->backend = backend;
	g->buffers = buffers;
	for (int i = 0; i < rep->n_workers; i++) {
		if (rep->workers[i] > max_world)
			continue;
		g->world = rep->workers[i];
		int rc = run_group(g);
		if (rc < 0) {
			fprintf(stderr, "shmrt bench xfer: %s with W=%d failed\n", transport, g->world);
			return rc;
		}
		add_rows(rep, g);
	}
	return 0;
}

static int measure_all(struct xfer_report *rep, const struct budget *b)
{
	struct group g = {.sizes = rep->sizes, .n_sizes = rep->n_sizes, .b = b};
	int max_world = 1;
	for (int i = 0; i < rep->n_workers; i++)
		max_world = rep->workers[i] > max_world ? rep->workers[i] : max_world;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -errno;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			g.cpus[g.n_cpus++] = c;
	rep->cpus = g.n_cpus;
	g.sh = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g.sh == MAP_FAILED)
		return -errno;
	int rc = measure_memcpy(rep, b);
	for (int i = 0; rc == 0 && i < rep->n_workers; i++)
		rc = measure_memcpy_par(rep, &g, i, b);
	if (rc == 0)
		rc = run_transport(rep, &g, "shm", "shm", PRIVATE, max_world);
	if (rc == 0)
		rc = run_transport(rep, &g, "shm-buf", "shm", SHARED, max_world);
	if (rc == 0 && rep->gpus > 0) {
#if SHMRT_HAVE_NCCL
		rc = run_transport(rep, &g, "nccl", "nccl", DEVICE, rep->gpus);
#endif
		if (rc == 0)
			rc = run_transport(rep, &g, "shm-gpu", "shm", DEVICE, rep->gpus);
	}
	if (rc == 0)
		rc = measure_memcpy(rep, b);
	munmap(g.sh, sizeof(struct shared));
	return rc;
}

int bench_xfer(int argc, char **argv)
{
	static struct xfer_report rep;
	memset(&rep, 0, sizeof(rep));
	const char *csv = NULL;
	bool json = false;
	rep.workers[0] = 2;
	rep.workers[1] = 4;
	rep.n_workers = 2;
	static const struct option opts[] = {
		{"quick", no_argument, 0, 'q'},       {"json", no_argument, 0, 'j'}, {"csv", required_argument, 0, 'c'},
		{"workers", required_argument, 0, 'w'}, {"help", no_argument, 0, 'h'}, {0},
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "qjc:w:h", opts, NULL)) != -1;) {
		if (c == 'q')
			rep.quick = true;
		else if (c == 'j')
			json = true;
		else if (c == 'c')
			csv = optarg;
		else if (c == 'w' && parse_workers(optarg, &rep) == 0)
			continue;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc)
		return usage(stderr), 2;
	const size_t *sizes = rep.quick ? quick_sizes : full_sizes;
	rep.n_sizes = rep.quick ? (int)(sizeof(quick_sizes) / sizeof(*sizes)) : (int)(sizeof(full_sizes) / sizeof(*sizes));
	memcpy(rep.sizes, sizes, (size_t)rep.n_sizes * sizeof(*sizes));
	rep.nccl_built = SHMRT_HAVE_NCCL;
	rep.gpus = SHMRT_HAVE_CUDA ? xfer_gpu_count() : -1;
	int min_workers = rep.workers[0];
	for (int i = 1; i < rep.n_workers; i++)
		min_workers = rep.workers[i] < min_workers ? rep.workers[i] : min_workers;
	rep.nccl_note = !rep.nccl_built	       ? "nccl: not built (shmrt was built without NCCL)"
			: rep.gpus <= 0		       ? "nccl: no GPU"
			: rep.gpus < min_workers ? "nccl: fewer GPUs than workers (one GPU per rank)"
						       : NULL;

	int rc = measure_all(&rep, rep.quick ? &quick_budget : &full_budget);
	if (rc < 0) {
		fprintf(stderr, "shmrt bench xfer: %s\n", strerror(-rc));
		return 1;
	}
	if (json)
		rc = xfer_print_json(&rep);
	else
		xfer_print_table(&rep);
	if (rc == 0 && csv && (rc = xfer_write_csv(&rep, csv)) < 0)
		fprintf(stderr, "shmrt bench xfer: %s: %s\n", csv, strerror(-rc));
	return rc < 0;
}
