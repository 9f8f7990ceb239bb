/* Reading records: peek/release and recv. Each consumer (each broadcast
 * reader) owns its position; it reads head only when it has used up the
 * records below the head it saw last. Everything read from the shared
 * memory is checked before use: a bad value is -EBADMSG. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fail.h"
#include "ring_layout.h"

struct peek_out {
	const void **buf;
	size_t *len;
};

/* seq_cst: a release (we are done with the record, the producer may
 * write over it) and the publishing half of the handshake in ring_wake. */
static void advance(struct shmrt_ring *r, uint32_t size)
{
	r->tail += size;
	atomic_store_explicit(&r->sh->readers[r->reader].pos, r->tail, memory_order_seq_cst);
	ring_wake(&r->sh->space_wq);
}

/* Polls the header at our position (ring_layout.h: not head, so that a
 * small record is one cache line moving, not two). It is REC_EMPTY, the
 * terminator, until the producer publishes a record there. */
static int consumer_poll(struct shmrt_ring *r, void *arg)
{
	struct peek_out *out = arg;
	r->wait_pid = 0;
	for (;;) {
		/* MPSC keeps reading head first: there a header is written
		 * inside the claim lock before head moves past it, and a
		 * holder killed inside the lock leaves headers above head that
		 * the next holder writes again (ring_produce.c); only what is
		 * below head is published. Its records are not latency-bound
		 * (the submit ring); SPSC and broadcast, whose one producer
		 * publishes by the header's state, skip this line. */
		if (r->kind == SHMRT_RING_MPSC && r->head_seen == r->tail) {
			/* seq_cst: an acquire (the headers below head are
			 * written), and our half of ring_wake's handshake. */
			uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_seq_cst);
			if (head == r->tail)
				return -EAGAIN;
			if (head - r->tail > r->cap || head % RING_ALIGN)
				return ring_corrupt(r, "head", head);
			r->head_seen = head;
		}
		uint64_t off = r->tail & (r->cap - 1);
		struct ring_rec *rec = (struct ring_rec *)(r->data + off);
		/* seq_cst: an acquire (a published record's payload, fields
		 * and the terminator after it are written), and our half of
		 * ring_wake's handshake when we sleep. */
		uint32_t state = atomic_load_explicit(&rec->state, memory_order_seq_cst);
		if (state == REC_EMPTY && r->kind != SHMRT_RING_MPSC) {
			/* While waiting, ask for the line after the header's
			 * too: a record that spans two lines (a 64-byte payload
			 * does, after its 16-byte header) then moves both at
			 * about once instead of the second only after the
			 * header was seen. A hint: it reads nothing, and the
			 * bytes are read again after the header's acquire.
			 * Measured: 64 B p50 1.53-1.67x the floor with it,
			 * 1.67-1.79x without (bench/RESULTS.md). */
			uint64_t next_line = (off | (RING_LINE - 1)) + 1;
			if (next_line < r->cap)
				__builtin_prefetch(r->data + next_line, 0, 3);
			return -EAGAIN;
		}
		uint32_t size = atomic_load_explicit(&rec->size, memory_order_relaxed);
		if (r->kind == SHMRT_RING_MPSC && size > r->head_seen - r->tail)
			return ring_corrupt(r, "record size", size);
		/* The record lies in the data, and leaves room for the header
		 * after it, which an honest producer wrote (the terminator, or
		 * a newer record) before publishing this one: one that does
		 * not hold a header's state is a lie about size (what head
		 * caught before version 3). It is in the line the payload's
		 * end is in, or the next. */
		if (size < sizeof(*rec) || size % RING_ALIGN || size > r->cap - off)
			return ring_corrupt(r, "record size", size);
		uint32_t next = atomic_load_explicit(&ring_rec_at(r, r->tail + size)->state, memory_order_relaxed);
		if (next != REC_EMPTY && next != REC_COMMITTED && next != REC_SKIP && next != REC_RESERVED)
			return ring_corrupt(r, "record size", size);
		switch (state) {
		case REC_COMMITTED: {
			uint32_t len = atomic_load_explicit(&rec->len, memory_order_relaxed);
			if (len > size - sizeof(*rec))
				return ring_corrupt(r, "record length", len);
			r->cur_size = size;
			*out->buf = rec + 1;
			*out->len = len;
			return 0;
		}
		case REC_SKIP:
			if (size != r->cap - off)
				return ring_corrupt(r, "skip size", size);
			advance(r, size);
			continue;
		case REC_RESERVED:
			if (r->kind == SHMRT_RING_MPSC) {
				r->wait_pid = atomic_load_explicit(&rec->pid, memory_order_relaxed);
				r->wait_size = size;
				return -EAGAIN;
			}
			/* Only MPSC publishes reserved records. */
			return ring_corrupt(r, "record state", state);
		default:
			return ring_corrupt(r, "record state", state);
		}
	}
}

