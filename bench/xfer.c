/* shmrt bench xfer: all-reduce (sum, fp32, out of place) across W worker
 * processes through the shm transport, for sizes 4 KiB .. 64 MiB, beside
 * the limit measured in the same run: one thread's memcpy of the same
 * size. Where there are GPUs, NCCL's all_reduce (and the shm transport
 * on device buffers) with the same sizes. Issue 5, "shmrt bench xfer".
 *
 * Figures as nccl-tests reports them (nccl-tests, doc/PERFORMANCE.md):
 * time per operation, algbw = bytes / time, busbw = algbw * 2(W-1)/W for
 * all-reduce, the rate each rank's link would need for that time, so that
 * it compares with a copy's bandwidth whatever W. Time is the slowest
 * rank's: each rank times a run of calls between two barriers. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
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
#include "futex.h"
#include "bench.h"
#include "xfer.h"

static const size_t full_sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
static const size_t quick_sizes[] = {4 << 10, 64 << 10, 1 << 20, 16 << 20};

struct budget {
	int64_t per_size_ns; /* timed calls, per (transport, W, size) */
	int64_t memcpy_ns;   /* per size */
	int warmup;          /* calls before timing */
};
static const struct budget full_budget = {300000000, 200000000, 3};
static const struct budget quick_budget = {30000000, 30000000, 1};

/* Shared between the parent and one group of workers. */
struct shared {
	_Atomic long iters[XFER_MAX_SIZES]; /* rank 0's choice, read after a barrier */
	int64_t ns[SHMRT_XFER_MAX_WORLD][XFER_MAX_SIZES];
};

