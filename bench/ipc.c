/* shmrt bench ipc: one-way latency and throughput of shmrt's rings beside
 * pipe, Unix socket and ZeroMQ, and the physical limits measured in the
 * same run: a bare cache-line ping-pong (the latency floor) and memcpy
 * (the bandwidth limit). Issue 2, "Benchmark".
 *
 * For each record size and transport, the process forks: A (the parent)
 * drives and times, B (the child) answers; each is pinned to its own CPU.
 * The peers are in bench/ipc_*.c behind struct ipc_transport; the output
 * is bench/ipc_report.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmrt_config.h"
#include "clock.h"
#include "bench.h"
#include "ipc.h"
#include "array_size.h"

static const size_t sizes[] = {64, 4096, 65536, 1048576};
#define N_SIZES (int)(ARRAY_SIZE(sizes))

static const struct ipc_transport *const transports[] = {
	&ipc_floor, &ipc_shmrt_spin, &ipc_shmrt_futex, &ipc_pipe, &ipc_uds,
#if SHMRT_HAVE_ZMQ
	&ipc_zmq,
#endif
};
#define N_TRANSPORTS (int)(ARRAY_SIZE(transports))

/* The first byte of every record: what B is to do with it. */
enum msg {
	MSG_PING = 1,   /* send it back */
	MSG_STREAM,     /* keep it, no answer */
	MSG_STREAM_END, /* the last of a stream: answer it */
	MSG_IDLE,       /* answer, then time the wait for the next record */
	MSG_QUIT,       /* answer and exit */
};

/* Each (transport, size) is measured in `rounds` turns of an equal share
 * of the budget, the transports taking turns, and the turns' samples are
 * merged: the host may move a vCPU between physical cores within seconds
 * (on this VM the floor jumps between about 50 and 180 ns), and turns
 * spread such changes over all transports alike, so that the ratios hold. */
struct budget {
	int rounds;
	int64_t latency_ns, stream_ns, memcpy_ns; /* in all, over the rounds */
	int64_t idle_ns;
	size_t min_samples;
};

static const struct budget full_budget = {5, 300000000, 300000000, 200000000, 1000000000, 1000};
static const struct budget quick_budget = {1, 20000000, 20000000, 20000000, 200000000, 200};
/* Round trips kept per (transport, size), over all rounds. */
#define MAX_SAMPLES ((size_t)1 << 18)

/* What one (transport, size) gathered over the rounds. */
struct acc {
	uint32_t *rtt; /* round trips, ns */
	size_t n;
	double stream_bytes, stream_ns;
};

/* A running pair of processes joined by one transport. */
struct pair {
	const struct ipc_transport *t;
	void *chan;
	size_t bytes;
	unsigned char *buf; /* A's record */
	pid_t pid;
};

static int pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static double cpu_ns(const struct rusage *r)
{
	return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e9 +
	       (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) * 1e3;
}

/* B's CPU time (user + system) as a share of the wall time while it waits
 * for one record. */
static int recv_timed(struct pair *p, unsigned char *buf, double *cpu_percent)
{
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	int64_t w0 = shmrt_now_ns();
	int rc = p->t->recv(p->chan, buf, p->bytes);
	int64_t w1 = shmrt_now_ns();
	getrusage(RUSAGE_SELF, &r1);
	*cpu_percent = 100 * (cpu_ns(&r1) - cpu_ns(&r0)) / (double)(w1 - w0);
	return rc;
}

/* B: answers A's records until MSG_QUIT. */
static int b_serve(struct pair *p, unsigned char *buf)
{
	bool time_next = false;
	for (;;) {
		double cpu_percent = NAN;
		int rc = time_next ? recv_timed(p, buf, &cpu_percent) : p->t->recv(p->chan, buf, p->bytes);
		if (rc < 0)
			return rc;
		if (time_next) /* the answer carries the figure */
			memcpy(buf + 8, &cpu_percent, sizeof(cpu_percent));
		time_next = buf[0] == MSG_IDLE;
		if (buf[0] == MSG_STREAM)
			continue;
		if ((rc = p->t->send(p->chan, buf, p->bytes)) < 0 || buf[0] == MSG_QUIT)
			return rc;
	}
}

