/* Checked ring traffic (see ring_traffic.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "ring_traffic.h"

/* No wait in these tests should come near this: a stall is an error. */
#define WAIT_NS (120 * 1000 * 1000 * 1000LL)

struct traffic_head {
	uint32_t producer;
	uint32_t payload; /* bytes after this header */
	uint64_t seq;
	uint64_t sum; /* traffic_sum of the payload, seeded with producer and seq */
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
	return z ^ (z >> 31);
}

/* Our checksum: one multiply-xorshift round per 8-byte word. */
static uint64_t mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9fb21c651e98df25;
	return h ^ (h >> 29);
}

static uint64_t traffic_sum(const unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		h = mix(h, v);
	}
	uint64_t tail = 0;
	memcpy(&tail, p + i, n - i);
	return mix(h, tail);
}

static uint64_t sum_seed(uint32_t producer, uint64_t seq)
{
	return (uint64_t)producer << 48 ^ seq ^ 0x5bd1e9955bd1e995;
}

/* Mostly small, some large: 90% 1..64 B, 9.5% 65 B..2 KiB, 0.49% up to
 * 64 KiB, 0.01% up to 1 MiB - 24 (about 350 B on average). */
static size_t payload_size(uint64_t *rng)
{
	uint64_t r = splitmix(rng), pick = r % 10000;
	r >>= 16;
	size_t max = TRAFFIC_MAX_RECORD - sizeof(struct traffic_head);
	if (pick < 9000)
		return 1 + r % 64;
	if (pick < 9950)
		return 65 + r % (2048 - 65);
	if (pick < 9999)
		return 2048 + r % (65536 - 2048);
	return 65536 + r % (max - 65536 + 1);
}

static void write_record(unsigned char *rec, uint32_t producer, uint64_t seq, size_t payload)
{
	struct traffic_head h = {.producer = producer, .payload = (uint32_t)payload, .seq = seq};
	unsigned char *p = rec + sizeof(h);
	uint64_t x = sum_seed(producer, seq) * 31 + payload;
	for (size_t i = 0; i < payload; i += 8) {
		uint64_t v = splitmix(&x);
		memcpy(p + i, &v, payload - i < 8 ? payload - i : 8);
	}
	h.sum = traffic_sum(p, payload, sum_seed(producer, seq));
	memcpy(rec, &h, sizeof(h));
}

static int fail(struct traffic_job *job, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(job->err, sizeof(job->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int open_ring(struct traffic_job *job, enum shmrt_ring_role role, struct shmrt_ring **r)
{
	int rc = shmrt_ring_open(r, job->mem, job->mem_size, role, job->id);
	if (rc < 0)
		return fail(job, "open: %d (%s)", rc, shmrt_last_error());
	if (job->spin_ns != TRAFFIC_SPIN_DEFAULT)
		shmrt_ring_set_spin(*r, job->spin_ns);
	return 0;
}

/* Records alternate between the zero-copy path (one in two of those
 * reserving more than it commits) and send from a private buffer. */
int traffic_produce(struct traffic_job *job)
{
	struct shmrt_ring *r = job->shared;
	if (!r && open_ring(job, SHMRT_RING_PRODUCER, &r) < 0)
		return -1;
	unsigned char *local = malloc(TRAFFIC_MAX_RECORD);
	if (!local)
		return fail(job, "out of memory");
	uint64_t rng = job->seed ^ (job->id + 1) * 0x2545f4914f6cdd1d;
	int rc = 0;
	for (uint64_t seq = 0; seq < job->records && rc == 0; seq++) {
		size_t len = sizeof(struct traffic_head) + payload_size(&rng);
		job->bytes += len;
		if (seq % 2) {
			write_record(local, job->id, seq, len - sizeof(struct traffic_head));
			rc = shmrt_ring_send(r, local, len, WAIT_NS);
			continue;
		}
		size_t room = seq % 4 ? len : len + (seq / 4) % 512;
		void *buf;
		rc = shmrt_ring_reserve(r, room, &buf, WAIT_NS);
		if (rc == 0) {
			write_record(buf, job->id, seq, len - sizeof(struct traffic_head));
			rc = shmrt_ring_commit(r, buf, len);
		}
	}
	if (rc < 0)
		fail(job, "producer %u: %d (%s)", job->id, rc, shmrt_last_error());
	free(local);
	if (!job->shared)
		shmrt_ring_close(r);
	return rc < 0 ? -1 : 0;
}

static int check_record(struct traffic_job *job, const unsigned char *rec, size_t len, uint64_t *next)
{
	struct traffic_head h;
	if (len < sizeof(h))
		return fail(job, "reader %u: a %zu-byte record", job->id, len);
	memcpy(&h, rec, sizeof(h));
	if (h.producer >= job->n_producers || h.payload != len - sizeof(h))
		return fail(job, "reader %u: bad header (producer %u, %u payload bytes in a %zu-byte record)",
			    job->id, h.producer, h.payload, len);
	if (h.seq != next[h.producer])
		return fail(job, "reader %u: producer %u's record %llu came when %llu was due (%s)", job->id,
			    h.producer, (unsigned long long)h.seq, (unsigned long long)next[h.producer],
			    h.seq < next[h.producer] ? "duplicate or reordered" : "lost");
	if (traffic_sum(rec + sizeof(h), h.payload, sum_seed(h.producer, h.seq)) != h.sum)
		return fail(job, "reader %u: producer %u's record %llu (%u bytes) is corrupt", job->id, h.producer,
			    (unsigned long long)h.seq, h.payload);
	next[h.producer]++;
	job->bytes += len;
	return 0;
}

/* Records alternate between peek/release and recv; after the last one the
 * producers are gone, which peek reports as -EPIPE. */
int traffic_consume(struct traffic_job *job)
{
	struct shmrt_ring *r;
	if (open_ring(job, SHMRT_RING_CONSUMER, &r) < 0)
		return -1;
	uint64_t *next = calloc(job->n_producers, sizeof(*next));
	unsigned char *buf = malloc(TRAFFIC_MAX_RECORD);
	int rc = next && buf ? 0 : fail(job, "out of memory");
	uint64_t total = job->records * job->n_producers;
	for (uint64_t i = 0; i < total && rc == 0; i++) {
		const void *p = buf;
		size_t len;
		int e = i % 2 ? shmrt_ring_peek(r, &p, &len, WAIT_NS)
			      : shmrt_ring_recv(r, buf, TRAFFIC_MAX_RECORD, &len, WAIT_NS);
		if (e == 0 && (rc = check_record(job, p, len, next)) == 0 && i % 2)
			e = shmrt_ring_release(r);
		if (e < 0)
			rc = fail(job, "reader %u, record %llu of %llu: %d (%s)", job->id, (unsigned long long)i,
				  (unsigned long long)total, e, shmrt_last_error());
	}
	if (rc == 0) {
		const void *p;
		size_t len;
		rc = shmrt_ring_peek(r, &p, &len, WAIT_NS);
		if (rc != -EPIPE)
			rc = fail(job, "reader %u: after the last record peek returned %d, not -EPIPE (%s)", job->id,
				  rc, shmrt_last_error());
		else
			rc = 0;
	}
	free(next);
	free(buf);
	shmrt_ring_close(r);
	return rc < 0 ? -1 : 0;
}

uint64_t traffic_count(int argc, char **argv, const char *env, uint64_t def)
{
	const char *s = argc > 1 ? argv[1] : getenv(env);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long long n = strtoull(s, &end, 0);
	return *end || n == 0 ? def : n;
}