/* What one group runs. */
struct group {
	const char *transport; /* as reported */
	const char *backend;   /* as asked of shmrt_xfer_open */
	int world;
	bool gpu;
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

/* Times iters calls between barriers; rank 0 first picks iters from the
 * time of one call, so that the run lasts about the budget. */
static int time_size(struct shmrt_xfer *x, struct group *g, int rank, int s, void *send, void *recv)
{
	size_t count = g->sizes[s] / sizeof(float);
	int rc = 0;
	for (int i = 0; rc == 0 && i < g->b->warmup; i++)
		rc = shmrt_xfer_all_reduce(x, send, recv, count, SHMRT_F32, NULL);
	int64_t t0 = shmrt_now_ns();
	if (rc == 0)
		rc = shmrt_xfer_all_reduce(x, send, recv, count, SHMRT_F32, NULL);
	if (rc == 0 && rank == 0) {
		int64_t one = shmrt_now_ns() - t0;
		long n = (long)(g->b->per_size_ns / (one > 0 ? one : 1));
		atomic_store(&g->sh->iters[s], n < 3 ? 3 : n > 100000 ? 100000 : n);
	}
	if (rc == 0)
		rc = shmrt_xfer_barrier(x); /* also publishes iters */
	long iters = atomic_load(&g->sh->iters[s]);
	t0 = shmrt_now_ns();
	for (long i = 0; rc == 0 && i < iters; i++)
		rc = shmrt_xfer_all_reduce(x, send, recv, count, SHMRT_F32, NULL);
	g->sh->ns[rank][s] = shmrt_now_ns() - t0;
	return rc == 0 ? shmrt_xfer_barrier(x) : rc;
}

static int worker(struct group *g, int rank)
{
	int rc = pin_to_cpu(g->cpus[rank % g->n_cpus]);
	size_t max = g->sizes[g->n_sizes - 1];
	void *send = NULL, *recv = NULL;
	if (rc == 0 && g->gpu)
		rc = xfer_gpu_alloc(rank, max, &send, &recv);
	else if (rc == 0) {
		send = malloc(max);
		recv = malloc(max);
		rc = send && recv ? 0 : -ENOMEM;
		if (rc == 0) {
			/* Fault the pages in; small values, so sums stay finite. */
			for (size_t i = 0; i < max / sizeof(float); i++)
				((float *)send)[i] = (float)(i % 7);
			memset(recv, 0, max);
		}
	}
	struct shmrt_xfer_config cfg = {.rank = rank, .world = g->world, .region = g->region,
					.region_size = g->region_size, .device = g->gpu ? rank : -1,
					.timeout_ns = 60 * (int64_t)1000000000};
	struct shmrt_xfer *x = NULL;
	if (rc == 0)
		rc = shmrt_xfer_open(&x, g->backend, &cfg);
	for (int s = 0; rc == 0 && s < g->n_sizes; s++)
		rc = time_size(x, g, rank, s, send, recv);
	if (rc < 0)
		fprintf(stderr, "shmrt bench xfer: %s, W=%d, rank %d: %s\n", g->transport, g->world, rank,
			*shmrt_last_error() ? shmrt_last_error() : strerror(-rc));
	shmrt_xfer_close(x);
	if (g->gpu)
		xfer_gpu_free(send, recv);
	else {
		free(send);
		free(recv);
	}
	return rc;
}

/* Forks the group's workers and waits for them all. */
static int run_group(struct group *g)
{
	pid_t pids[SHMRT_XFER_MAX_WORLD], parent = getpid();
	int rc = shmrt_xfer_format(g->region, g->region_size, g->world, 0);
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
	return rc;
}

static void add_rows(struct xfer_report *rep, const struct group *g)
{
	for (int s = 0; s < g->n_sizes; s++) {
		int64_t worst = 0;
		for (int r = 0; r < g->world; r++)
			worst = g->sh->ns[r][s] > worst ? g->sh->ns[r][s] : worst;
		long iters = atomic_load(&g->sh->iters[s]);
		double t = (double)worst / (double)iters, alg = (double)g->sizes[s] / t;
		rep->rows[rep->n_rows++] = (struct xfer_row){
			.transport = g->transport, .workers = g->world, .bytes = g->sizes[s], .iters = iters,
			.time_us = t / 1e3, .algbw_gbps = alg,
			.busbw_gbps = alg * 2 * (g->world - 1) / g->world,
		};
	}
}

/* One thread copies size bytes from one buffer into another, again and
 * again: the same working set a rank's buffers have. GB/s. */
static int measure_memcpy(struct xfer_report *rep, const struct budget *b)
{
	size_t max = rep->sizes[rep->n_sizes - 1];
	char *src = malloc(max), *dst = malloc(max);
	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	memset(src, 1, max);
	memset(dst, 2, max);
	for (int s = 0; s < rep->n_sizes; s++) {
		size_t n = rep->sizes[s];
		uint64_t copied = 0;
		memcpy(dst, src, n); /* warm */
		int64_t t0 = shmrt_now_ns(), t1;
		do {
			memcpy(dst, src, n);
			/* Keeps the compiler from dropping repeated copies. */
			__asm__ volatile("" : : "r"(dst) : "memory");
			copied += n;
			t1 = shmrt_now_ns();
		} while (t1 - t0 < b->memcpy_ns);
		rep->memcpy_gbps[s] = (double)copied / (double)(t1 - t0);
	}
	free(src);
	free(dst);
	return 0;
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
			 bool gpu, int max_world)
{
	g->transport = transport;
	g->backend = backend;
	g->gpu = gpu;
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
	g.region_size = shmrt_xfer_footprint(max_world, 0);
	g.region = mmap(NULL, g.region_size + sizeof(struct shared), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g.region == MAP_FAILED)
		return -errno;
	g.sh = (struct shared *)((char *)g.region + g.region_size);
	int rc = measure_memcpy(rep, b);
	if (rc == 0)
		rc = run_transport(rep, &g, "shm", "shm", false, max_world);
	if (rc == 0 && rep->gpus > 0) {
#if SHMRT_HAVE_NCCL
		rc = run_transport(rep, &g, "nccl", "nccl", true, rep->gpus);
#endif
		if (rc == 0)
			rc = run_transport(rep, &g, "shm-gpu", "shm", true, rep->gpus);
	}
	munmap(g.region, g.region_size + sizeof(struct shared));
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
