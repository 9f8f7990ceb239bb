/* Reading records: peek/release and recv. Each consumer (each broadcast
 * reader) owns its position; it reads head only when it has used up the
 * records below the head it saw last. Everything read from the shared
 * memory is checked before use: a bad value is -EBADMSG. */
#include <errno.h>
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

static int consumer_poll(struct shmrt_ring *r, void *arg)
{
	struct peek_out *out = arg;
	r->wait_pid = 0;
	for (;;) {
		if (r->head_seen == r->tail) {
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
		/* seq_cst: an acquire (a committed record's payload and len
		 * are written), and the handshake when waiting on an MPSC
		 * record's commit. */
		uint32_t state = atomic_load_explicit(&rec->state, memory_order_seq_cst);
		uint32_t size = atomic_load_explicit(&rec->size, memory_order_relaxed);
		if (size < sizeof(*rec) || size % RING_ALIGN || size > r->head_seen - r->tail || size > r->cap - off)
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

int shmrt_ring_peek(struct shmrt_ring *r, const void **buf, size_t *len, int64_t timeout_ns)
{
	if (r->role != SHMRT_RING_CONSUMER)
		return shmrt_fail(EINVAL, "ring: peek on a producer handle");
	struct peek_out out = {buf, len};
	r->dead_size = 0;
	int rc = consumer_poll(r, &out);
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
