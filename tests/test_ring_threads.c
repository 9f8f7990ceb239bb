/* Rings between threads of one process, the program CI runs under
 * ThreadSanitizer: SPSC, MPSC with producer threads sharing one handle, and
 * broadcast with reader threads; every record checked (ring_traffic.c).
 *
 * Records sent in all, split evenly over the three kinds: argv[1] or
 * $SHMRT_RING_THREADS_RECORDS, default 1 million. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "clock.h"
#include "ring_traffic.h"

#define MAX_WORKERS 4

/* Waiting modes spread over the threads, as in test_ring_stress. */
static const int64_t spins[] = {TRAFFIC_SPIN_DEFAULT, 0, 5000};

struct worker {
	pthread_t thread;
	struct traffic_job job;
	int (*work)(struct traffic_job *);
	int rc;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	w->rc = w->work(&w->job);
	return NULL;
}

static void phase(const char *name, enum shmrt_ring_kind kind, unsigned n_producers, unsigned n_readers,
		  uint64_t per_producer)
{
	size_t size = shmrt_ring_footprint(kind, TRAFFIC_CAPACITY, n_readers);
	void *mem = aligned_alloc(64, size);
	CHECK(mem, "out of memory");
	CHECK_OK(shmrt_ring_format(mem, size, kind, TRAFFIC_CAPACITY, n_readers));
	/* MPSC: the producer threads share one handle. */
	struct shmrt_ring *shared = NULL;
	if (kind == SHMRT_RING_MPSC) {
		CHECK_OK(shmrt_ring_open(&shared, mem, size, SHMRT_RING_PRODUCER, 0));
		shmrt_ring_set_spin(shared, 0);
	}
	struct worker w[2 * MAX_WORKERS];
	unsigned n = n_readers + n_producers;
	int64_t t0 = shmrt_now_ns();
	for (unsigned i = 0; i < n; i++) {
		bool reader = i < n_readers;
		w[i] = (struct worker){.work = reader ? traffic_consume : traffic_produce};
		w[i].job = (struct traffic_job){.mem = mem, .mem_size = size, .shared = reader ? NULL : shared,
						.id = reader ? i : i - n_readers, .n_producers = n_producers,
						.records = per_producer, .seed = 1, .spin_ns = spins[i % 3]};
		CHECK(pthread_create(&w[i].thread, NULL, run, &w[i]) == 0, "pthread_create");
	}
	/* Producers first: the shared handle closes once they are done, and
	 * the readers then end with -EPIPE. */
	bool ok = true;
	for (unsigned i = n; i-- > 0;) {
		pthread_join(w[i].thread, NULL);
		if (i == n_readers && shared)
			shmrt_ring_close(shared);
		if (w[i].rc != 0) {
			fprintf(stderr, "%s: %s\n", name, w[i].job.err);
			ok = false;
		}
	}
	printf("%-9s %u producer thread(s), %u reader thread(s): %llu records sent, %.1f s\n", name, n_producers,
	       n_readers, (unsigned long long)(per_producer * n_producers), (shmrt_now_ns() - t0) / 1e9);
	CHECK(ok, "%s: a worker failed", name);
	free(mem);
}

int main(int argc, char **argv)
{
	uint64_t total = traffic_count(argc, argv, "SHMRT_RING_THREADS_RECORDS", 1000 * 1000);
	phase("spsc", SHMRT_RING_SPSC, 1, 1, total / 3);
	phase("mpsc", SHMRT_RING_MPSC, 3, 1, total / 9);
	phase("broadcast", SHMRT_RING_BROADCAST, 1, 3, total / 3);
	return 0;
}
