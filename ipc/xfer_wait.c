/* Sequence words of a transport region: publishing, waiting (spin, then
 * futex sleep in slices with liveness checks), breaking the group.
 *
 * The sleeper protocol, as the rings': a writer stores seq and then reads
 * sleepers; a sleeper increments sleepers and then reads seq, both
 * seq_cst. In the single total order of those four operations, either the
 * writer's read of sleepers comes after the increment (it wakes), or the
 * sleeper's read of seq comes after the store (it does not sleep); and a
 * store that lands between the sleeper's read and its FUTEX_WAIT makes
 * the kernel's compare fail, so the wait returns at once. */
#include <errno.h>
#include <sched.h>

#include "fail.h"
#include "futex.h"
#include "clock.h"
#include "ring_layout.h" /* ring_peer_alive */
#include "spin.h"
#include "xfer_layout.h"
#include "array_size.h"

void xfer_publish(struct xfer_word *w, uint32_t v)
{
	/* seq_cst store: a release for the data written before it, and the
	 * writer's half of the sleeper protocol. */
	atomic_store_explicit(&w->seq, v, memory_order_seq_cst);
	if (atomic_load_explicit(&w->sleepers, memory_order_seq_cst))
		shmrt_futex_wake(&w->seq, INT32_MAX);
}

static void wake_all(struct xfer_region *r)
{
	struct xfer_word *hw[] = {&r->hdr->backend, &r->hdr->abort, &r->hdr->nccl_ready};
	for (unsigned i = 0; i < ARRAY_SIZE(hw); i++)
		shmrt_futex_wake(&hw[i]->seq, INT32_MAX);
	for (int q = 0; q < r->world; q++) {
		struct xfer_rank *k = &r->ranks[q];
		struct xfer_word *w[] = {&k->joined, &k->in_ready, &k->consumed, &k->out_ready, &k->done, &k->barrier};
		for (unsigned i = 0; i < ARRAY_SIZE(w); i++)
			shmrt_futex_wake(&w[i]->seq, INT32_MAX);
	}
}

int xfer_break(struct xfer_region *r, int err)
{
	r->broken = true;
	uint32_t none = 0;
	/* relaxed: the word carries no data, only "stop waiting". */
	if (atomic_compare_exchange_strong_explicit(&r->hdr->abort.seq, &none, (uint32_t)r->rank + 1,
						    memory_order_relaxed, memory_order_relaxed))
		wake_all(r);
	return -err;
}

int xfer_check_broken(struct xfer_region *r)
{
	uint32_t a = atomic_load_explicit(&r->hdr->abort.seq, memory_order_relaxed);
	if (!r->broken && a == 0)
		return 0;
	r->broken = true;
	if (a == 0 || a == (uint32_t)r->rank + 1)
		return shmrt_fail(EPIPE, "xfer: this rank's group is broken (an earlier call failed); "
				  "format the region and start the group again");
	return shmrt_fail(EPIPE, "xfer: rank %u found the group broken (a peer died, left or timed out)",
			  a - 1);
}

/* 0 while every peer that joined is alive; a rank that has not joined yet
 * is waited for (the timeout bounds that). */
static int peers_alive(struct xfer_region *r)
{
	for (int q = 0; q < r->world; q++) {
		if (q == r->rank)
			continue;
		/* acquire: pairs with the registration's release CAS. */
		uint64_t id = atomic_load_explicit(&r->ranks[q].id, memory_order_acquire);
		if (id == 0)
			continue;
		if (id == XFER_CLOSED)
			return shmrt_fail(EPIPE, "xfer: rank %d left the group while rank %d waited on it", q,
					  r->rank);
		if (!ring_peer_alive(id))
			return shmrt_fail(EPIPE, "xfer: rank %d (pid %d) died while rank %d waited on it", q,
					  (int)(id & RING_PID_MASK), r->rank);
	}
	return 0;
}

