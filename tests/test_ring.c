/* Rings, one process: ordering, wrap-around, exact fit, limits, timeouts,
 * misuse and corrupt shared memory, and the futex wake made only for a
 * sleeper, for each kind of ring. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "clock.h"
#include "ring_layout.h"
#include "array_size.h"

#define CAP 4096
#define MS (1000 * 1000LL)

static const enum shmrt_ring_kind kinds[] = {SHMRT_RING_SPSC, SHMRT_RING_MPSC, SHMRT_RING_BROADCAST};
static const char *kind_name(enum shmrt_ring_kind k)
{
	return k == SHMRT_RING_SPSC ? "spsc" : k == SHMRT_RING_MPSC ? "mpsc" : "broadcast";
}

/* A ring in private memory with one producer and its readers (two for
 * broadcast). */
struct fixture {
	enum shmrt_ring_kind kind;
	void *mem;
	size_t size;
	unsigned n;
	struct shmrt_ring *prod, *cons[2];
};

static void setup(struct fixture *f, enum shmrt_ring_kind kind, size_t cap)
{
	f->kind = kind;
	f->n = kind == SHMRT_RING_BROADCAST ? 2 : 1;
	f->size = shmrt_ring_footprint(kind, cap, f->n);
	CHECK(f->size > cap, "footprint %zu for capacity %zu", f->size, cap);
	f->mem = aligned_alloc(64, f->size);
	CHECK(f->mem, "out of memory");
	memset(f->mem, 0xa5, f->size); /* garbage where the data goes */
	CHECK_OK(shmrt_ring_format(f->mem, f->size, kind, cap, f->n));
	CHECK_OK(shmrt_ring_open(&f->prod, f->mem, f->size, SHMRT_RING_PRODUCER, 0));
	for (unsigned i = 0; i < f->n; i++)
		CHECK_OK(shmrt_ring_open(&f->cons[i], f->mem, f->size, SHMRT_RING_CONSUMER, i));
}

static void teardown(struct fixture *f)
{
	shmrt_ring_close(f->prod);
	for (unsigned i = 0; i < f->n; i++)
		shmrt_ring_close(f->cons[i]);
	free(f->mem);
}

/* Record i's length and bytes: a reference independent of the ring. */
static size_t ref_len(unsigned i)
{
	return (i * 37u + 1) % 701; /* odd and even sizes, 0 included */
}

static unsigned char ref_byte(unsigned i, size_t j)
{
	return (unsigned char)(i * 131u + j * 7u + (j >> 8));
}

static void fill(unsigned char *p, unsigned i, size_t len)
{
	for (size_t j = 0; j < len; j++)
		p[j] = ref_byte(i, j);
}

static void expect_record(struct shmrt_ring *c, unsigned i, const char *what)
{
	static unsigned char buf[CAP];
	size_t len = 0;
	int rc = shmrt_ring_recv(c, buf, sizeof(buf), &len, 0);
	CHECK(rc == 0, "%s: recv of record %u: %d (%s)", what, i, rc, shmrt_last_error());
	CHECK(len == ref_len(i), "%s: record %u has %zu bytes, sent %zu", what, i, len, ref_len(i));
	for (size_t j = 0; j < len; j++)
		CHECK(buf[j] == ref_byte(i, j), "%s: record %u byte %zu differs", what, i, j);
}

/* Bytes a record of len takes in the data: a 16-byte header, padded to 16. */
static size_t slot(size_t len)
{
	return (16 + len + 15) / 16 * 16;
}

/* Send until the ring is full, drain every reader, again: the sizes make
 * records wrap at many offsets; each reader gets every record in order. */
static void test_order_wrap(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	unsigned sent = 0, got = 0;
	while (sent < 3000) {
		unsigned start = sent;
		for (;;) {
			void *buf;
			int rc = shmrt_ring_reserve(f.prod, ref_len(sent), &buf, 0);
			if (rc == -EAGAIN)
				break;
			CHECK(rc == 0, "%s: reserve: %d (%s)", kind_name(kind), rc, shmrt_last_error());
			fill(buf, sent, ref_len(sent));
			CHECK_OK(shmrt_ring_commit(f.prod, buf, ref_len(sent)));
			sent++;
		}
		CHECK(sent > start, "%s: an empty ring refused record %u", kind_name(kind), sent);
		size_t used, cap;
		CHECK_OK(shmrt_ring_occupancy(f.prod, &used, &cap));
		CHECK(cap == CAP && used <= CAP && used + slot(ref_len(sent)) > CAP - 701 - 32,
		      "%s: full ring reports %zu of %zu bytes used", kind_name(kind), used, cap);
		for (unsigned r = 0; r < f.n; r++)
			for (unsigned i = start; i < sent; i++)
				expect_record(f.cons[r], i, kind_name(kind));
		got = sent;
		const void *p;
		size_t len;
		for (unsigned r = 0; r < f.n; r++)
			CHECK(shmrt_ring_peek(f.cons[r], &p, &len, 0) == -EAGAIN, "%s: record after the last",
			      kind_name(kind));
	}
	CHECK(got == sent, "lost records");
	teardown(&f);
}

