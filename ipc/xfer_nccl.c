/* The nccl transport: NCCL's communicator, its unique id handed from rank
 * 0 to the others through the transport region (no sockets of our own).
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0), so that no
 * NCCL call can hang on a dead peer: init and every collective are polled
 * (ncclCommGetAsyncError, then a CUDA event on the stream) while the
 * region's liveness checks and timeout run (xfer_poll_group); on failure
 * the communicator is aborted (ncclCommAbort). A call returns once its
 * result is in the receive buffer, as the shm transport's do.
 * Compiled when NCCL is found; runs only with GPUs (not on the CI machine). */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <nccl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "clock.h"
#include "xfer_layout.h"

struct nccl_state {
	struct xfer_region r;
	ncclComm_t comm;
	cudaEvent_t done;
	uint32_t barrier_step;
};

static int nccl_fail(struct nccl_state *st, ncclResult_t res, const char *what)
{
	return shmrt_fail(EIO, "xfer nccl: rank %d: %s: %s (%s)", st->r.rank, what, ncclGetErrorString(res),
			  st->comm ? ncclGetLastError(st->comm) : "");
}

/* Polls until pending() says done, NCCL reports an error, a peer dies or
 * the timeout passes. pending: 1 while not done, 0 done, < 0 error. */
static int settle(struct nccl_state *st, int (*pending)(struct nccl_state *), const char *what)
{
	int64_t start = shmrt_now_ns(), deadline = xfer_deadline(&st->r, start);
	for (;;) {
		ncclResult_t async;
		ncclResult_t res = ncclCommGetAsyncError(st->comm, &async);
		if (res != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
			int rc = nccl_fail(st, res != ncclSuccess ? res : async, what);
			return xfer_break(&st->r, -rc);
		}
		if (async == ncclSuccess) {
			int p = pending(st);
			if (p <= 0)
				return p < 0 ? xfer_break(&st->r, -p) : 0;
		}
		int rc = xfer_poll_group(&st->r, deadline, -1);
		if (rc < 0)
			return rc;
		/* Spin for the first microseconds, then let the CPU go. */
		if (shmrt_now_ns() - start > st->r.spin_ns)
			sched_yield();
	}
}

static int init_pending(struct nccl_state *st)
{
	(void)st;
	return 0; /* done once the async error says success */
}

static int event_pending(struct nccl_state *st)
{
	cudaError_t e = cudaEventQuery(st->done);
	if (e == cudaErrorNotReady)
		return 1;
	if (e == cudaSuccess)
		return 0;
	cudaGetLastError();
	return shmrt_fail(EIO, "xfer nccl: rank %d: %s", st->r.rank, cudaGetErrorString(e));
}

/* Rank 0 makes the id and publishes it; the others wait for it. */
static int share_id(struct nccl_state *st, ncclUniqueId *id)
{
	struct xfer_hdr *h = st->r.hdr;
	_Static_assert(sizeof(*id) == sizeof(h->nccl_id), "NCCL_UNIQUE_ID_BYTES");
	if (st->r.rank == 0) {
		ncclResult_t res = ncclGetUniqueId(id);
		if (res != ncclSuccess)
			return nccl_fail(st, res, "ncclGetUniqueId");
		memcpy(h->nccl_id, id, sizeof(*id));
		xfer_publish(&h->nccl_ready, 1); /* release: the id before the flag */
		return 0;
	}
	int rc = xfer_wait(&st->r, &h->nccl_ready, 1, 0);
	if (rc == 0)
		memcpy(id, h->nccl_id, sizeof(*id));
	return rc;
}