static _Noreturn void b_main(struct pair *p, pid_t parent, int cpu)
{
	/* Never outlive A: a B left spinning would eat a core. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	unsigned char *buf = malloc(p->bytes);
	int rc = buf ? pin_to_cpu(cpu) : -ENOMEM;
	if (rc == 0)
		rc = p->t->attach(p->chan, IPC_B);
	if (rc == 0)
		rc = b_serve(p, buf);
	p->t->detach(p->chan);
	if (rc < 0)
		fprintf(stderr, "shmrt bench ipc: %s, %zu B, process B: %s\n", p->t->name, p->bytes, strerror(-rc));
	_exit(rc < 0);
}

/* One record there and back; the answer lands in p->buf. */
static int round_trip(struct pair *p, enum msg type)
{
	p->buf[0] = (unsigned char)type;
	int rc = p->t->send(p->chan, p->buf, p->bytes);
	if (rc == 0)
		rc = p->t->recv(p->chan, p->buf, p->bytes);
	if (rc == 0 && p->buf[0] != type)
		rc = -EBADMSG;
	return rc;
}

/* Tells B to quit (when all went well, else kills it), reaps it and frees
 * the channel. Returns rc, or -EPIPE when B failed. */
static int pair_end(struct pair *p, int rc)
{
	if (rc == 0)
		rc = round_trip(p, MSG_QUIT);
	p->t->detach(p->chan);
	if (p->pid > 0) {
		int status;
		if (rc < 0)
			kill(p->pid, SIGKILL);
		if (waitpid(p->pid, &status, 0) == p->pid && rc == 0 && !(WIFEXITED(status) && !WEXITSTATUS(status)))
			rc = -EPIPE;
	}
	p->t->teardown(p->chan);
	free(p->buf);
	return rc;
}

static int pair_start(struct pair *p, const struct ipc_transport *t, size_t bytes, int cpu_b)
{
	*p = (struct pair){.t = t, .bytes = bytes, .pid = -1};
	p->buf = malloc(bytes);
	if (!p->buf)
		return -ENOMEM;
	memset(p->buf, 0xa5, bytes);
	int rc = t->setup(&p->chan, bytes);
	if (rc < 0) {
		free(p->buf);
		return rc;
	}
	pid_t parent = getpid();
	fflush(NULL);
	p->pid = fork();
	if (p->pid == 0)
		b_main(p, parent, cpu_b);
	rc = p->pid < 0 ? -errno : t->attach(p->chan, IPC_A);
	return rc < 0 ? pair_end(p, rc) : 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* One-way latency as half the round trip of a record and its echo (B reads
 * the whole record and writes it back): this round's share of samples. */
static int measure_latency(struct pair *p, const struct budget *b, struct acc *a)
{
	int rc = 0;
	int64_t share = b->latency_ns / b->rounds, start = shmrt_now_ns(), now = start;
	/* Warm up: caches, page faults, ZeroMQ's connection. */
	for (int i = 0; rc == 0 && (i < 10 || now - start < share / 10); i++) {
		rc = round_trip(p, MSG_PING);
		now = shmrt_now_ns();
	}
	size_t n = 0, min_n = b->min_samples / (size_t)b->rounds, max_n = MAX_SAMPLES / (size_t)b->rounds;
	int64_t end = now + share;
	while (rc == 0 && n < max_n && (n < min_n || now < end)) {
		int64_t t0 = shmrt_now_ns();
		rc = round_trip(p, MSG_PING);
		now = shmrt_now_ns();
		a->rtt[a->n + n++] = (uint32_t)(now - t0 < UINT32_MAX ? now - t0 : UINT32_MAX);
	}
	a->n += n;
	return rc;
}

/* Throughput: A streams records to B as fast as the transport takes them.
 * Counted: the payload bytes of every record B has received into its own
 * buffer (each is copied out whole), over the time from A's first send to
 * A holding B's answer to the last record. */
static int measure_stream(struct pair *p, const struct budget *b, struct acc *a)
{
	/* Read the clock every 64 KiB or so, not every small record. */
	size_t batch = p->bytes >= 65536 ? 1 : 65536 / p->bytes, sent = 0;
	int64_t t0 = shmrt_now_ns(), t1;
	int rc = 0;
	p->buf[0] = MSG_STREAM;
	do {
		for (size_t i = 0; rc == 0 && i < batch; i++)
			rc = p->t->send(p->chan, p->buf, p->bytes);
		sent += batch;
		t1 = shmrt_now_ns();
	} while (rc == 0 && t1 - t0 < b->stream_ns / b->rounds);
	if (rc == 0)
		rc = round_trip(p, MSG_STREAM_END);
	t1 = shmrt_now_ns();
	a->stream_bytes += (double)((sent + 1) * p->bytes);
	a->stream_ns += (double)(t1 - t0);
	return rc;
}

/* The CPU a consumer uses while blocked in a receive with nothing to come,
 * for window_ns; B measures it with getrusage. */
static int measure_idle(struct pair *p, int64_t window_ns, double *cpu_percent)
{
	int rc = round_trip(p, MSG_IDLE);
	if (rc < 0)
		return rc;
	struct timespec ts = {window_ns / 1000000000, window_ns % 1000000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	rc = round_trip(p, MSG_PING);
	if (rc == 0)
		memcpy(cpu_percent, p->buf + 8, sizeof(*cpu_percent));
	return rc;
}

static int run_transport(const struct ipc_transport *t, size_t bytes, const struct budget *b, int cpu_b,
			 struct acc *a)
{
	struct pair p;
	int rc = pair_start(&p, t, bytes, cpu_b);
	if (rc < 0)
		return rc;
	rc = measure_latency(&p, b, a);
	if (rc == 0 && t->stream)
		rc = measure_stream(&p, b, a);
	return pair_end(&p, rc);
}

/* A row from what a (transport, size) gathered. Percentiles by nearest
 * rank; MB = 10^6 bytes. */
static struct ipc_row make_row(const struct ipc_transport *t, size_t bytes, struct acc *a)
{
	struct ipc_row r = {t->name, bytes, NAN, NAN, NAN};
	qsort(a->rtt, a->n, sizeof(*a->rtt), cmp_u32);
	r.p50_ns = (double)a->rtt[(a->n - 1) / 2] / 2;
	r.p99_ns = (double)a->rtt[(a->n - 1) * 99 / 100] / 2;
	if (t->stream)
		r.mb_per_s = a->stream_bytes * 1e3 / a->stream_ns;
	return r;
}

static int run_idle(const struct budget *b, int cpu_b, double *cpu_percent)
{
	struct pair p;
	int rc = pair_start(&p, &ipc_shmrt_default, IPC_MIN_RECORD, cpu_b);
	if (rc < 0)
		return rc;
	rc = measure_idle(&p, b->idle_ns, cpu_percent);
	return pair_end(&p, rc);
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt bench ipc [--quick] [--json] [--csv FILE] [--cpus A,B]\n\n"
		"One-way latency (p50, p99: ping-pong round trip / 2 between two processes\n"
		"pinned to CPUs A and B) and throughput (MB/s, a one-way stream) for records\n"
		"of 64 B, 4 KiB, 64 KiB and 1 MiB, through:\n"
		"  shmrt-spin   shmrt SPSC rings, waiting by spinning only\n"
		"  shmrt-futex  shmrt SPSC rings, waiting on the futex at once\n"
		"  pipe         two pipes\n"
		"  uds          a Unix domain socket pair (SOCK_STREAM)\n"
		"  zmq          ZeroMQ PUSH/PULL over ipc:// (when built with libzmq)\n"
		"and the limits: floor (two atomic words ping-ponged between the two CPUs)\n"
		"and memcpy (one thread copying the records into a buffer the size of the\n"
		"shmrt rings: a ring producer's own copy, alone). Also memcpy through memory\n"
		"(buffers twice the last-level cache) at 1 MiB, and the CPU an idle consumer\n"
		"blocked on a ring uses.\n\n"
		"  --quick       a short run (a few seconds), for tests\n"
		"  --json        one JSON document on stdout: {\"results\": [{\"transport\",\n"
		"                \"bytes\", \"p50_ns\", \"p99_ns\", \"mb_per_s\"}, ...], ...}\n"
		"  --csv FILE    also write the rows to FILE\n"
		"  --cpus A,B    the two CPUs (default: the first two this process may use)\n");
}

/* The first two CPUs of this process's affinity mask. */
static int default_cpus(const cpu_set_t *mask, int *a, int *b)
{
	int found = 0;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, mask))
			*(found++ ? b : a) = c;
	return found == 2 ? 0 : -ENODEV;
}