/* Interleaved one by one: never full, records wrap at every offset. */
static void test_interleaved(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	static unsigned char buf[CAP];
	for (unsigned i = 0; i < 5000; i++) {
		fill(buf, i, ref_len(i));
		CHECK_OK(shmrt_ring_send(f.prod, buf, ref_len(i), 0));
		if (i % 3 == 2) /* keep up to three in flight */
			for (unsigned r = 0; r < f.n; r++)
				for (unsigned k = i - 2; k <= i; k++)
					expect_record(f.cons[r], k, kind_name(kind));
	}
	teardown(&f);
}

static void expect_used(struct fixture *f, size_t want, const char *what)
{
	size_t used, cap;
	CHECK_OK(shmrt_ring_occupancy(f->prod, &used, &cap));
	CHECK(used == want, "%s %s: occupancy %zu, expected %zu", kind_name(f->kind), what, used, want);
	for (unsigned r = 0; r < f->n; r++) {
		CHECK_OK(shmrt_ring_occupancy(f->cons[r], &used, &cap));
		CHECK(used == want, "%s %s: reader %u sees occupancy %zu, expected %zu", kind_name(f->kind), what,
		      r, used, want);
	}
}

static void drain_one(struct fixture *f, size_t want_len)
{
	for (unsigned r = 0; r < f->n; r++) {
		const void *p;
		size_t len;
		CHECK_OK(shmrt_ring_peek(f->cons[r], &p, &len, 0));
		CHECK(len == want_len, "%s: peeked %zu bytes, expected %zu", kind_name(f->kind), len, want_len);
		CHECK_OK(shmrt_ring_release(f->cons[r]));
	}
}

/* The largest record fills the whole ring but for the 16 bytes of the
 * terminator after it (ring layout 3: the header the consumers poll where
 * the next record goes); records that end exactly at the end of the data
 * need no skip; one that does not fit takes one. */
static void test_exact_fit(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	size_t max = shmrt_ring_max_record(f.prod);
	CHECK(max == CAP - 32, "%s: max record %zu", kind_name(kind), max);
	void *buf;
	CHECK_OK(shmrt_ring_reserve(f.prod, max, &buf, 0));
	memset(buf, 1, max);
	CHECK_OK(shmrt_ring_commit(f.prod, buf, max));
	expect_used(&f, CAP - 16, "after the largest record");
	CHECK(shmrt_ring_reserve(f.prod, 0, &buf, 0) == -EAGAIN, "%s: a full ring took more", kind_name(kind));
	drain_one(&f, max);
	expect_used(&f, 0, "drained");

	/* At CAP - 16: a 16-byte record ending exactly at the end, its
	 * terminator at 0. */
	CHECK_OK(shmrt_ring_send(f.prod, NULL, 0, 0));
	drain_one(&f, 0);
	CHECK_OK(shmrt_ring_send(f.prod, "x", 1, 0)); /* 32 bytes at 0 */
	drain_one(&f, 1);
	/* At 32: a record ending exactly at the end of the data. */
	CHECK_OK(shmrt_ring_reserve(f.prod, CAP - 32 - 16, &buf, 0));
	CHECK_OK(shmrt_ring_commit(f.prod, buf, CAP - 32 - 16));
	expect_used(&f, CAP - 32, "after a record up to the end");
	CHECK(shmrt_ring_reserve(f.prod, 1, &buf, 0) == -EAGAIN, "%s: a 32-byte record and its terminator fit "
	      "in 32", kind_name(kind));
	CHECK_OK(shmrt_ring_send(f.prod, NULL, 0, 0)); /* 16 at 0, and its terminator */
	expect_used(&f, CAP - 16, "full");
	CHECK(shmrt_ring_reserve(f.prod, 0, &buf, 0) == -EAGAIN, "%s: a full ring took more", kind_name(kind));
	drain_one(&f, CAP - 32 - 16);
	drain_one(&f, 0);
	expect_used(&f, 0, "drained again");
	CHECK_OK(shmrt_ring_send(f.prod, "x", 1, 0)); /* 32 bytes at 16 */
	drain_one(&f, 1);

	/* Now at offset 48: 4040 bytes (4064 with header and padding) do not
	 * fit before the end, so a skip of 4048 goes first, and the record
	 * needs the whole ring... */
	CHECK(shmrt_ring_reserve(f.prod, 4040, &buf, 0) == -EAGAIN, "%s: 4040 bytes fit beside a skip",
	      kind_name(kind));
	expect_used(&f, CAP - 48, "after a skip");
	/* ...which the readers pass on their own. */
	const void *p;
	size_t len;
	for (unsigned r = 0; r < f.n; r++)
		CHECK(shmrt_ring_peek(f.cons[r], &p, &len, 0) == -EAGAIN, "%s: a skip was returned", kind_name(kind));
	expect_used(&f, 0, "skip passed");
	CHECK_OK(shmrt_ring_reserve(f.prod, 4040, &buf, 0));
	memset(buf, 2, 4040);
	CHECK_OK(shmrt_ring_commit(f.prod, buf, 4040));
	expect_used(&f, slot(4040), "after the wrapped record");
	drain_one(&f, 4040);
	teardown(&f);
}