/* head, read on the consumer's slow paths only (a non-blocking peek that
 * found nothing, and ring_producers_gone while waiting): misaligned, or
 * further than a ring from our position either way (it may lag us by one
 * SPSC/broadcast record, ring_layout.h), it is corrupt. */
int ring_check_head(struct shmrt_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	if (head % RING_ALIGN || (head - r->tail > r->cap && r->tail - head > r->cap))
		return ring_corrupt(r, "head", head);
	return 0;
}

int ring_check_head_spsc(struct shmrt_ring *r)
{
	int rc = ring_check_head(r);
	if (rc && r->kind == SHMRT_RING_SPSC)
		/* ours to write back, at our position: a live producer stores
		 * its own at its next record (and no consumer reads head on its
		 * way), a new one opens there */
		atomic_store_explicit(&r->sh->head, r->tail, memory_order_release);
	return rc;
}

int ring_resync(struct shmrt_ring *r)
{
	int rc = ring_check_head_spsc(r);
	if (rc)
		return rc;
	uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	/* head may lag us by one record (SPSC, broadcast): then none is skipped */
	uint64_t skip = head - r->tail <= r->cap ? head - r->tail : 0;
	r->cur_size = 0;
	r->dead_size = 0;
	r->head_seen = r->tail + skip;
	advance(r, (uint32_t)skip); /* publishes our position again too */
	return (int)(skip < INT_MAX ? skip : INT_MAX);
}

int shmrt_ring_peek(struct shmrt_ring *r, const void **buf, size_t *len, int64_t timeout_ns)
{
	if (r->role != SHMRT_RING_CONSUMER)
		return shmrt_fail(EINVAL, "ring: peek on a producer handle");
	struct peek_out out = {buf, len};
	r->dead_size = 0;
	int rc = consumer_poll(r, &out);
	if (rc == -EAGAIN && timeout_ns == 0) {
		rc = ring_check_head(r);
		if (rc == 0)
			rc = -EAGAIN;
	}
	if (rc == -EAGAIN) {
		rc = ring_wait(r, &r->sh->data_wq, consumer_poll, &out, ring_producers_gone, timeout_ns);
		if (rc == -EOWNERDEAD)
			r->dead_size = r->wait_size;
	}
	return rc;
}

int shmrt_ring_release(struct shmrt_ring *r)
{
	uint32_t size = r->cur_size ? r->cur_size : r->dead_size;
	if (r->role != SHMRT_RING_CONSUMER || size == 0)
		return shmrt_fail(EINVAL, "ring: release without a record from peek");
	r->cur_size = 0;
	r->dead_size = 0;
	advance(r, size);
	return 0;
}

int shmrt_ring_recv(struct shmrt_ring *r, void *buf, size_t cap, size_t *len, int64_t timeout_ns)
{
	const void *p;
	int rc = shmrt_ring_peek(r, &p, len, timeout_ns);
	if (rc < 0)
		return rc;
	if (*len > cap)
		return shmrt_fail(EMSGSIZE, "ring: a %zu-byte record does not fit a %zu-byte buffer (kept)",
				  *len, cap);
	if (*len)
		memcpy(buf, p, *len);
	return shmrt_ring_release(r);
}
