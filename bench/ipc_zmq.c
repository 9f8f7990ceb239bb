/* ZeroMQ over ipc:// as a peer, set up the way vLLM and SGLang connect
 * their processes: one PUSH -> PULL pair per direction, high-water marks 0
 * (no limit) and the OS's socket buffer sizes (SGLang's get_zmq_socket in
 * python/sglang/srt/utils.py and vLLM's make_zmq_socket do so on a machine
 * with less than 32 GiB, like this one). A record goes through
 * zmq_send/zmq_recv, which copy it into and out of a message, as our
 * ring's send/recv copy it into and out of the ring.
 *
 * A binds both endpoints and B connects; a context must not cross fork(),
 * so each process makes its own after the fork. B may connect before A has
 * bound: it then retries every RECONNECT_IVL, 10 ms here instead of the
 * default 100 ms. The context's I/O thread inherits the process's CPU pin,
 * so each side keeps to its one core. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ipc.h"

struct zmq_chan {
	char dir[64];
	char endpoint[2][96]; /* [0]: A to B, [1]: B to A */
	void *ctx, *push, *pull;
};

static int zmq_fail(void)
{
	return -zmq_errno();
}

static int zmq_setup_chan(void **chan, size_t bytes)
{
	(void)bytes;
	struct zmq_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	char dir[sizeof(c->dir)] = "/tmp/shmrt-bench-zmq-XXXXXX";
	if (!mkdtemp(dir)) {
		free(c);
		return -errno;
	}
	memcpy(c->dir, dir, sizeof(dir));
	for (int i = 0; i < 2; i++)
		snprintf(c->endpoint[i], sizeof(c->endpoint[i]), "ipc://%s/%s", dir, i ? "ba" : "ab");
	*chan = c;
	return 0;
}

static int zmq_socket_open(struct zmq_chan *c, void **sock, int type, const char *endpoint, bool bind)
{
	int zero = 0, reconnect_ms = 10, linger_ms = 1000;
	int timeout_ms = (int)(IPC_TIMEOUT_NS / 1000000);
	*sock = zmq_socket(c->ctx, type);
	if (!*sock)
		return zmq_fail();
	if (zmq_setsockopt(*sock, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &zero, sizeof(zero)) ||
	    zmq_setsockopt(*sock, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof(int)) ||
	    zmq_setsockopt(*sock, ZMQ_LINGER, &linger_ms, sizeof(int)) ||
	    zmq_setsockopt(*sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(int)) ||
	    zmq_setsockopt(*sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(int)))
		return zmq_fail();
	if ((bind ? zmq_bind : zmq_connect)(*sock, endpoint))
		return zmq_fail();
	return 0;
}

static int zmq_attach(void *chan, enum ipc_side side)
{
	struct zmq_chan *c = chan;
	bool bind = side == IPC_A;
	c->ctx = zmq_ctx_new();
	if (!c->ctx)
		return zmq_fail();
	int rc = zmq_socket_open(c, &c->push, ZMQ_PUSH, c->endpoint[side == IPC_A ? 0 : 1], bind);
	if (!rc)
		rc = zmq_socket_open(c, &c->pull, ZMQ_PULL, c->endpoint[side == IPC_A ? 1 : 0], bind);
	return rc;
}

static int zmq_send_record(void *chan, const void *buf, size_t bytes)
{
	struct zmq_chan *c = chan;
	while (zmq_send(c->push, buf, bytes, 0) < 0)
		if (zmq_errno() != EINTR)
			return zmq_fail();
	return 0;
}

static int zmq_recv_record(void *chan, void *buf, size_t bytes)
{
	struct zmq_chan *c = chan;
	int n;
	while ((n = zmq_recv(c->pull, buf, bytes, 0)) < 0)
		if (zmq_errno() != EINTR)
			return zmq_errno() == EAGAIN ? -ETIMEDOUT : zmq_fail();
	return (size_t)n == bytes ? 0 : -EBADMSG;
}

static void zmq_detach(void *chan)
{
	struct zmq_chan *c = chan;
	if (c->push)
		zmq_close(c->push);
	if (c->pull)
		zmq_close(c->pull);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	c->ctx = c->push = c->pull = NULL;
}

static void zmq_teardown(void *chan)
{
	struct zmq_chan *c = chan;
	zmq_detach(c);
	/* A bound ipc:// socket removes its file on close; these are for a
	 * run that stopped half-way. */
	for (int i = 0; i < 2; i++)
		unlink(c->endpoint[i] + strlen("ipc://"));
	rmdir(c->dir);
	free(c);
}

const struct ipc_transport ipc_zmq = {
	.name = "zmq",
	.stream = true,
	.setup = zmq_setup_chan,
	.attach = zmq_attach,
	.send = zmq_send_record,
	.recv = zmq_recv_record,
	.detach = zmq_detach,
	.teardown = zmq_teardown,
};
