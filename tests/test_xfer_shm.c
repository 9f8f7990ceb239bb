/* The shm transport between W forked processes (W = 1, 2, 3, 4), through a
 * region of a real arena:
 *   - all-reduce of fp32, bf16 and f16 buffers from 1 element to a few MiB,
 *     odd sizes and sizes around the chunk, block and one-step limits,
 *     out of place and in place, and in the ranks' shared buffers (each rank
 *     picking private buffers, in place there, or only send or only recv
 *     there, so that one call mixes the ways); all-gather (out of place
 *     and in place);
 *     barriers; a long random sequence of them, with a tiny chunk too, so
 *     that slots are reused thousands of times while ranks race;
 *   - every rank computes every rank's input itself (from a shared seed)
 *     and the expected sum naively: left to right in rank order in fp32,
 *     rounded once for bf16/f16. Tolerance: none, bit for bit, since that
 *     is the order the shm transport documents (transport.h). A transport
 *     with another order (NCCL's ring) would need |error| <= (W - 1) *
 *     2^-24 * sum |x| per element; this test is for the shm one only.
 *     All-gather is exact: it moves bytes.
 *   - a peer SIGKILLed while the others wait (blocked, or mid-stream):
 *     -EPIPE within a second; later calls -EPIPE at once;
 *   - a live peer that never comes: -ETIMEDOUT after the configured time;
 *   - regions: unformatted, another world size, used by an earlier group,
 *     a rank held by a live process, unknown and unbuilt backends. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "dtype_conv.h"
#include "clock.h"
#include "shm_tmpdir.h"
#include "array_size.h"

#define MS (1000 * 1000LL)

/* ---- deterministic data, the same in every process -------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Values of many magnitudes (2^-31 .. 2^8), so that a sum in another
 * order would give other bits. */
static float value(uint64_t seed, int op, int rank, size_t j)
{
	uint64_t h = mix(seed ^ (uint64_t)op << 40 ^ (uint64_t)rank << 32 ^ mix(j));
	float m = (float)((int32_t)(h & 0xffffff) - 0x800000);
	return ldexpf(m, (int)((h >> 24) % 16) - 31);
}

static void fill(void *buf, enum shmrt_dtype dt, uint64_t seed, int op, int rank, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		float v = value(seed, op, rank, j);
		if (dt == SHMRT_F32)
			((float *)buf)[j] = v;
		else if (dt == SHMRT_BF16)
			((uint16_t *)buf)[j] = shmrt_f32_to_bf16(v);
		else
			((uint16_t *)buf)[j] = shmrt_f32_to_f16(v);
	}
}

/* The naive sum of what every rank holds, in rank order. */
static void expected_sum(void *out, enum shmrt_dtype dt, uint64_t seed, int op, int world, size_t n,
			 void *scratch)
{
	float *acc = malloc(n * sizeof(float));
	CHECK(acc, "out of memory");
	for (int q = 0; q < world; q++) {
		fill(scratch, dt, seed, op, q, n);
		for (size_t j = 0; j < n; j++) {
			float x = shmrt_load(scratch, dt, (int64_t)j);
			acc[j] = q == 0 ? x : acc[j] + x;
		}
	}
	for (size_t j = 0; j < n; j++) {
		if (dt == SHMRT_F32)
			((float *)out)[j] = acc[j];
		else if (dt == SHMRT_BF16)
			((uint16_t *)out)[j] = shmrt_f32_to_bf16(acc[j]);
		else
			((uint16_t *)out)[j] = shmrt_f32_to_f16(acc[j]);
	}
	free(acc);
}

/* ---- one operation of a sequence ---------------------------------------- */

/* OP_REDUCE_SHARED: each rank picks, by a hash of (op, rank), private
 * buffers, in place in its shared buffer, or only send or only recv
 * there, at a random offset: ranks mix the ways in one call. */
enum op_kind { OP_REDUCE, OP_REDUCE_INPLACE, OP_GATHER, OP_GATHER_INPLACE, OP_BARRIER, OP_REDUCE_SHARED };