static int nccl_init(void **state, const struct shmrt_xfer_config *cfg)
{
	if (cfg->device < 0)
		return shmrt_fail(ENOTSUP, "xfer nccl: rank %d has no GPU (device -1); CPU workers use shm",
				  cfg->rank);
	struct nccl_state *st = calloc(1, sizeof(*st));
	if (!st)
		return shmrt_fail(ENOMEM, "xfer nccl: out of memory");
	int rc = xfer_region_map(&st->r, cfg);
	cudaError_t e = rc == 0 ? cudaSetDevice(cfg->device) : cudaSuccess;
	if (e == cudaSuccess && rc == 0)
		e = cudaEventCreateWithFlags(&st->done, cudaEventDisableTiming);
	if (e != cudaSuccess)
		rc = shmrt_fail(ENODEV, "xfer nccl: device %d: %s", cfg->device, cudaGetErrorString(e));
	ncclUniqueId id;
	if (rc == 0)
		rc = share_id(st, &id);
	if (rc == 0) {
		ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
		config.blocking = 0;
		ncclResult_t res = ncclCommInitRankConfig(&st->comm, cfg->world, id, cfg->rank, &config);
		if (res != ncclSuccess && res != ncclInProgress)
			rc = nccl_fail(st, res, "ncclCommInitRankConfig");
		else
			rc = settle(st, init_pending, "ncclCommInitRankConfig");
	}
	if (rc < 0) {
		if (st->comm)
			ncclCommAbort(st->comm);
		if (st->done)
			cudaEventDestroy(st->done);
		free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static ncclDataType_t nccl_type(enum shmrt_dtype dt)
{
	return dt == SHMRT_F32 ? ncclFloat32 : dt == SHMRT_BF16 ? ncclBfloat16 : ncclFloat16;
}

/* After a collective was enqueued (res): waits for it on the stream. */
static int finish(struct nccl_state *st, ncclResult_t res, void *stream, const char *what)
{
	if (res != ncclSuccess && res != ncclInProgress)
		return xfer_break(&st->r, -nccl_fail(st, res, what));
	int rc = settle(st, init_pending, what); /* the enqueue itself */
	if (rc < 0)
		return rc;
	cudaError_t e = cudaEventRecord(st->done, (cudaStream_t)stream);
	if (e != cudaSuccess) {
		cudaGetLastError();
		return xfer_break(&st->r, -shmrt_fail(EIO, "xfer nccl: cudaEventRecord: %s", cudaGetErrorString(e)));
	}
	return settle(st, event_pending, what);
}

static int nccl_all_reduce(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			   void *stream)
{
	struct nccl_state *st = state;
	ncclResult_t res = ncclAllReduce(send, recv, count, nccl_type(dtype), ncclSum, st->comm, (cudaStream_t)stream);
	return finish(st, res, stream, "ncclAllReduce");
}

static int nccl_all_gather(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			   void *stream)
{
	struct nccl_state *st = state;
	ncclResult_t res = ncclAllGather(send, recv, count, nccl_type(dtype), st->comm, (cudaStream_t)stream);
	return finish(st, res, stream, "ncclAllGather");
}

/* A host barrier through the region: every call has finished on return,
 * so no device work needs ordering. */
static int nccl_barrier(void *state)
{
	struct nccl_state *st = state;
	return xfer_barrier(&st->r, &st->barrier_step);
}

static void nccl_destroy(void *state)
{
	struct nccl_state *st = state;
	/* A broken group's peers may be gone: abort rather than destroy,
	 * which would wait for them. */
	if (st->r.broken || atomic_load_explicit(&st->r.hdr->abort.seq, memory_order_relaxed))
		ncclCommAbort(st->comm);
	else
		ncclCommDestroy(st->comm);
	cudaEventDestroy(st->done);
	free(st);
}

const struct shmrt_transport xfer_nccl_transport = {
	.name = "nccl",
	.init = nccl_init,
	.all_reduce = nccl_all_reduce,
	.all_gather = nccl_all_gather,
	.barrier = nccl_barrier,
	.destroy = nccl_destroy,
};

bool xfer_nccl_p2p(const struct xfer_region *r)
{
	int dev[SHMRT_XFER_MAX_WORLD];
	for (int q = 0; q < r->world; q++) {
		char bus[sizeof(r->ranks[q].pci_bus_id)];
		memcpy(bus, r->ranks[q].pci_bus_id, sizeof(bus));
		bus[sizeof(bus) - 1] = '\0';
		if (!bus[0] || cudaDeviceGetByPCIBusId(&dev[q], bus) != cudaSuccess) {
			cudaGetLastError();
			return false; /* a GPU rank 0 cannot see: no P2P check possible */
		}
	}
	for (int i = 0; i < r->world; i++)
		for (int j = 0; j < r->world; j++) {
			int ok = 0;
			if (i == j)
				continue;
			/* Two ranks on one GPU: NCCL refuses that group. */
			if (dev[i] == dev[j] || cudaDeviceCanAccessPeer(&ok, dev[i], dev[j]) != cudaSuccess || !ok)
				return false;
		}
	return true;
}