static void test_limits(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	void *buf;
	const void *p;
	size_t len;
	size_t max = shmrt_ring_max_record(f.prod);
	static unsigned char big[CAP * 2];
	/* Too large: an error at once, whatever the timeout. */
	CHECK(shmrt_ring_reserve(f.prod, max + 1, &buf, SHMRT_WAIT_FOREVER) == -EMSGSIZE, "%s: too large",
	      kind_name(kind));
	CHECK(shmrt_ring_send(f.prod, big, sizeof(big), SHMRT_WAIT_FOREVER) == -EMSGSIZE, "%s: too large",
	      kind_name(kind));
	CHECK(strstr(shmrt_last_error(), "exceeds"), "message: %s", shmrt_last_error());
	CHECK(shmrt_ring_reserve(f.prod, SIZE_MAX, &buf, 0) == -EMSGSIZE, "%s: SIZE_MAX", kind_name(kind));

	/* Empty: -EAGAIN at once, -ETIMEDOUT after the timeout. */
	CHECK(shmrt_ring_peek(f.cons[0], &p, &len, 0) == -EAGAIN, "%s: peek on empty", kind_name(kind));
	int64_t t0 = shmrt_now_ns();
	int rc = shmrt_ring_peek(f.cons[0], &p, &len, 20 * MS);
	int64_t waited = shmrt_now_ns() - t0;
	CHECK(rc == -ETIMEDOUT && waited >= 20 * MS, "%s: peek with 20 ms: %d after %lld ns", kind_name(kind), rc,
	      (long long)waited);
	shmrt_ring_set_spin(f.cons[0], 0);
	CHECK(shmrt_ring_peek(f.cons[0], &p, &len, 5 * MS) == -ETIMEDOUT, "%s: no spin", kind_name(kind));
	shmrt_ring_set_spin(f.cons[0], SHMRT_WAIT_FOREVER);
	CHECK(shmrt_ring_peek(f.cons[0], &p, &len, 5 * MS) == -ETIMEDOUT, "%s: spin only", kind_name(kind));

	/* Full: -EAGAIN, -ETIMEDOUT. */
	CHECK_OK(shmrt_ring_send(f.prod, big, max, 0));
	CHECK(shmrt_ring_send(f.prod, big, 1, 0) == -EAGAIN, "%s: send on full", kind_name(kind));
	CHECK(shmrt_ring_send(f.prod, big, 1, 10 * MS) == -ETIMEDOUT, "%s: send on full, 10 ms", kind_name(kind));

	/* A buffer too small: -EMSGSIZE, the size told, the record kept. */
	for (unsigned r = 0; r < f.n; r++) {
		len = 0;
		CHECK(shmrt_ring_recv(f.cons[r], big, 100, &len, 0) == -EMSGSIZE && len == max,
		      "%s: recv into 100 bytes: len %zu", kind_name(kind), len);
		CHECK_OK(shmrt_ring_recv(f.cons[r], big, sizeof(big), &len, 0));
		CHECK(len == max, "%s: kept record has %zu bytes", kind_name(kind), len);
	}

	/* commit shorter than reserved; peek twice gives the same record. */
	CHECK_OK(shmrt_ring_reserve(f.prod, 1000, &buf, 0));
	memcpy(buf, "hello", 5);
	CHECK_OK(shmrt_ring_commit(f.prod, buf, 5));
	for (unsigned r = 0; r < f.n; r++) {
		const void *p2;
		CHECK_OK(shmrt_ring_peek(f.cons[r], &p, &len, 0));
		CHECK_OK(shmrt_ring_peek(f.cons[r], &p2, &len, 0));
		CHECK(p == p2 && len == 5 && !memcmp(p, "hello", 5), "%s: short commit", kind_name(kind));
		CHECK_OK(shmrt_ring_release(f.cons[r]));
	}
	expect_used(&f, 0, "after a short commit");

	/* Misuse. */
	CHECK(shmrt_ring_release(f.cons[0]) == -EINVAL, "%s: release without peek", kind_name(kind));
	CHECK(shmrt_ring_commit(f.prod, big, 1) == -EINVAL, "%s: commit of a foreign buffer", kind_name(kind));
	CHECK(shmrt_ring_commit(f.prod, (unsigned char *)buf + 16, 1) == -EINVAL, "%s: commit of a stale buffer",
	      kind_name(kind));
	CHECK(shmrt_ring_peek(f.prod, &p, &len, 0) == -EINVAL, "%s: peek on a producer", kind_name(kind));
	CHECK(shmrt_ring_reserve(f.cons[0], 1, &buf, 0) == -EINVAL, "%s: reserve on a consumer", kind_name(kind));
	struct shmrt_ring *extra;
	CHECK(shmrt_ring_open(&extra, f.mem, f.size, SHMRT_RING_CONSUMER, 0) == -EBUSY, "%s: a second reader 0",
	      kind_name(kind));
	CHECK(shmrt_ring_open(&extra, f.mem, f.size, SHMRT_RING_CONSUMER, f.n) == -EINVAL, "%s: reader %u",
	      kind_name(kind), f.n);
	if (kind == SHMRT_RING_MPSC) {
		/* Several reservations in flight, committed out of order:
		 * the consumer waits at the first uncommitted one. */
		void *a, *b;
		CHECK_OK(shmrt_ring_reserve(f.prod, 3, &a, 0));
		CHECK_OK(shmrt_ring_reserve(f.prod, 3, &b, 0));
		memcpy(a, "aaa", 3);
		memcpy(b, "bbb", 3);
		CHECK_OK(shmrt_ring_commit(f.prod, b, 3));
		CHECK(shmrt_ring_peek(f.cons[0], &p, &len, 0) == -EAGAIN, "mpsc: peek past an uncommitted record");
		CHECK(shmrt_ring_commit(f.prod, b, 3) == -EINVAL, "mpsc: commit twice");
		CHECK_OK(shmrt_ring_commit(f.prod, a, 3));
		CHECK_OK(shmrt_ring_peek(f.cons[0], &p, &len, 0));
		CHECK(len == 3 && !memcmp(p, "aaa", 3), "mpsc: first record");
		CHECK_OK(shmrt_ring_release(f.cons[0]));
		CHECK_OK(shmrt_ring_peek(f.cons[0], &p, &len, 0));
		CHECK(len == 3 && !memcmp(p, "bbb", 3), "mpsc: second record");
		CHECK_OK(shmrt_ring_release(f.cons[0]));
		/* Producer handles: several per process. */
		CHECK_OK(shmrt_ring_open(&extra, f.mem, f.size, SHMRT_RING_PRODUCER, 0));
		shmrt_ring_close(extra);
	} else {
		CHECK_OK(shmrt_ring_reserve(f.prod, 3, &buf, 0));
		CHECK(shmrt_ring_reserve(f.prod, 3, &buf, 0) == -EINVAL, "%s: reserve twice", kind_name(kind));
		CHECK_OK(shmrt_ring_commit(f.prod, buf, 0));
		CHECK(shmrt_ring_open(&extra, f.mem, f.size, SHMRT_RING_PRODUCER, 0) == -EBUSY,
		      "%s: a second producer", kind_name(kind));
		drain_one(&f, 0);
	}
	teardown(&f);
}

