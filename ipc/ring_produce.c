/* Writing records: reserve/commit and send.
 *
 * SPSC and broadcast rings have one producer, which owns head: it writes a
 * record where head points and publishes it by storing the new head.
 *
 * MPSC producers claim room under a short lock on head and publish the
 * claim at once, the header saying REC_RESERVED; commit flips the header to
 * REC_COMMITTED, so records are committed in any order and the consumer
 * waits at an uncommitted one. Why a lock rather than a bare CAS on head:
 * after a CAS, a header written a moment later would sit below a head the
 * consumer can already see, over stale bytes of an older record that may
 * look like a header. Claiming and writing the header inside one critical
 * section of a few stores keeps "everything below head has a valid header"
 * true without clearing the data after use (Agrona's many-to-one ring
 * zeroes every byte it consumes instead; Linux's BPF ring buffer reserves
 * under a spinlock as here, Documentation/bpf/ringbuf.rst). The lock word
 * names the holder's process, so a holder killed inside it is detected and
 * the lock taken over; what the dead holder wrote is not yet published. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "fail.h"
#include "clock.h"
#include "ring_layout.h"
#include "spin.h"

/* Writes the header at pos; state last, with order: relaxed for the
 * terminator (REC_EMPTY, published by the state store of the record
 * before it), seq_cst for what a consumer polls: a release (the payload,
 * the other fields and the terminator after the record are written before
 * a consumer sees the state) and the publishing half of ring_wake's
 * handshake (the consumers sleep on the state word, not on head). */
static void write_header(struct shmrt_ring *r, uint64_t pos, uint32_t state, uint64_t size, uint64_t len)
{
	struct ring_rec *rec = ring_rec_at(r, pos);
	atomic_store_explicit(&rec->size, (uint32_t)size, memory_order_relaxed);
	atomic_store_explicit(&rec->len, (uint32_t)len, memory_order_relaxed);
	atomic_store_explicit(&rec->pid, r->pid, memory_order_relaxed);
	atomic_store_explicit(&rec->state, state, state == REC_EMPTY ? memory_order_relaxed : memory_order_seq_cst);
}

/* The terminator after a record ending at pos (ring_layout.h): written
 * before the record is published, in room the caller checked (the record's
 * size + RING_TERM), so that the consumers never read an older lap's bytes
 * as a header. For a small record it is in a line the record's payload
 * already dirtied. */
static void write_terminator(struct shmrt_ring *r, uint64_t pos)
{
	write_header(r, pos, REC_EMPTY, 0, 0);
}

/* --- SPSC and broadcast --------------------------------------------------- */

/* Whether n bytes are free at r->head. r->limit caches the slowest
 * reader's position + capacity, so the readers' lines are read only when
 * the cached room runs out. */
static int solo_room(struct shmrt_ring *r, uint64_t n)
{
	if (r->limit - r->head >= n)
		return 0;
	uint64_t lag = 0;
	for (unsigned i = 0; i < r->n_readers; i++) {
		/* seq_cst: acquire (the reader is done with what it passed)
		 * and our half of the handshake in ring_wake. */
		uint64_t pos = atomic_load_explicit(&r->sh->readers[i].pos, memory_order_seq_cst);
		if (r->head - pos > r->cap)
			return ring_corrupt(r, "reader position", pos);
		if (r->head - pos > lag)
			lag = r->head - pos;
	}
	r->limit = r->head - lag + r->cap;
	if (r->limit - r->head >= n)
		return 0;
	r->wait_need = n; /* for ring_consumers_gone */
	return -EAGAIN;
}

/* After the record's header is published (write_header): head, which no
 * consumer polls (release: for occupancy and stat readers, and a reopened
 * producer; a plain store to a line only we write, so it costs no miss on
 * the consumer's path), and the wake of sleeping consumers (whose half of
 * the handshake is their seq_cst load of the state word). */
static void solo_publish(struct shmrt_ring *r)
{
	atomic_store_explicit(&r->sh->head, r->head, memory_order_release);
	ring_wake(&r->sh->data_wq);
}

static int solo_poll(struct shmrt_ring *r, void *arg)
{
	uint64_t need = *(const uint64_t *)arg;
	uint64_t end = r->cap - (r->head & (r->cap - 1));
	if (need > end) {
		/* Pad to the end now, so that the readers can pass it and
		 * free the room at the start that we wait for. */
		int rc = solo_room(r, end + RING_TERM);
		if (rc < 0)
			return rc;
		write_terminator(r, r->head + end);
		uint64_t at = r->head;
		r->head += end;
		write_header(r, at, REC_SKIP, end, 0);
		solo_publish(r);
	}
	int rc = solo_room(r, need + RING_TERM);
	if (rc < 0)
		return rc;
	r->pending = (unsigned char *)(ring_rec_at(r, r->head) + 1);
	r->pending_room = need - sizeof(struct ring_rec);
	return 0;
}

