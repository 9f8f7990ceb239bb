/* Waiting on a ring: spin, then sleep on a futex in slices, checking
 * between slices that the processes on the other side are still there. */
#include <errno.h>
#include <stdint.h>

#include "fail.h"
#include "futex.h"
#include "clock.h"
#include "proc.h"
#include "ring_layout.h"
#include "spin.h"

void ring_wake_slow(struct ring_waitq *q)
{
	/* release: pairs with the sleeper's acquire load of seq (ring_sleep). */
	atomic_fetch_add_explicit(&q->seq, 1, memory_order_release);
	shmrt_futex_wake(&q->seq, INT32_MAX);
}

/* Announces a sleeper, polls once more, and sleeps at most ns unless the
 * poll succeeded or a waker bumped seq in between (ring_wake's comment).
 * A sleeper killed here leaves sleepers one too high: the other side then
 * makes a needless wake call per record, which costs time, never a hang. */
static int ring_sleep(struct shmrt_ring *r, struct ring_waitq *q, ring_poll_fn poll, void *arg, int64_t ns)
{
	atomic_fetch_add_explicit(&q->sleepers, 1, memory_order_seq_cst);
	uint32_t seq = atomic_load_explicit(&q->seq, memory_order_acquire);
	int rc = poll(r, arg);
	if (rc == -EAGAIN)
		shmrt_futex_wait(&q->seq, seq, ns);
	atomic_fetch_sub_explicit(&q->sleepers, 1, memory_order_relaxed);
	return rc;
}

/* A peer is gone: take what it published before it left, if anything. */
static int peers_gone(struct shmrt_ring *r, ring_poll_fn poll, void *arg, int err)
{
	int rc = poll(r, arg);
	return rc != -EAGAIN ? rc : err;
}

/* timeout 0: a caller that polls in a loop still learns that its peers
 * are gone, without reading /proc on every call. */
static int ring_try(struct shmrt_ring *r, ring_poll_fn poll, void *arg, ring_peers_fn peers)
{
	int64_t now = shmrt_now_ns();
	/* relaxed: a rate limit only; threads sharing a handle may race. */
	if (now < atomic_load_explicit(&r->next_check, memory_order_relaxed))
		return -EAGAIN;
	atomic_store_explicit(&r->next_check, now + RING_CHECK_NS, memory_order_relaxed);
	int err = peers(r);
	return err < 0 ? peers_gone(r, poll, arg, err) : -EAGAIN;
}

int ring_wait(struct shmrt_ring *r, struct ring_waitq *q, ring_poll_fn poll, void *arg,
	      ring_peers_fn peers, int64_t timeout_ns)
{
	if (timeout_ns == 0)
		return ring_try(r, poll, arg, peers);
	int64_t now = shmrt_now_ns(), start = now;
	int64_t spin = atomic_load_explicit(&r->spin_ns, memory_order_relaxed);
	int64_t deadline = timeout_ns < 0 ? INT64_MAX : now + timeout_ns;
	int64_t spin_end = spin < 0 ? INT64_MAX : now + spin;
	int64_t next_check = now + RING_CHECK_NS;
	for (unsigned i = 1;; i++) {
		int rc;
		if (now < spin_end) {
			rc = poll(r, arg);
			if (rc != -EAGAIN)
				return rc;
			shmrt_spin_turn(now - start); /* now: as of the last clock read */
			if (i % 16) /* read the clock now and then only */
				continue;
		} else {
			int64_t until = deadline < next_check ? deadline : next_check;
			rc = ring_sleep(r, q, poll, arg, until > now ? until - now : 0);
			if (rc != -EAGAIN)
				return rc;
		}
		now = shmrt_now_ns();
		if (now >= next_check) {
			next_check = now + RING_CHECK_NS;
			int err = peers(r);
			if (err < 0)
				return peers_gone(r, poll, arg, err);
		}
		if (now >= deadline) {
			rc = poll(r, arg);
			return rc != -EAGAIN ? rc : shmrt_fail(ETIMEDOUT, "ring: timed out after %lld ns",
							       (long long)timeout_ns);
		}
	}
}

uint64_t ring_peer_pack(int32_t pid, uint64_t start_time)
{
	if (pid <= 0 || (uint64_t)pid > RING_PID_MASK || start_time >> (64 - RING_PID_BITS))
		return 0;
	return start_time << RING_PID_BITS | (uint64_t)pid;
}

bool ring_peer_alive(uint64_t id)
{
	if (id == 0 || id == RING_PEER_CLOSED)
		return false;
	struct shmrt_proc_id p = {.pid = (int32_t)(id & RING_PID_MASK), .start_time = id >> RING_PID_BITS};
	return shmrt_proc_alive(&p);
}

/* Scans the producer registry: whether a live producer is registered
 * (with pid: that very process). Dead entries are freed on the way. */
static bool producer_alive(const struct shmrt_ring *r, int32_t pid)
{
	bool any = false;
	for (unsigned i = 0; i < r->n_producers; i++) {
		uint64_t id = atomic_load_explicit(ring_producer_word(r, i), memory_order_acquire);
		if (id == 0)
			continue;
		if (!ring_peer_alive(id)) {
			atomic_compare_exchange_strong_explicit(ring_producer_word(r, i), &id, 0, memory_order_relaxed,
								memory_order_relaxed);
			continue;
		}
		if (pid == 0 || (int32_t)(id & RING_PID_MASK) == pid)
			any = true;
	}
	return any;
}

int ring_producers_gone(struct shmrt_ring *r)
{
	struct ring_shared *sh = r->sh;
	int bad = ring_check_head(r);
	if (bad < 0)
		return bad;
	if (r->wait_pid) {
		/* Waiting on a reserved record: only its owner can commit it. */
		if (!producer_alive(r, r->wait_pid))
			return shmrt_fail(EOWNERDEAD, "ring: producer %d died (or closed) before committing a "
					  "record; release() skips it", (int)r->wait_pid);
		return 0;
	}
	/* acquire: pairs with register_producer's release increment. */
	if (atomic_load_explicit(&sh->producers_ever, memory_order_acquire) == 0)
		return 0; /* nobody came yet: keep waiting */
	if (!producer_alive(r, 0))
		return shmrt_fail(EPIPE, "ring: every producer has died or closed");
	return 0;
}

/* A consumer is gone when it registered and then closed or died; one that
 * never opened is waited for. */
static int consumer_gone(struct ring_reader *rd, unsigned i)
{
	uint64_t id = atomic_load_explicit(&rd->id, memory_order_acquire);
	if (id == 0 || (id != RING_PEER_CLOSED && ring_peer_alive(id)))
		return 0;
	if (id != RING_PEER_CLOSED)
		atomic_compare_exchange_strong_explicit(&rd->id, &id, RING_PEER_CLOSED, memory_order_relaxed,
							memory_order_relaxed);
	return shmrt_fail(EPIPE, "ring: reader %u has died or closed", i);
}

int ring_consumers_gone(struct shmrt_ring *r)
{
	if (r->kind != SHMRT_RING_BROADCAST)
		return consumer_gone(&r->sh->readers[0], 0);
	/* Broadcast: only the readers that keep us from writing matter. */
	for (unsigned i = 0; i < r->n_readers; i++) {
		struct ring_reader *rd = &r->sh->readers[i];
		uint64_t pos = atomic_load_explicit(&rd->pos, memory_order_acquire);
		if (r->head + r->wait_need - pos <= r->cap)
			continue;
		int rc = consumer_gone(rd, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}
