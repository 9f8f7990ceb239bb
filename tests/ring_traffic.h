/* Checked traffic through a ring, shared by test_ring_stress (processes)
 * and test_ring_threads (threads): producers send records carrying their
 * id, a sequence number and a checksum of a seeded random payload;
 * consumers verify that every producer's records arrive, in order, once,
 * intact. */
#ifndef SHMRT_TESTS_RING_TRAFFIC_H
#define SHMRT_TESTS_RING_TRAFFIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/ring.h"

/* Records are a 24-byte header and 1 B .. 1 MiB - 24 of payload; the ring
 * must hold 1 MiB records. */
#define TRAFFIC_MAX_RECORD ((size_t)1 << 20)
#define TRAFFIC_CAPACITY ((size_t)4 << 20)

struct traffic_job {
	void *mem; /* the formatted ring */
	size_t mem_size;
	/* MPSC threads: the producer handle they share (else each worker
	 * opens its own). */
	struct shmrt_ring *shared;
	unsigned id;          /* producer id, or the reader index */
	unsigned n_producers; /* that the consumer expects */
	uint64_t records;     /* per producer */
	uint64_t seed;
	int64_t spin_ns; /* shmrt_ring_set_spin; TRAFFIC_SPIN_DEFAULT leaves it */
	/* Results. */
	uint64_t bytes;
	char err[256];
};

#define TRAFFIC_SPIN_DEFAULT INT64_MIN

/* Each returns 0, or -1 with job->err set. */
int traffic_produce(struct traffic_job *job);
int traffic_consume(struct traffic_job *job);

/* The number from argv[1] or the environment variable, else def. */
uint64_t traffic_count(int argc, char **argv, const char *env, uint64_t def);

#endif