static int solo_commit(struct shmrt_ring *r, void *buf, size_t len)
{
	if (!r->pending || buf != r->pending)
		return shmrt_fail(EINVAL, "ring: commit of a buffer that reserve did not return");
	if (len > r->pending_room)
		return shmrt_fail(EINVAL, "ring: commit of %zu bytes, %llu reserved", len,
				  (unsigned long long)r->pending_room);
	uint64_t size = ring_rec_size(len);
	write_terminator(r, r->head + size);
	uint64_t at = r->head;
	r->head += size;
	r->pending = NULL;
	write_header(r, at, REC_COMMITTED, size, len);
	solo_publish(r);
	return 0;
}

/* --- MPSC ------------------------------------------------------------------ */

/* A hold lasts a few stores: a waiter spins, then yields for this long
 * (a holder preempted), then sleeps in naps that grow to 1 ms (a holder
 * stopped, or a peer that wrote the word): it costs next to no CPU. */
#define LOCK_YIELD_NS (1000 * 1000LL)
/* How long a caller with a shorter timeout (0 included) still waits. */
#define LOCK_MIN_WAIT_NS (10 * 1000 * 1000LL)

static void lock_nap(int64_t *nap_ns)
{
	struct timespec ts = {0, (long)*nap_ns};
	nanosleep(&ts, NULL);
	if (*nap_ns < 1000000)
		*nap_ns *= 2;
}

/* Takes the claim lock: 0, or -EBUSY when the deadline passes with a live
 * process holding it (named in the message). */
static int mpsc_lock(struct shmrt_ring *r, int64_t deadline)
{
	_Atomic uint64_t *lock = &r->sh->lock;
	int64_t start = 0, next_check = 0, nap_ns = 10000;
	for (unsigned spins = 0;; spins++) {
		uint64_t cur = atomic_load_explicit(lock, memory_order_relaxed);
		/* acquire: pairs with mpsc_unlock's release, so we see head
		 * and the headers the previous holder wrote. */
		if (cur == 0 && atomic_compare_exchange_weak_explicit(lock, &cur, r->id, memory_order_acquire,
								      memory_order_relaxed))
			return 0;
		if (spins < 64) {
			shmrt_cpu_relax();
			continue;
		}
		int64_t now = shmrt_now_ns();
		if (start == 0) {
			start = now;
			next_check = now + RING_CHECK_NS;
		}
		if (now - start < LOCK_YIELD_NS)
			sched_yield();
		else
			lock_nap(&nap_ns);
		/* Now and then: is the holder's process still there? A dead
		 * holder's stores are visible to us: its death went through
		 * the kernel. */
		if (now >= next_check) {
			next_check = now + RING_CHECK_NS;
			if (cur != 0 && cur != r->id && !ring_peer_alive(cur))
				atomic_compare_exchange_strong_explicit(lock, &cur, 0, memory_order_relaxed,
									memory_order_relaxed);
		}
		if (now >= deadline && now - start >= LOCK_MIN_WAIT_NS)
			return shmrt_fail(EBUSY, "ring: the claim lock is held by process %d, alive, for %.1f s",
					  (int)(cur & RING_PID_MASK), (double)(now - start) * 1e-9);
	}
}

static void mpsc_unlock(struct shmrt_ring *r)
{
	atomic_store_explicit(&r->sh->lock, 0, memory_order_release);
}

struct mpsc_claim {
	uint64_t need;
	void *buf;
	int64_t deadline; /* of the caller's wait, CLOCK_MONOTONIC */
};

/* Under the lock: claim c->need bytes at head (after a skip to the end if
 * they do not fit before it), publishing the reserved header. */
static int mpsc_claim_locked(struct shmrt_ring *r, struct mpsc_claim *c)
{
	struct ring_shared *sh = r->sh;
	/* relaxed: the lock's acquire ordered us after the last holder. */
	uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
	/* seq_cst: acquire, and our half of the handshake in ring_wake. */
	uint64_t tail = atomic_load_explicit(&sh->readers[0].pos, memory_order_seq_cst);
	if (head - tail > r->cap || head % RING_ALIGN)
		return ring_corrupt(r, "head", head);
	uint64_t room = r->cap - (head - tail);
	uint64_t end = r->cap - (head & (r->cap - 1));
	bool skipped = false;
	/* Room for each header written includes the terminator after it,
	 * written first (a REC_RESERVED header is published too: a consumer
	 * that skips it after its owner died reads the terminator). */
	if (c->need > end) {
		if (room < end + RING_TERM)
			return -EAGAIN;
		write_terminator(r, head + end);
		write_header(r, head, REC_SKIP, end, 0);
		head += end;
		room -= end;
		skipped = true;
	}
	int rc = -EAGAIN;
	if (room >= c->need + RING_TERM) {
		write_terminator(r, head + c->need);
		write_header(r, head, REC_RESERVED, c->need, 0);
		c->buf = ring_rec_at(r, head) + 1;
		head += c->need;
		rc = 0;
	}
	if (skipped || rc == 0) {
		/* seq_cst: a release (headers below head are written), and
		 * the publishing half of ring_wake's handshake (a skip is
		 * something a sleeping consumer can act on). */
		atomic_store_explicit(&sh->head, head, memory_order_seq_cst);
		if (skipped)
			ring_wake(&sh->data_wq);
	}
	return rc;
}

