/* The latency floor: a bare ping-pong of two atomic words, each on its own
 * cache line of shared memory, one per direction. A send is one store, a
 * receive spins on one load: what is left is the hardware moving one cache
 * line between the two cores, which no transport can beat. It carries no
 * payload, only the message type (the first byte of the record). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "clock.h"
#include "ipc.h"

/* 128 bytes apart, not 64: Intel's spatial prefetcher fetches lines in
 * pairs, which would make the two words share traffic. */
struct floor_line {
	_Alignas(128) _Atomic uint64_t word; /* sequence << 8 | message type */
};

struct floor_chan {
	struct floor_line *lines; /* [0]: A to B, [1]: B to A */
	_Atomic uint64_t *out, *in;
	uint64_t sent, received;
};

static int floor_setup(void **chan, size_t bytes)
{
	(void)bytes;
	struct floor_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->lines = mmap(NULL, 2 * sizeof(struct floor_line), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->lines == MAP_FAILED) {
		free(c);
		return -errno;
	}
	*chan = c;
	return 0;
}

static int floor_attach(void *chan, enum ipc_side side)
{
	struct floor_chan *c = chan;
	c->out = &c->lines[side == IPC_A ? 0 : 1].word;
	c->in = &c->lines[side == IPC_A ? 1 : 0].word;
	return 0;
}

static int floor_send(void *chan, const void *buf, size_t bytes)
{
	struct floor_chan *c = chan;
	(void)bytes;
	/* Release: nothing else is published, but it is what a real protocol
	 * needs, and it costs nothing on x86. */
	atomic_store_explicit(c->out, ++c->sent << 8 | *(const uint8_t *)buf, memory_order_release);
	return 0;
}

static int floor_recv(void *chan, void *buf, size_t bytes)
{
	struct floor_chan *c = chan;
	(void)bytes;
	uint64_t w;
	int64_t deadline = 0;
	/* A bare spin, no pause; the clock is read only every 64 Ki rounds so
	 * that a dead peer ends the wait without slowing the loop. */
	for (unsigned spins = 1;; spins++) {
		w = atomic_load_explicit(c->in, memory_order_acquire);
		if (w >> 8 == c->received + 1)
			break;
		if (spins % 65536 == 0) {
			int64_t now = shmrt_now_ns();
			if (!deadline)
				deadline = now + IPC_TIMEOUT_NS;
			else if (now > deadline)
				return -ETIMEDOUT;
		}
	}
	c->received++;
	*(uint8_t *)buf = (uint8_t)w;
	return 0;
}

static void floor_detach(void *chan)
{
	(void)chan;
}

static void floor_teardown(void *chan)
{
	struct floor_chan *c = chan;
	munmap(c->lines, 2 * sizeof(struct floor_line));
	free(c);
}

const struct ipc_transport ipc_floor = {
	.name = "floor",
	.stream = false,
	.setup = floor_setup,
	.attach = floor_attach,
	.send = floor_send,
	.recv = floor_recv,
	.detach = floor_detach,
	.teardown = floor_teardown,
};