/* A thread blocked in a call on a ring with no spin (it sleeps at once). */
struct blocked {
	struct shmrt_ring *r;
	bool send; /* send a 100-byte record, else recv one */
	int rc;
	pthread_t thread;
};

static void *blocked_run(void *arg)
{
	struct blocked *b = arg;
	unsigned char buf[CAP];
	size_t len;
	shmrt_ring_set_spin(b->r, 0);
	b->rc = b->send ? shmrt_ring_send(b->r, buf, 100, 5000 * MS) : shmrt_ring_recv(b->r, buf, sizeof(buf), &len, 5000 * MS);
	return NULL;
}

static uint32_t wake_seq(struct ring_waitq *q)
{
	return atomic_load_explicit(&q->seq, memory_order_acquire);
}

/* Starts b, waits until it sleeps on q, runs act (one send or recv that
 * lets b go on), and returns how many wake calls that made (ring_wake_slow
 * bumps seq once per call). */
static uint32_t wakes_for_sleeper(struct blocked *b, struct ring_waitq *q, struct shmrt_ring *act, bool send)
{
	CHECK(pthread_create(&b->thread, NULL, blocked_run, b) == 0, "pthread_create");
	int64_t give_up = shmrt_now_ns() + 2000 * MS;
	while (atomic_load_explicit(&q->sleepers, memory_order_acquire) == 0)
		CHECK(shmrt_now_ns() < give_up, "the blocked thread never slept on the futex");
	uint32_t seq = wake_seq(q);
	unsigned char buf[CAP];
	size_t len;
	if (send)
		CHECK_OK(shmrt_ring_send(act, buf, 100, 0));
	else
		CHECK_OK(shmrt_ring_recv(act, buf, sizeof(buf), &len, 0));
	CHECK(pthread_join(b->thread, NULL) == 0, "pthread_join");
	CHECK(b->rc == 0, "the blocked call returned %d (%s)", b->rc, shmrt_last_error());
	return wake_seq(q) - seq;
}