struct op {
	enum op_kind kind;
	enum shmrt_dtype dt;
	size_t n;
};

static const char *kind_name(enum op_kind k)
{
	static const char *const names[] = {"all_reduce", "all_reduce in place", "all_gather",
					    "all_gather in place", "barrier", "all_reduce in shared buffers"};
	return names[k];
}

static size_t first_diff(const void *a, const void *b, size_t n, size_t es)
{
	for (size_t j = 0; j < n; j++)
		if (memcmp((const char *)a + j * es, (const char *)b + j * es, es))
			return j;
	return n;
}

static void run_op(struct shmrt_xfer *x, int rank, int world, uint64_t seed, int i, const struct op *o)
{
	if (o->kind == OP_BARRIER) {
		CHECK_OK(shmrt_xfer_barrier(x));
		return;
	}
	size_t es = shmrt_dtype_size(o->dt), n = o->n;
	bool gather = o->kind == OP_GATHER || o->kind == OP_GATHER_INPLACE;
	size_t out_n = gather ? n * (size_t)world : n;
	unsigned char *send = malloc(n * es), *recv = malloc(out_n * es), *want = malloc(out_n * es);
	CHECK(send && recv && want, "out of memory");
	memset(recv, 0xee, out_n * es);
	fill(send, o->dt, seed, i, rank, n);
	const unsigned char *src = send;
	unsigned char *dst = recv;
	if (o->kind == OP_REDUCE_SHARED) {
		void *buf;
		size_t cap;
		CHECK_OK(shmrt_xfer_buffer(x, &buf, &cap));
		uint64_t h = mix(seed ^ (uint64_t)i << 8 ^ (uint64_t)rank);
		CHECK(n * es <= cap, "op %d: %zu bytes, buffer of %zu", i, n * es, cap);
		unsigned char *at = (unsigned char *)buf + (h >> 8) % ((cap - n * es) / es + 1) * es;
		int way = (int)(h % 4); /* 0 private, 1 in place, 2 send, 3 recv there */
		if (way == 1 || way == 2) {
			memcpy(at, send, n * es);
			src = at;
		}
		if (way == 3)
			memset(at, 0xee, n * es);
		if (way == 1 || way == 3)
			dst = at;
	}
	if (o->kind == OP_REDUCE_INPLACE || o->kind == OP_GATHER_INPLACE) {
		unsigned char *at = recv + (o->kind == OP_GATHER_INPLACE ? (size_t)rank * n * es : 0);
		memcpy(at, send, n * es);
		src = at;
	}
	if (gather) {
		CHECK_OK(shmrt_xfer_all_gather(x, src, recv, n, o->dt, NULL));
		for (int q = 0; q < world; q++)
			fill(want + (size_t)q * n * es, o->dt, seed, i, q, n);
	} else {
		CHECK_OK(shmrt_xfer_all_reduce(x, src, dst, n, o->dt, NULL));
		expected_sum(want, o->dt, seed, i, world, n, send);
	}
	size_t d = first_diff(dst, want, out_n, es);
	CHECK(d == out_n, "rank %d/%d, op %d (%s, %s, %zu elements): element %zu differs", rank, world, i,
	      kind_name(o->kind), shmrt_dtype_name(o->dt), n, d);
	free(send);
	free(recv);
	free(want);
}

/* ---- groups of forked ranks --------------------------------------------- */

struct group {
	struct shmrt_arena *arena;
	void *region;
	size_t size;
	int world;
	int64_t timeout_ns;
};

/* Each rank's shared buffer: room for the largest shared-buffer op. */
#define BUFFER_BYTES ((size_t)4 << 20)