static int mpsc_poll(struct shmrt_ring *r, void *arg)
{
	struct mpsc_claim *c = arg;
	/* A look without the lock first, so that waiting producers do not
	 * take turns at it for nothing: is there room for the skip, or the
	 * record? (seq_cst: the handshake in ring_wake, as in the claim.) */
	uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->sh->readers[0].pos, memory_order_seq_cst);
	uint64_t end = r->cap - (head & (r->cap - 1));
	uint64_t first = (c->need > end ? end : c->need) + RING_TERM;
	if (head - tail <= r->cap && r->cap - (head - tail) < first)
		return -EAGAIN;
	int rc = mpsc_lock(r, c->deadline);
	if (rc)
		return rc;
	rc = mpsc_claim_locked(r, c);
	mpsc_unlock(r);
	return rc;
}

static int mpsc_commit(struct shmrt_ring *r, void *buf, size_t len)
{
	uintptr_t p = (uintptr_t)buf, d = (uintptr_t)r->data;
	if (p < d + sizeof(struct ring_rec) || p > d + r->cap || (p - d) % RING_ALIGN)
		return shmrt_fail(EINVAL, "ring: commit of a buffer outside the ring");
	struct ring_rec *rec = (struct ring_rec *)buf - 1;
	uint32_t state = atomic_load_explicit(&rec->state, memory_order_relaxed);
	uint32_t size = atomic_load_explicit(&rec->size, memory_order_relaxed);
	int32_t pid = atomic_load_explicit(&rec->pid, memory_order_relaxed);
	if (state != REC_RESERVED || pid != r->pid)
		return shmrt_fail(EINVAL, "ring: commit of a buffer that reserve did not return");
	if (size < sizeof(struct ring_rec) || size > d + r->cap - (p - sizeof(*rec)) ||
	    len > size - sizeof(struct ring_rec))
		return shmrt_fail(EINVAL, "ring: commit of %zu bytes into a %u-byte record", len, size);
	atomic_store_explicit(&rec->len, (uint32_t)len, memory_order_relaxed);
	/* seq_cst: a release (payload and len are written before a consumer
	 * sees COMMITTED), and the publishing half of ring_wake's handshake. */
	atomic_store_explicit(&rec->state, REC_COMMITTED, memory_order_seq_cst);
	ring_wake(&r->sh->data_wq);
	return 0;
}

/* --- API ------------------------------------------------------------------- */

int shmrt_ring_reserve(struct shmrt_ring *r, size_t len, void **buf, int64_t timeout_ns)
{
	if (r->role != SHMRT_RING_PRODUCER)
		return shmrt_fail(EINVAL, "ring: reserve on a consumer handle");
	if (len > shmrt_ring_max_record(r))
		return shmrt_fail(EMSGSIZE, "ring: a %zu-byte record exceeds the largest this ring holds, %zu",
				  len, shmrt_ring_max_record(r));
	uint64_t need = ring_rec_size(len);
	int rc;
	if (r->kind == SHMRT_RING_MPSC) {
		struct mpsc_claim c = {.need = need,
				       .deadline = timeout_ns < 0 ? INT64_MAX : shmrt_now_ns() + timeout_ns};
		rc = mpsc_poll(r, &c);
		if (rc == -EAGAIN)
			rc = ring_wait(r, &r->sh->space_wq, mpsc_poll, &c, ring_consumers_gone, timeout_ns);
		*buf = c.buf;
		return rc;
	}
	if (r->pending)
		return shmrt_fail(EINVAL, "ring: reserve again before commit");
	rc = solo_poll(r, &need);
	if (rc == -EAGAIN)
		rc = ring_wait(r, &r->sh->space_wq, solo_poll, &need, ring_consumers_gone, timeout_ns);
	*buf = r->pending;
	return rc;
}

int shmrt_ring_commit(struct shmrt_ring *r, void *buf, size_t len)
{
	if (r->role != SHMRT_RING_PRODUCER)
		return shmrt_fail(EINVAL, "ring: commit on a consumer handle");
	return r->kind == SHMRT_RING_MPSC ? mpsc_commit(r, buf, len) : solo_commit(r, buf, len);
}

int shmrt_ring_send(struct shmrt_ring *r, const void *data, size_t len, int64_t timeout_ns)
{
	void *buf;
	int rc = shmrt_ring_reserve(r, len, &buf, timeout_ns);
	if (rc < 0)
		return rc;
	if (len)
		memcpy(buf, data, len);
	return shmrt_ring_commit(r, buf, len);
}