static uint32_t load_seq(struct xfer_word *w)
{
	/* acquire: pairs with xfer_publish's store; the data is then ours. */
	return atomic_load_explicit(&w->seq, memory_order_acquire);
}

/* One sleep of at most ns on w; see the protocol at the top. */
static void sleep_on(struct xfer_word *w, uint32_t target, int64_t ns)
{
	atomic_fetch_add_explicit(&w->sleepers, 1, memory_order_seq_cst);
	uint32_t seq = atomic_load_explicit(&w->seq, memory_order_seq_cst);
	if (!xfer_reached(seq, target))
		shmrt_futex_wait(&w->seq, seq, ns);
	atomic_fetch_sub_explicit(&w->sleepers, 1, memory_order_relaxed);
}

/* xfer_poll_group, for a wait on w reaching target (w NULL: none): 1 when
 * w has reached it, which counts even if its writer has left or died since
 * (it publishes before it leaves, so seeing CLOSED means seeing that). */
static int poll_group_for(struct xfer_region *r, int64_t deadline, int peer, struct xfer_word *w,
			  uint32_t target)
{
	int rc = xfer_check_broken(r);
	if (rc < 0)
		return rc;
	int64_t now = shmrt_now_ns();
	if (now >= r->next_check) {
		r->next_check = now + XFER_CHECK_NS;
		if ((rc = peers_alive(r)) < 0) {
			if (w && xfer_reached(load_seq(w), target))
				return 1;
			return xfer_break(r, -rc);
		}
	}
	if (now >= deadline) {
		xfer_break(r, ETIMEDOUT);
		return peer < 0 ? shmrt_fail(ETIMEDOUT, "xfer: rank %d waited %lld ms on its peers, which are "
					     "alive but did not answer", r->rank, (long long)(r->timeout_ns / 1000000))
				: shmrt_fail(ETIMEDOUT, "xfer: rank %d waited %lld ms on rank %d, which is alive but "
					     "did not answer", r->rank, (long long)(r->timeout_ns / 1000000), peer);
	}
	return 0;
}

int xfer_poll_group(struct xfer_region *r, int64_t deadline, int peer)
{
	return poll_group_for(r, deadline, peer, NULL, 0);
}

int64_t xfer_deadline(const struct xfer_region *r, int64_t start)
{
	return r->timeout_ns < 0 ? INT64_MAX : start + r->timeout_ns;
}

int xfer_wait(struct xfer_region *r, struct xfer_word *w, uint32_t target, int peer)
{
	if (xfer_reached(load_seq(w), target))
		return 0;
	int64_t start = shmrt_now_ns(), now = start, spin_end = start + r->spin_ns;
	for (unsigned i = 1;; i++) {
		if (xfer_reached(load_seq(w), target))
			return 0;
		/* More ranks than CPUs: the peer may need this CPU to go on. */
		if (r->oversubscribed)
			sched_yield();
		else
			shmrt_spin_turn(now - start); /* now: as of the last clock read */
		if (i % 32 == 0 && (now = shmrt_now_ns()) >= spin_end)
			break;
	}
	int64_t deadline = xfer_deadline(r, start);
	for (;;) {
		int rc = poll_group_for(r, deadline, peer, w, target);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		int64_t now = shmrt_now_ns(), until = deadline < r->next_check ? deadline : r->next_check;
		sleep_on(w, target, until > now ? until - now : 0);
		if (xfer_reached(load_seq(w), target))
			return 0;
	}
}

int xfer_wait_others(struct xfer_region *r, size_t word_off, uint32_t target)
{
	for (int q = 0; q < r->world; q++) {
		if (q == r->rank)
			continue;
		int rc = xfer_wait(r, (struct xfer_word *)((char *)&r->ranks[q] + word_off), target, q);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int xfer_barrier(struct xfer_region *r, uint32_t *step)
{
	uint32_t s = ++*step;
	xfer_publish(&r->ranks[r->rank].barrier, s);
	return xfer_wait_others(r, offsetof(struct xfer_rank, barrier), s);
}