static struct group group_new(int world, size_t chunk)
{
	static int serial;
	char name[32];
	snprintf(name, sizeof(name), "xfer-%d-%d", world, serial++);
	struct group g = {.world = world, .timeout_ns = 20000 * MS};
	struct shmrt_region_spec spec = {.name = "xfer", .size = shmrt_xfer_footprint_buffers(world, chunk, BUFFER_BYTES),
					 .numa_node = -1};
	CHECK(spec.size > 0, "footprint(%d, %zu)", world, chunk);
	CHECK_OK(shmrt_arena_create(&g.arena, name, &spec, 1));
	CHECK_OK(shmrt_arena_region(g.arena, "xfer", &g.region, &g.size));
	CHECK_OK(shmrt_xfer_format_buffers(g.region, g.size, world, chunk, BUFFER_BYTES));
	return g;
}

static struct shmrt_xfer *open_rank(struct group *g, int rank)
{
	struct shmrt_xfer_config cfg = {.rank = rank, .world = g->world, .region = g->region,
					.region_size = g->size, .device = -1, .timeout_ns = g->timeout_ns};
	struct shmrt_xfer *x;
	CHECK_OK(shmrt_xfer_open(&x, "shm", &cfg));
	CHECK(!strcmp(shmrt_xfer_backend(x), "shm"), "backend %s", shmrt_xfer_backend(x));
	return x;
}

typedef void (*rank_fn)(struct group *g, int rank, void *arg);

static pid_t spawn(struct group *g, int rank, rank_fn fn, void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(g, rank, arg);
		_exit(0);
	}
	return pid;
}

/* Runs fn in world processes and checks that they all exit 0. */
static void run_group(struct group *g, rank_fn fn, void *arg)
{
	pid_t pids[SHMRT_XFER_MAX_WORLD];
	for (int r = 0; r < g->world; r++)
		pids[r] = spawn(g, r, fn, arg);
	for (int r = 0; r < g->world; r++) {
		int status;
		CHECK(waitpid(pids[r], &status, 0) == pids[r], "waitpid: %m");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rank %d of %d failed (status %#x)", r,
		      g->world, status);
	}
}

static void group_free(struct group *g)
{
	CHECK_OK(shmrt_arena_destroy(g->arena));
}

/* ---- the sequences ------------------------------------------------------- */

struct sequence {
	uint64_t seed;
	const struct op *ops;
	int n_ops;
};

static void run_sequence(struct group *g, int rank, void *arg)
{
	const struct sequence *s = arg;
	struct shmrt_xfer *x = open_rank(g, rank);
	for (int i = 0; i < s->n_ops; i++)
		run_op(x, rank, g->world, s->seed, i, &s->ops[i]);
	shmrt_xfer_close(x);
}

static const enum shmrt_dtype dtypes[] = {SHMRT_F32, SHMRT_BF16, SHMRT_F16};

/* Sizes that meet every edge of a group with this chunk: tiny, odd, around
 * a cache line, a slice, a block, the one-step limit, and (big) a few MiB. */
static int edge_ops(struct op *ops, int world, size_t chunk, bool big)
{
	int n = 0;
	size_t tiny[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 100, 255, 1000, 1023, 4097};
	for (size_t i = 0; i < ARRAY_SIZE(tiny); i++)
		ops[n++] = (struct op){(enum op_kind)(i % 4), dtypes[i % 3], tiny[i]};
	for (int d = 0; d < 3; d++) {
		size_t es = shmrt_dtype_size(dtypes[d]);
		size_t edges[] = {chunk / es, (size_t)world * chunk / es, (128 << 10) / (size_t)world / es,
				  3 * (size_t)world * chunk / es};
		for (size_t e = 0; e < ARRAY_SIZE(edges); e++)
			for (int delta = -1; delta <= 1; delta++)
				ops[n++] = (struct op){OP_REDUCE, dtypes[d], edges[e] + (size_t)delta};
	}
	for (int d = 0; d < 3; d++) /* several blocks, shared buffers mixed with private ones */
		for (int k = 0; k < 3; k++)
			ops[n++] = (struct op){OP_REDUCE_SHARED, dtypes[d],
					       3 * (size_t)world * chunk / shmrt_dtype_size(dtypes[d]) + (size_t)k};
	if (!big)
		return n;
	ops[n++] = (struct op){OP_REDUCE, SHMRT_F32, (3 << 20) / 4 + 7};
	ops[n++] = (struct op){OP_REDUCE_SHARED, SHMRT_F32, (3 << 20) / 4 + 5};
	ops[n++] = (struct op){OP_REDUCE_INPLACE, SHMRT_BF16, (1 << 20) + 3};
	ops[n++] = (struct op){OP_GATHER, SHMRT_F32, (1 << 20) / 4 + 1};
	ops[n++] = (struct op){OP_BARRIER, SHMRT_F32, 0};
	return n;
}