/* A producer or consumer makes the futex wake call only when the other
 * side sleeps: none for records passed while nobody waits, one when one
 * waiter sleeps. Between its sleep slices (RING_CHECK_NS) a sleeper is
 * briefly not counted; a send landing just then makes no call and the
 * sleeper finds the record at its next poll, so that case is retried. */
static void test_wake_only_sleepers(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	struct ring_shared *sh = f.mem;
	unsigned char buf[CAP];
	size_t len;

	uint32_t data0 = wake_seq(&sh->data_wq), space0 = wake_seq(&sh->space_wq);
	for (unsigned i = 0; i < 1000; i++) {
		CHECK_OK(shmrt_ring_send(f.prod, buf, ref_len(i), 0));
		for (unsigned r = 0; r < f.n; r++)
			CHECK_OK(shmrt_ring_recv(f.cons[r], buf, sizeof(buf), &len, 0));
	}
	CHECK(wake_seq(&sh->data_wq) == data0 && wake_seq(&sh->space_wq) == space0,
	      "%s: wake calls with nobody asleep (data %u, space %u)", kind_name(kind), wake_seq(&sh->data_wq) - data0,
	      wake_seq(&sh->space_wq) - space0);

	/* A consumer asleep on an empty ring: one wake for one record. */
	uint32_t wakes = 0;
	for (int tries = 0; tries < 5 && wakes == 0; tries++) {
		struct blocked b = {.r = f.cons[0]};
		wakes = wakes_for_sleeper(&b, &sh->data_wq, f.prod, true);
		for (unsigned r = 1; r < f.n; r++)
			CHECK_OK(shmrt_ring_recv(f.cons[r], buf, sizeof(buf), &len, 0));
	}
	CHECK(wakes == 1, "%s: %u wake calls for one sleeping consumer", kind_name(kind), wakes);

	/* A producer asleep on a full ring (100-byte records take 128 bytes:
	 * exactly CAP / 128 fit): one wake when the last reader frees one. */
	wakes = 0;
	for (int tries = 0; tries < 5 && wakes == 0; tries++) {
		unsigned queued = 0;
		while (shmrt_ring_send(f.prod, buf, 100, 0) == 0)
			queued++;
		CHECK(queued > 0 && queued <= CAP / 128, "%s: %u records filled the ring", kind_name(kind), queued);
		for (unsigned r = 1; r < f.n; r++) /* the other readers are ahead: no one sleeps yet */
			CHECK_OK(shmrt_ring_recv(f.cons[r], buf, sizeof(buf), &len, 0));
		struct blocked b = {.r = f.prod, .send = true};
		wakes = wakes_for_sleeper(&b, &sh->space_wq, f.cons[0], false);
		for (unsigned r = 0; r < f.n; r++)
			while (shmrt_ring_recv(f.cons[r], buf, sizeof(buf), &len, 0) == 0)
				;
	}
	CHECK(wakes == 1, "%s: %u wake calls for one sleeping producer", kind_name(kind), wakes);
	teardown(&f);
}

/* Broadcast: the writer waits for the slowest reader. */
static void test_slowest_reader(void)
{
	struct fixture f;
	setup(&f, SHMRT_RING_BROADCAST, CAP);
	static unsigned char buf[CAP];
	size_t len;
	/* 2032 bytes each: two and the 16-byte terminator leave 16 free. */
	CHECK_OK(shmrt_ring_send(f.prod, buf, 2004, 0));
	CHECK_OK(shmrt_ring_recv(f.cons[0], buf, sizeof(buf), &len, 0));
	CHECK_OK(shmrt_ring_send(f.prod, buf, 2004, 0));
	CHECK(shmrt_ring_send(f.prod, buf, 16, 0) == -EAGAIN, "broadcast: reader 1 was overrun");
	CHECK_OK(shmrt_ring_recv(f.cons[1], buf, sizeof(buf), &len, 0));
	CHECK_OK(shmrt_ring_send(f.prod, buf, 16, 0));
	teardown(&f);
}

/* Peers leaving: a producer that closed leaves its records to drain, then
 * -EPIPE; a consumer that opened before any producer waits; a producer
 * blocked on a reader that closed gets -EPIPE. */
