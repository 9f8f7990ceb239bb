/* Rings between processes: producer and consumer processes (fork) through
 * SPSC, MPSC (three producer processes) and broadcast (three reader
 * processes) rings; every record checked (ring_traffic.c).
 *
 * Records sent in all, split evenly over the three kinds: argv[1] or
 * $SHMRT_RING_STRESS_RECORDS, default 10 million. $SHMRT_RING_STRESS_SEED
 * changes the sizes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "clock.h"
#include "ring_traffic.h"

#define MAX_WORKERS 4

/* Waiting modes, spread over the workers: the default spin then futex,
 * futex at once, a short spin. */
static const int64_t spins[] = {TRAFFIC_SPIN_DEFAULT, 0, 5000};

static pid_t start(struct traffic_job *job, int (*work)(struct traffic_job *))
{
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		_exit(work(job) < 0 ? 1 : 0);
	}
	return pid;
}

static void phase(const char *name, enum shmrt_ring_kind kind, unsigned n_producers, unsigned n_readers,
		  uint64_t per_producer, uint64_t seed)
{
	size_t size = shmrt_ring_footprint(kind, TRAFFIC_CAPACITY, n_readers);
	/* The ring and the workers' results, shared with the children. */
	size_t jobs_size = 2 * MAX_WORKERS * sizeof(struct traffic_job);
	unsigned char *mem = mmap(NULL, size + jobs_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap: %m");
	CHECK_OK(shmrt_ring_format(mem, size, kind, TRAFFIC_CAPACITY, n_readers));
	struct traffic_job *jobs = (struct traffic_job *)(mem + size);
	pid_t pids[2 * MAX_WORKERS];
	unsigned n = 0;
	int64_t t0 = shmrt_now_ns();
	for (unsigned i = 0; i < n_readers + n_producers; i++, n++) {
		bool reader = i < n_readers;
		unsigned id = reader ? i : i - n_readers;
		jobs[n] = (struct traffic_job){.mem = mem, .mem_size = size, .id = id, .n_producers = n_producers,
					       .records = per_producer, .seed = seed, .spin_ns = spins[i % 3]};
		pids[n] = start(&jobs[n], reader ? traffic_consume : traffic_produce);
	}
	bool ok = true;
	for (unsigned i = 0; i < n; i++) {
		int status;
		CHECK(waitpid(pids[i], &status, 0) == pids[i], "waitpid: %m");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "%s: %s %u: %s (status %#x)\n", name, i < n_readers ? "reader" : "producer",
				jobs[i].id, jobs[i].err[0] ? jobs[i].err : "died", status);
			ok = false;
		}
	}
	double secs = (shmrt_now_ns() - t0) / 1e9;
	uint64_t sent = per_producer * n_producers, bytes = 0;
	for (unsigned i = n_readers; i < n; i++)
		bytes += jobs[i].bytes;
	printf("%-9s %u producer(s), %u reader(s): %llu records (%.1f MB) sent, %llu checked, %.1f s\n", name,
	       n_producers, n_readers, (unsigned long long)sent, bytes / 1e6,
	       (unsigned long long)(sent * n_readers), secs);
	CHECK(ok, "%s: a worker failed", name);
	munmap(mem, size + jobs_size);
}

int main(int argc, char **argv)
{
	uint64_t total = traffic_count(argc, argv, "SHMRT_RING_STRESS_RECORDS", 10 * 1000 * 1000);
	uint64_t seed = traffic_count(0, NULL, "SHMRT_RING_STRESS_SEED", 1);
	printf("ring stress: %llu records, seed %llu\n", (unsigned long long)total, (unsigned long long)seed);
	/* Rounded up, so that at least `total` records are sent in all. */
	uint64_t third = (total + 2) / 3, per_mpsc = (third + 2) / 3;
	phase("spsc", SHMRT_RING_SPSC, 1, 1, third, seed);
	phase("mpsc", SHMRT_RING_MPSC, 3, 1, per_mpsc, seed);
	phase("broadcast", SHMRT_RING_BROADCAST, 1, 3, third, seed);
	printf("in all: %llu records sent\n", (unsigned long long)(2 * third + 3 * per_mpsc));
	return 0;
}