/* n_ops operations of random kinds and sizes (log-uniform up to max_n). */
static void random_ops(struct op *ops, int n_ops, uint64_t seed, size_t max_n)
{
	for (int i = 0; i < n_ops; i++) {
		uint64_t h = mix(seed + (uint64_t)i);
		double u = (double)(h >> 11) / 9007199254740992.0;
		size_t n = (size_t)exp(u * log((double)max_n)) + (h & 3);
		ops[i] = (struct op){(enum op_kind)((h >> 2) % 6), dtypes[(h >> 5) % 3], n};
	}
}

static void test_collectives(int world, size_t chunk, int n_random, size_t max_n)
{
	static struct op ops[4096];
	bool big = chunk == 0;
	if (chunk == 0)
		chunk = SHMRT_XFER_DEFAULT_CHUNK;
	int n = edge_ops(ops, world, chunk, big);
	uint64_t seed = mix((uint64_t)world * 1000 + chunk);
	random_ops(ops + n, n_random, seed, max_n);
	struct sequence s = {.seed = seed, .ops = ops, .n_ops = n + n_random};
	struct group g = group_new(world, chunk);
	int64_t t0 = shmrt_now_ns();
	run_group(&g, run_sequence, &s);
	printf("W=%d chunk %6zu B: %4d operations checked bit for bit in %.2f s\n", world, chunk, s.n_ops,
	       (double)(shmrt_now_ns() - t0) / 1e9);
	group_free(&g);
}

/* ---- failures ------------------------------------------------------------ */

/* What each rank reports back through a shared page. */
struct report {
	int rc[SHMRT_XFER_MAX_WORLD], later_rc[SHMRT_XFER_MAX_WORLD];
	int64_t at[SHMRT_XFER_MAX_WORLD];
	_Atomic int ready;
};

static struct report *report_new(void)
{
	struct report *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(r != MAP_FAILED, "mmap: %m");
	memset(r, 0, sizeof(*r));
	return r;
}

struct dead_args {
	struct report *rep;
	int victim;
	bool stream; /* everyone streams all-reduces (else the others block on one) */
};

/* The victim streams with the others (or does not call at all) until it
 * is killed; the others all-reduce until a call fails, then try a barrier. */
static void dead_rank(struct group *g, int rank, void *arg)
{
	struct dead_args *a = arg;
	struct shmrt_xfer *x = open_rank(g, rank);
	size_t n = a->stream ? (64 << 10) / 4 : (1 << 20) / 4;
	float *buf = calloc(n, sizeof(float));
	CHECK(buf, "out of memory");
	if (rank == a->victim) {
		while (a->stream && shmrt_xfer_all_reduce(x, buf, buf, n, SHMRT_F32, NULL) == 0)
			atomic_fetch_add(&a->rep->ready, 1);
		atomic_fetch_add(&a->rep->ready, 1);
		for (;;)
			pause();
	}
	int rc;
	while ((rc = shmrt_xfer_all_reduce(x, buf, buf, n, SHMRT_F32, NULL)) == 0)
		;
	a->rep->at[rank] = shmrt_now_ns();
	a->rep->rc[rank] = rc;
	a->rep->later_rc[rank] = shmrt_xfer_barrier(x);
	free(buf);
	shmrt_xfer_close(x);
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	nanosleep(&ts, NULL);
}