static void test_peers_leave(enum shmrt_ring_kind kind)
{
	unsigned n = kind == SHMRT_RING_BROADCAST ? 2 : 1;
	size_t size = shmrt_ring_footprint(kind, CAP, n);
	void *mem = aligned_alloc(64, size);
	CHECK(mem, "out of memory");
	CHECK_OK(shmrt_ring_format(mem, size, kind, CAP, n));
	struct shmrt_ring *c[2], *p;
	for (unsigned r = 0; r < n; r++)
		CHECK_OK(shmrt_ring_open(&c[r], mem, size, SHMRT_RING_CONSUMER, r));
	const void *buf;
	size_t len;
	/* Long enough for a liveness check: still only a timeout. */
	CHECK(shmrt_ring_peek(c[0], &buf, &len, 120 * MS) == -ETIMEDOUT, "%s: no producer yet", kind_name(kind));
	CHECK_OK(shmrt_ring_open(&p, mem, size, SHMRT_RING_PRODUCER, 0));
	CHECK_OK(shmrt_ring_send(p, "last", 4, 0));
	shmrt_ring_close(p);
	for (unsigned r = 0; r < n; r++) {
		CHECK_OK(shmrt_ring_peek(c[r], &buf, &len, SHMRT_WAIT_FOREVER));
		CHECK(len == 4 && !memcmp(buf, "last", 4), "%s: the last record", kind_name(kind));
		CHECK_OK(shmrt_ring_release(c[r]));
		CHECK(shmrt_ring_peek(c[r], &buf, &len, SHMRT_WAIT_FOREVER) == -EPIPE, "%s: closed producer",
		      kind_name(kind));
	}
	/* Polling with timeout 0 learns it too (rate-limited). */
	int rc;
	int64_t t0 = shmrt_now_ns();
	while ((rc = shmrt_ring_peek(c[0], &buf, &len, 0)) == -EAGAIN && shmrt_now_ns() - t0 < 1000 * MS)
		;
	CHECK(rc == -EPIPE, "%s: polling a ring without producers: %d", kind_name(kind), rc);

	CHECK_OK(shmrt_ring_open(&p, mem, size, SHMRT_RING_PRODUCER, 0));
	static unsigned char big[CAP];
	while ((rc = shmrt_ring_send(p, big, 100, 0)) == 0)
		;
	CHECK(rc == -EAGAIN, "%s: filling: %d", kind_name(kind), rc);
	shmrt_ring_close(c[0]);
	CHECK(shmrt_ring_send(p, big, 100, SHMRT_WAIT_FOREVER) == -EPIPE, "%s: closed consumer", kind_name(kind));
	/* A new consumer takes over where the last one stopped. */
	CHECK_OK(shmrt_ring_open(&c[0], mem, size, SHMRT_RING_CONSUMER, 0));
	CHECK_OK(shmrt_ring_peek(c[0], &buf, &len, 0));
	CHECK(len == 100, "%s: record left for the next consumer", kind_name(kind));
	for (unsigned r = 0; r < n; r++)
		shmrt_ring_close(c[r]);
	shmrt_ring_close(p);
	free(mem);
}

/* Shared memory that lies: every bad value is -EBADMSG, never a crash. */
static void test_corrupt(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	struct ring_shared *sh = f.mem;
	unsigned char *data = (unsigned char *)f.mem + f.size - CAP;
	struct ring_rec *rec = (struct ring_rec *)data;
	const void *p;
	size_t len;
	void *buf;
	struct {
		_Atomic uint32_t *field;
		uint32_t value;
	} bad[] = {
		{&rec->size, 0},          {&rec->size, 8},         {&rec->size, 4096 + 16},
		{&rec->size, UINT32_MAX}, {&rec->size, 48 + 16},   {&rec->len, 33},
		{&rec->len, UINT32_MAX},  {&rec->state, 0},        {&rec->state, REC_SKIP},
		{&rec->state, 12345},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_OK(shmrt_ring_send(f.prod, "0123456789abcdef", 16, 0)); /* a 32-byte record */
		uint32_t keep = atomic_load(bad[i].field);
		atomic_store(bad[i].field, bad[i].value);
		for (unsigned r = 0; r < f.n; r++) {
			int rc = shmrt_ring_peek(f.cons[r], &p, &len, 0);
			CHECK(rc == -EBADMSG, "%s: header field %zu = %u: peek returned %d", kind_name(kind), i,
			      bad[i].value, rc);
		}
		atomic_store(bad[i].field, keep);
		drain_one(&f, 16);
		/* Back to the start of the data for the next case. */
		static unsigned char pad[CAP];
		CHECK_OK(shmrt_ring_send(f.prod, pad, CAP - 32 - 16, 0));
		drain_one(&f, CAP - 32 - 16);
	}
	/* head beyond what the readers could have missed, or misaligned. */
	uint64_t head = atomic_load(&sh->head);
	/* (It may lag a reader by one record, not by more than a ring.) */
	uint64_t heads[] = {head + CAP + 16, head + 8, head - CAP - 16};
	for (size_t i = 0; i < 3; i++) {
		atomic_store(&sh->head, heads[i]);
		int rc = shmrt_ring_peek(f.cons[0], &p, &len, 0);
		CHECK(rc == -EBADMSG, "%s: head %+lld: peek returned %d", kind_name(kind),
		      (long long)(heads[i] - head), rc);
	}
	atomic_store(&sh->head, head);
	/* A reader position beyond head or too far behind: the producer. */
	uint64_t pos = atomic_load(&sh->readers[0].pos);
	uint64_t poss[] = {pos + 16, pos - CAP - 16};
	for (size_t i = 0; i < 2; i++) {
		atomic_store(&sh->readers[0].pos, poss[i]);
		int rc = shmrt_ring_reserve(f.prod, CAP - 32, &buf, 0);
		CHECK(rc == -EBADMSG, "%s: reader position %+lld: reserve returned %d", kind_name(kind),
		      (long long)(poss[i] - pos), rc);
	}
	atomic_store(&sh->readers[0].pos, pos);
	teardown(&f);
}

