/* Kernel byte streams as peers: a pair of pipes (one per direction) and a
 * Unix domain socket pair of type SOCK_STREAM. A record is `bytes` bytes
 * written with write() and read back with read() loops; SOCK_STREAM rather
 * than SOCK_SEQPACKET because the latter cannot carry a 1 MiB record with
 * the default socket buffers. Buffer sizes are the kernel's defaults
 * (64 KiB per pipe), as a program gets them. When the peer dies its ends
 * close, and read() returns end-of-file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"

struct fd_chan {
	/* fd[side][0]: where side reads; fd[side][1]: where it writes. */
	int fd[2][2];
	enum ipc_side side;
};

static struct fd_chan *fd_chan_new(void)
{
	struct fd_chan *c = malloc(sizeof(*c));
	if (c)
		for (int s = 0; s < 2; s++)
			c->fd[s][0] = c->fd[s][1] = -1;
	return c;
}

static void fd_close_side(struct fd_chan *c, int side)
{
	int rd = c->fd[side][0], wr = c->fd[side][1];
	if (rd >= 0)
		close(rd);
	/* A socket's one fd serves both directions: close it once. */
	if (wr >= 0 && wr != rd)
		close(wr);
	c->fd[side][0] = c->fd[side][1] = -1;
}

static void fd_teardown(void *chan)
{
	struct fd_chan *c = chan;
	fd_close_side(c, IPC_A);
	fd_close_side(c, IPC_B);
	free(c);
}

static int pipe_setup(void **chan, size_t bytes)
{
	(void)bytes;
	struct fd_chan *c = fd_chan_new();
	int ab[2], ba[2];
	if (!c)
		return -ENOMEM;
	if (pipe2(ab, O_CLOEXEC) < 0) {
		free(c);
		return -errno;
	}
	if (pipe2(ba, O_CLOEXEC) < 0) {
		int err = errno;
		close(ab[0]);
		close(ab[1]);
		free(c);
		return -err;
	}
	c->fd[IPC_A][0] = ba[0];
	c->fd[IPC_A][1] = ab[1];
	c->fd[IPC_B][0] = ab[0];
	c->fd[IPC_B][1] = ba[1];
	*chan = c;
	return 0;
}

static int uds_setup(void **chan, size_t bytes)
{
	(void)bytes;
	struct fd_chan *c = fd_chan_new();
	int sv[2];
	if (!c)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(c);
		return -errno;
	}
	c->fd[IPC_A][0] = c->fd[IPC_A][1] = sv[0];
	c->fd[IPC_B][0] = c->fd[IPC_B][1] = sv[1];
	*chan = c;
	return 0;
}

/* Keeps this side's ends and closes the other's, so that the peer's exit
 * shows as end-of-file. */
static int fd_attach(void *chan, enum ipc_side side)
{
	struct fd_chan *c = chan;
	c->side = side;
	fd_close_side(c, side == IPC_A ? IPC_B : IPC_A);
	return 0;
}

static int fd_send(void *chan, const void *buf, size_t bytes)
{
	struct fd_chan *c = chan;
	for (size_t done = 0; done < bytes;) {
		ssize_t n = write(c->fd[c->side][1], (const char *)buf + done, bytes - done);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			done += (size_t)n;
	}
	return 0;
}

static int fd_recv(void *chan, void *buf, size_t bytes)
{
	struct fd_chan *c = chan;
	for (size_t done = 0; done < bytes;) {
		ssize_t n = read(c->fd[c->side][0], (char *)buf + done, bytes - done);
		if (n == 0)
			return -EPIPE;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			done += (size_t)n;
	}
	return 0;
}

static void fd_detach(void *chan)
{
	(void)chan;
}

const struct ipc_transport ipc_pipe = {
	.name = "pipe",
	.stream = true,
	.setup = pipe_setup,
	.attach = fd_attach,
	.send = fd_send,
	.recv = fd_recv,
	.detach = fd_detach,
	.teardown = fd_teardown,
};

const struct ipc_transport ipc_uds = {
	.name = "uds",
	.stream = true,
	.setup = uds_setup,
	.attach = fd_attach,
	.send = fd_send,
	.recv = fd_recv,
	.detach = fd_detach,
	.teardown = fd_teardown,
};