static void test_dead_peer(int world, int victim, bool stream)
{
	struct group g = group_new(world, 0);
	struct report *rep = report_new();
	struct dead_args a = {.rep = rep, .victim = victim, .stream = stream};
	pid_t pids[SHMRT_XFER_MAX_WORLD];
	for (int r = 0; r < world; r++)
		pids[r] = spawn(&g, r, dead_rank, &a);
	/* Streaming: a few hundred all-reduces first; blocked: the others
	 * are in their call by 100 ms after the victim is ready. */
	int want = stream ? 200 : 1;
	for (int i = 0; atomic_load(&rep->ready) < want; i++) {
		CHECK(i < 10000, "the victim never got ready");
		sleep_ns(MS);
	}
	if (!stream)
		sleep_ns(100 * MS);
	int64_t killed_at = shmrt_now_ns();
	kill(pids[victim], SIGKILL);
	for (int r = 0; r < world; r++) {
		int status;
		CHECK(waitpid(pids[r], &status, 0) == pids[r], "waitpid: %m");
		if (r == victim) {
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "victim status %#x", status);
			continue;
		}
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rank %d failed (status %#x)", r, status);
		int64_t late = rep->at[r] - killed_at;
		CHECK(rep->rc[r] == -EPIPE, "rank %d: rc %d, not -EPIPE", r, rep->rc[r]);
		CHECK(late > 0 && late < 1000 * MS, "rank %d: noticed %.3f s after the kill", r, late / 1e9);
		CHECK(rep->later_rc[r] == -EPIPE, "rank %d: the call after the failure gave %d", r,
		      rep->later_rc[r]);
		printf("W=%d, rank %d killed %s: rank %d got -EPIPE %6.1f ms after the kill\n", world, victim,
		       stream ? "mid-stream" : "while the others wait", r, late / 1e6);
	}
	munmap(rep, sizeof(*rep));
	group_free(&g);
}

/* Rank 1 joins, then sleeps past rank 0's timeout before its first call. */
static void late_rank(struct group *g, int rank, void *arg)
{
	struct report *rep = arg;
	struct shmrt_xfer *x = open_rank(g, rank);
	float v = 1;
	int64_t t0 = shmrt_now_ns();
	if (rank == 1)
		sleep_ns(3 * g->timeout_ns);
	rep->rc[rank] = shmrt_xfer_all_reduce(x, &v, &v, 1, SHMRT_F32, NULL);
	rep->at[rank] = shmrt_now_ns() - t0;
	shmrt_xfer_close(x);
}

static void test_timeout(void)
{
	struct group g = group_new(2, 0);
	g.timeout_ns = 200 * MS;
	struct report *rep = report_new();
	run_group(&g, late_rank, rep);
	CHECK(rep->rc[0] == -ETIMEDOUT, "rank 0: rc %d, not -ETIMEDOUT", rep->rc[0]);
	CHECK(rep->at[0] >= g.timeout_ns && rep->at[0] < g.timeout_ns + 1000 * MS, "rank 0 gave up after %.3f s",
	      rep->at[0] / 1e9);
	CHECK(rep->rc[1] == -EPIPE, "rank 1 (late): rc %d, not -EPIPE", rep->rc[1]);
	printf("W=2, a live rank that does not come: -ETIMEDOUT after %.0f ms (timeout 200 ms)\n", rep->at[0] / 1e6);
	munmap(rep, sizeof(*rep));
	group_free(&g);
}

/* Holds its rank until killed. */
static void hold_rank(struct group *g, int rank, void *arg)
{
	struct report *rep = arg;
	open_rank(g, rank);
	atomic_fetch_add(&rep->ready, 1);
	for (;;)
		pause();
}

static int try_open(struct group *g, int rank, const char *name)
{
	struct shmrt_xfer_config cfg = {.rank = rank, .world = g->world, .region = g->region,
					.region_size = g->size, .device = -1, .timeout_ns = 500 * MS};
	struct shmrt_xfer *x;
	int rc = shmrt_xfer_open(&x, name, &cfg);
	if (rc == 0)
		shmrt_xfer_close(x);
	return rc;
}