/* A consumer whose position holds a lie (a record's size rewritten for
 * good) goes on from head after ring_resync: it gets what the producer
 * writes next, in order, and the producer is not held up by the record
 * skipped (the client's response ring, test_trust fuzz). */
static void test_resync(enum shmrt_ring_kind kind)
{
	struct fixture f;
	setup(&f, kind, CAP);
	struct ring_rec *rec = (struct ring_rec *)((unsigned char *)f.mem + f.size - CAP);
	static unsigned char buf[CAP];
	for (unsigned i = 0; i < 3; i++) {
		fill(buf, i, ref_len(i));
		CHECK_OK(shmrt_ring_send(f.prod, buf, ref_len(i), 0));
	}
	atomic_store(&rec->size, 8); /* record 0 */
	const void *p;
	size_t len;
	for (unsigned r = 0; r < f.n; r++) {
		CHECK(shmrt_ring_peek(f.cons[r], &p, &len, 0) == -EBADMSG, "%s: the lie not seen", kind_name(kind));
		int skipped = ring_resync(f.cons[r]);
		CHECK(skipped > 0 && skipped <= (int)(slot(ref_len(0)) + slot(ref_len(1)) + slot(ref_len(2))),
		      "%s: resync skipped %d bytes", kind_name(kind), skipped);
	}
	/* then more than a ring's worth: the skipped bytes were given back */
	for (unsigned i = 3; i < 40; i++) {
		fill(buf, i, ref_len(i));
		CHECK_OK(shmrt_ring_send(f.prod, buf, ref_len(i), 0));
		for (unsigned r = 0; r < f.n; r++) {
			/* head may lag a record (ring_layout.h): record 2 first */
			if (i == 3 && shmrt_ring_peek(f.cons[r], &p, &len, 0) == 0 && len == ref_len(2))
				expect_record(f.cons[r], 2, "the record head lagged");
			expect_record(f.cons[r], i, "after the resync");
		}
	}
	teardown(&f);
}

/* ring_repair: a consumer writes back the header it opened and its
 * reader's word, ring_resync an SPSC ring's head; a producer can open the
 * ring again and reach it. */
static void test_repair(void)
{
	struct fixture f;
	setup(&f, SHMRT_RING_SPSC, CAP);
	struct ring_shared *sh = f.mem;
	CHECK(ring_repair(f.cons[0]) == 0, "repair of a sound ring");
	shmrt_ring_close(f.prod);
	sh->magic ^= 0x100;
	sh->capacity = 1;
	atomic_store(&sh->readers[0].pos, 48);
	CHECK(shmrt_ring_open(&f.prod, f.mem, f.size, SHMRT_RING_PRODUCER, 0) == -EBADMSG, "open of a bad header");
	CHECK(ring_repair(f.cons[0]) == 1 && strstr(shmrt_last_error(), "magic"), "repair: %s", shmrt_last_error());
	CHECK(ring_repair(f.cons[0]) == 0, "a second repair");
	/* head misaligned: refused (its record is not read), written back by
	 * the consumer's resync, and by its repair */
	atomic_store(&sh->head, 1001);
	CHECK(shmrt_ring_open(&f.prod, f.mem, f.size, SHMRT_RING_PRODUCER, 0) == -EBADMSG, "open at head 1001");
	CHECK(ring_resync(f.cons[0]) == -EBADMSG && atomic_load(&sh->head) == 0, "resync of head 1001: %llu",
	      (unsigned long long)atomic_load(&sh->head));
	atomic_store(&sh->head, 1001);
	CHECK(ring_repair(f.cons[0]) == 1 && atomic_load(&sh->head) == 0, "repair of head 1001");
	CHECK_OK(shmrt_ring_open(&f.prod, f.mem, f.size, SHMRT_RING_PRODUCER, 0));
	/* a reader's position misaligned: a consumer cannot open there */
	struct shmrt_ring *other;
	uint64_t pos = atomic_load(&sh->readers[0].pos);
	shmrt_ring_close(f.cons[0]);
	atomic_store(&sh->readers[0].pos, pos + 8);
	CHECK(shmrt_ring_open(&other, f.mem, f.size, SHMRT_RING_CONSUMER, 0) == -EBADMSG,
	      "a consumer opened at a misaligned position");
	atomic_store(&sh->readers[0].pos, pos);
	CHECK_OK(shmrt_ring_open(&f.cons[0], f.mem, f.size, SHMRT_RING_CONSUMER, 0));
	static unsigned char buf[CAP];
	for (unsigned i = 0; i < 40; i++) { /* more than a ring: the position was right */
		fill(buf, i, ref_len(i));
		CHECK_OK(shmrt_ring_send(f.prod, buf, ref_len(i), 0));
		expect_record(f.cons[0], i, "after the repair");
	}
	teardown(&f);
}