/* Rows grouped by size: the transports, then memcpy. */
static int measure_all(const struct budget *b, int cpu_b, struct ipc_row *rows, int *n_rows, double *idle,
		       double *dram_mb)
{
	struct acc acc[N_SIZES][N_TRANSPORTS] = {0};
	double memcpy_mb[N_SIZES], memcpy_sum[N_SIZES] = {0}, dram_sum = 0;
	int rc = 0;
	for (int s = 0; s < N_SIZES; s++)
		for (int t = 0; t < N_TRANSPORTS; t++)
			if (!(acc[s][t].rtt = malloc(MAX_SAMPLES * sizeof(uint32_t))))
				rc = -ENOMEM;
	for (int round = 0; rc == 0 && round < b->rounds; round++) {
		for (int s = 0; rc == 0 && s < N_SIZES; s++)
			for (int t = 0; rc == 0 && t < N_TRANSPORTS; t++)
				if ((rc = run_transport(transports[t], sizes[s], b, cpu_b, &acc[s][t])) < 0)
					fprintf(stderr, "shmrt bench ipc: %s, %zu B: %s\n", transports[t]->name,
						sizes[s], strerror(-rc));
		if (rc == 0 && (rc = ipc_memcpy_bandwidth(sizes, N_SIZES, b->memcpy_ns / b->rounds, memcpy_mb)) < 0)
			fprintf(stderr, "shmrt bench ipc: memcpy: %s\n", strerror(-rc));
		for (int s = 0; rc == 0 && s < N_SIZES; s++)
			memcpy_sum[s] += memcpy_mb[s];
		double dram;
		if (rc == 0 && (rc = ipc_memcpy_dram(1 << 20, b->memcpy_ns / b->rounds / N_SIZES, &dram)) < 0)
			fprintf(stderr, "shmrt bench ipc: memcpy through memory: %s\n", strerror(-rc));
		dram_sum += rc == 0 ? dram : 0;
	}
	*dram_mb = dram_sum / b->rounds;
	if (rc == 0 && (rc = run_idle(b, cpu_b, idle)) < 0)
		fprintf(stderr, "shmrt bench ipc: idle consumer: %s\n", strerror(-rc));
	int n = 0;
	for (int s = 0; s < N_SIZES; s++) {
		for (int t = 0; t < N_TRANSPORTS; t++) {
			if (rc == 0)
				rows[n++] = make_row(transports[t], sizes[s], &acc[s][t]);
			free(acc[s][t].rtt);
		}
		/* Equal time per round: the mean of the rates is bytes / time. */
		if (rc == 0)
			rows[n++] = (struct ipc_row){"memcpy", sizes[s], NAN, NAN, memcpy_sum[s] / b->rounds};
	}
	*n_rows = n;
	return rc;
}