static void test_regions(void)
{
	/* W = 1: open, a copy for an all-reduce, close; again: -ESTALE. */
	struct group g = group_new(1, 0);
	struct shmrt_xfer *x = open_rank(&g, 0);
	struct op o = {OP_REDUCE, SHMRT_BF16, 1000};
	run_op(x, 0, 1, 42, 0, &o);
	shmrt_xfer_close(x);
	CHECK(try_open(&g, 0, "shm") == -ESTALE, "reopened a used region");
	CHECK_OK(shmrt_xfer_format(g.region, g.size, 1, 0));
	CHECK(try_open(&g, 0, "bogus") == -EINVAL, "unknown transport name");
	setenv("SHMRT_TRANSPORT", "bogus", 1);
	CHECK(try_open(&g, 0, "shm") == -EINVAL, "SHMRT_TRANSPORT=bogus");
	setenv("SHMRT_TRANSPORT", "auto", 1);
	CHECK(try_open(&g, 0, "nccl") == 0, "auto for CPU workers (SHMRT_TRANSPORT overrides nccl)");
	unsetenv("SHMRT_TRANSPORT");
	/* nccl for host buffers: not built here, or built and refusing. */
	CHECK_OK(shmrt_xfer_format(g.region, g.size, 1, 0));
	CHECK(try_open(&g, 0, "nccl") == -ENOTSUP, "nccl for CPU workers: %s", shmrt_last_error());
	/* Another world size, an unformatted region, a bad chunk. */
	CHECK_OK(shmrt_xfer_format(g.region, g.size, 1, 0));
	g.world = 2;
	CHECK(try_open(&g, 0, NULL) == -EBADMSG, "world 2 on a region for 1");
	g.world = 1;
	memset(g.region, 0, 4096);
	CHECK(try_open(&g, 0, NULL) == -EBADMSG, "unformatted region");
	CHECK(shmrt_xfer_format(g.region, g.size, 1, 100) == -EINVAL, "chunk of 100 bytes");
	CHECK(shmrt_xfer_format(g.region, 4096, 1, 0) == -EINVAL, "region too small");
	CHECK(shmrt_xfer_footprint(0, 0) == 0 && shmrt_xfer_footprint(SHMRT_XFER_MAX_WORLD + 1, 0) == 0,
	      "footprint of bad worlds");
	group_free(&g);

	/* A rank held by a live process: -EBUSY. */
	g = group_new(2, 0);
	struct report *rep = report_new();
	pid_t pids[2] = {spawn(&g, 0, hold_rank, rep), spawn(&g, 1, hold_rank, rep)};
	for (int i = 0; atomic_load(&rep->ready) < 2; i++) {
		CHECK(i < 10000, "the holders never got ready");
		sleep_ns(MS);
	}
	CHECK(try_open(&g, 1, "shm") == -EBUSY, "a rank held by a live process");
	for (int r = 0; r < 2; r++) {
		kill(pids[r], SIGKILL);
		waitpid(pids[r], NULL, 0);
	}
	munmap(rep, sizeof(*rep));
	group_free(&g);
	printf("regions: -ESTALE, -EBUSY, -EBADMSG, -EINVAL, -ENOTSUP as documented\n");
}

int main(void)
{
	shm_tmpdir();
	test_regions();
	/* Default chunks, then tiny ones: many blocks per call, slots reused
	 * all the time. */
	for (int w = 2; w <= 4; w++)
		test_collectives(w, 0, 200, 1 << 16);
	test_collectives(2, 256, 300, 1 << 13);
	test_collectives(3, 192, 300, 1 << 13);
	test_collectives(4, 64, 200, 1 << 12);
	test_dead_peer(2, 1, false);
	test_dead_peer(3, 2, false);
	test_dead_peer(3, 0, true);
	test_dead_peer(4, 1, true);
	test_timeout();
	return 0;
}