/* open validates the header against the region. */
static void test_bad_header(void)
{
	size_t size = shmrt_ring_footprint(SHMRT_RING_BROADCAST, CAP, 3);
	unsigned char *mem = aligned_alloc(64, size);
	CHECK(mem, "out of memory");
	struct ring_shared *sh = (struct ring_shared *)mem;
	struct shmrt_ring *r;
	for (int c = 0; c < 8; c++) {
		CHECK_OK(shmrt_ring_format(mem, size, SHMRT_RING_BROADCAST, CAP, 3));
		size_t region = size;
		switch (c) {
		case 0: sh->magic ^= 1; break;
		case 1: sh->version = 99; break;
		case 2: sh->kind = 7; break;
		case 3: sh->capacity = CAP + 64; break;
		case 4: sh->capacity = (uint64_t)1 << 40; break;
		case 5: sh->n_readers = 0; break;
		case 6: sh->n_readers = 4; break; /* needs one more line than the region */
		case 7: region = size - 1; break;
		}
		int rc = shmrt_ring_open(&r, mem, region, SHMRT_RING_PRODUCER, 0);
		CHECK(rc == -EBADMSG, "bad header case %d: open returned %d", c, rc);
	}
	CHECK(shmrt_ring_open(&r, mem, 100, SHMRT_RING_PRODUCER, 0) == -EBADMSG, "tiny region");
	CHECK(shmrt_ring_open(&r, mem + 8, size - 8, SHMRT_RING_PRODUCER, 0) == -EINVAL, "misaligned");
	CHECK_OK(shmrt_ring_format(mem, size, SHMRT_RING_BROADCAST, CAP, 3));
	CHECK(shmrt_ring_open(&r, mem, size, 0, 0) == -EINVAL, "bad role");
	free(mem);

	/* Arguments of footprint and format. */
	CHECK(shmrt_ring_footprint(SHMRT_RING_SPSC, 3000, 1) == 0, "capacity not a power of two");
	CHECK(shmrt_ring_footprint(SHMRT_RING_SPSC, 2048, 1) == 0, "capacity too small");
	CHECK(shmrt_ring_footprint(SHMRT_RING_SPSC, CAP, 2) == 0, "two readers on spsc");
	CHECK(shmrt_ring_footprint(SHMRT_RING_BROADCAST, CAP, SHMRT_RING_MAX_READERS + 1) == 0, "too many readers");
	CHECK(shmrt_ring_footprint(4, CAP, 1) == 0, "bad kind");
	size = shmrt_ring_footprint(SHMRT_RING_MPSC, CAP, 1);
	mem = aligned_alloc(64, size);
	CHECK(mem, "out of memory");
	CHECK(shmrt_ring_format(mem, size - 1, SHMRT_RING_MPSC, CAP, 1) == -EINVAL, "format into too little");
	CHECK(shmrt_ring_format(mem, size, SHMRT_RING_MPSC, 5000, 1) == -EINVAL, "format a bad capacity");
	free(mem);
}

int main(void)
{
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		test_order_wrap(kinds[k]);
		test_interleaved(kinds[k]);
		test_exact_fit(kinds[k]);
		test_limits(kinds[k]);
		test_peers_leave(kinds[k]);
		test_corrupt(kinds[k]);
		test_resync(kinds[k]);
		test_wake_only_sleepers(kinds[k]);
	}
	test_slowest_reader();
	test_repair();
	test_bad_header();
	return 0;
}