int bench_ipc(int argc, char **argv)
{
	bool quick = false, json = false;
	const char *csv = NULL;
	int cpu_a = -1, cpu_b = -1;
	static const struct option opts[] = {
		{"quick", no_argument, 0, 'q'},    {"json", no_argument, 0, 'j'}, {"csv", required_argument, 0, 'c'},
		{"cpus", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0},
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "qjc:p:h", opts, NULL)) != -1;) {
		char end;
		if (c == 'q')
			quick = true;
		else if (c == 'j')
			json = true;
		else if (c == 'c')
			csv = optarg;
		else if (c == 'p' && sscanf(optarg, "%d,%d%c", &cpu_a, &cpu_b, &end) == 2 && cpu_a != cpu_b)
			continue;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc)
		return usage(stderr), 2;

	cpu_set_t saved;
	if (sched_getaffinity(0, sizeof(saved), &saved) < 0 || (cpu_a < 0 && default_cpus(&saved, &cpu_a, &cpu_b) < 0)) {
		fprintf(stderr, "shmrt bench ipc: needs two CPUs to pin its two processes to\n");
		return 1;
	}
	if (pin_to_cpu(cpu_a) < 0) {
		fprintf(stderr, "shmrt bench ipc: cannot pin to CPU %d: %s\n", cpu_a, strerror(errno));
		return 1;
	}
	/* A peer that dies must show as an error, not kill us with SIGPIPE. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	sigaction(SIGPIPE, &ign, &old_pipe);

	const struct budget *b = quick ? &quick_budget : &full_budget;
	struct ipc_row rows[N_SIZES * (N_TRANSPORTS + 1)];
	int n = 0;
	double idle = NAN, dram = NAN;
	int rc = measure_all(b, cpu_b, rows, &n, &idle, &dram);

	sigaction(SIGPIPE, &old_pipe, NULL);
	sched_setaffinity(0, sizeof(saved), &saved);
	if (rc < 0)
		return 1;
	struct ipc_report report = {rows, n, cpu_a, cpu_b, quick, b->rounds, idle, (double)b->idle_ns / 1e9, dram};
	if (json)
		rc = ipc_print_json(&report);
	else
		ipc_print_table(&report);
	if (rc == 0 && csv && (rc = ipc_write_csv(&report, csv)) < 0)
		fprintf(stderr, "shmrt bench ipc: %s: %s\n", csv, strerror(-rc));
	return rc < 0;
}
