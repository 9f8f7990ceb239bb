/* shmrt's own SPSC rings as the peer under test: one ring per direction in
 * an anonymous shared mapping made before fork(), formatted once, opened in
 * each process. A record goes in with shmrt_ring_send and out with
 * shmrt_ring_recv (a copy in, a copy out). Three waiting modes:
 * shmrt-spin never sleeps, shmrt-futex sleeps at once (every record is a
 * futex wake), and the default spins briefly, then sleeps. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "shmrt/ring.h"
#include "ipc.h"

/* No spin setting: keep the ring's default. */
#define SPIN_DEFAULT INT64_MIN

struct ring_chan {
	int64_t spin_ns;
	size_t bytes, capacity, footprint; /* footprint: one ring's, page-rounded */
	unsigned char *mem;                /* [0]: A to B, [footprint]: B to A */
	struct shmrt_ring *out, *in;
};

/* Room for a few records in flight (a stream keeps the consumer busy while
 * the producer writes the next ones), at least 64 KiB like a pipe. */
size_t ipc_ring_capacity(size_t bytes)
{
	size_t cap = 64 * 1024;
	while (cap < 4 * (bytes + 64))
		cap *= 2;
	return cap;
}

static int ring_setup(void **chan, size_t bytes, int64_t spin_ns)
{
	struct ring_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->spin_ns = spin_ns;
	c->bytes = bytes;
	c->capacity = ipc_ring_capacity(bytes);
	size_t page = 4096, fp = shmrt_ring_footprint(SHMRT_RING_SPSC, c->capacity, 1);
	c->footprint = (fp + page - 1) / page * page;
	int rc = -EINVAL;
	if (!fp)
		goto fail;
	c->mem = mmap(NULL, 2 * c->footprint, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->mem == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		rc = shmrt_ring_format(c->mem + i * c->footprint, c->footprint, SHMRT_RING_SPSC, c->capacity, 1);
		if (rc < 0) {
			munmap(c->mem, 2 * c->footprint);
			goto fail;
		}
	}
	*chan = c;
	return 0;
fail:
	free(c);
	return rc;
}

static int ring_setup_spin(void **chan, size_t bytes)
{
	return ring_setup(chan, bytes, SHMRT_WAIT_FOREVER);
}

static int ring_setup_futex(void **chan, size_t bytes)
{
	return ring_setup(chan, bytes, 0);
}

static int ring_setup_default(void **chan, size_t bytes)
{
	return ring_setup(chan, bytes, SPIN_DEFAULT);
}

static int ring_attach(void *chan, enum ipc_side side)
{
	struct ring_chan *c = chan;
	unsigned char *ab = c->mem, *ba = c->mem + c->footprint;
	int rc = shmrt_ring_open(&c->out, side == IPC_A ? ab : ba, c->footprint, SHMRT_RING_PRODUCER, 0);
	if (rc == 0)
		rc = shmrt_ring_open(&c->in, side == IPC_A ? ba : ab, c->footprint, SHMRT_RING_CONSUMER, 0);
	if (rc < 0)
		return rc;
	if (shmrt_ring_max_record(c->out) < c->bytes)
		return -EMSGSIZE;
	if (c->spin_ns != SPIN_DEFAULT) {
		shmrt_ring_set_spin(c->out, c->spin_ns);
		shmrt_ring_set_spin(c->in, c->spin_ns);
	}
	return 0;
}

static int ring_send(void *chan, const void *buf, size_t bytes)
{
	struct ring_chan *c = chan;
	return shmrt_ring_send(c->out, buf, bytes, IPC_TIMEOUT_NS);
}

static int ring_recv(void *chan, void *buf, size_t bytes)
{
	struct ring_chan *c = chan;
	size_t len;
	int rc = shmrt_ring_recv(c->in, buf, bytes, &len, IPC_TIMEOUT_NS);
	if (rc < 0)
		return rc;
	return len == bytes ? 0 : -EBADMSG;
}

static void ring_detach(void *chan)
{
	struct ring_chan *c = chan;
	if (c->out)
		shmrt_ring_close(c->out);
	if (c->in)
		shmrt_ring_close(c->in);
	c->out = c->in = NULL;
}

static void ring_teardown(void *chan)
{
	struct ring_chan *c = chan;
	ring_detach(c);
	munmap(c->mem, 2 * c->footprint);
	free(c);
}

#define RING_TRANSPORT(NAME, SETUP)                                                                \
	{                                                                                          \
		.name = NAME, .stream = true, .setup = SETUP, .attach = ring_attach, .send = ring_send, \
		.recv = ring_recv, .detach = ring_detach, .teardown = ring_teardown,               \
	}

const struct ipc_transport ipc_shmrt_spin = RING_TRANSPORT("shmrt-spin", ring_setup_spin);
const struct ipc_transport ipc_shmrt_futex = RING_TRANSPORT("shmrt-futex", ring_setup_futex);
const struct ipc_transport ipc_shmrt_default = RING_TRANSPORT("shmrt", ring_setup_default);
