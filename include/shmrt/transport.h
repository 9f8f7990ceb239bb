/* shmrt — moving tensors between the W workers of a tensor-parallel group.
 *
 * A transport is a table of functions (as NCCL's transports are): init,
 * all-reduce (sum), all-gather, barrier, destroy. Backends:
 *
 *   "shm"   chunked, pipelined staging through a region of the arena:
 *           reduce-scatter then all-gather, each rank reducing its slice of
 *           every chunk. For CPU workers over plain memory, and for GPUs
 *           without P2P (the staging is then registered with
 *           cudaHostRegister and filled with cudaMemcpyAsync).
 *   "nccl"  NCCL, with its unique id handed over through the same region.
 *           Built when NCCL is found; runs only with GPUs.
 *
 * "auto" (or NULL) is decided once per group, by rank 0, and published in
 * the region so that every rank takes the same backend: `nccl` when NCCL is
 * built, every rank has a GPU and every pair of the ranks' GPUs can access
 * each other as peers (cudaDeviceCanAccessPeer: NVLink or PCIe P2P); `shm`
 * otherwise. The rule has no crossover size, by argument rather than
 * measurement (no GPU was lent to this work): with P2P, NCCL's P2P
 * transport reads peer memory directly over NVLink or PCIe (NCCL user
 * guide, Environment Variables, NCCL_P2P_DISABLE), each byte crossing the
 * link once, while the shm path copies it over PCIe to the host and back
 * and synchronises the host per chunk (tens of microseconds for a small
 * message), so shm cannot win at any size; without P2P, NCCL itself stages
 * through host memory ("SHM is used between devices when peer-to-peer
 * cannot happen", ibid., NCCL_SHM_DISABLE), and ours is taken so that CPU
 * and GPU workers share one tested path. `shmrt bench xfer` prints both
 * on a machine with GPUs, to revisit the rule with figures.
 * The environment variable SHMRT_TRANSPORT ("shm", "nccl", "auto")
 * overrides the name given to shmrt_xfer_open in every process.
 *
 * Buffers are host memory when the config's device is -1 (CPU workers),
 * device memory of that device otherwise. Every call is collective: all W
 * ranks make the same calls, with the same counts and dtypes, in the same
 * order. A call returns once its result is in place (device buffers: the
 * copies are done; `stream` orders it after earlier work on that stream).
 *
 * The shm backend sums each element in rank order 0, 1, .., W-1 (bf16 and
 * f16 in fp32, rounded once), so every rank gets the same bits, equal to a
 * left-to-right sum in rank order; NCCL's order depends on its algorithm.
 *
 * A peer that dies (or closes) while a call waits on it gives -EPIPE within
 * a fraction of a second; a live peer that does not answer within the
 * timeout gives -ETIMEDOUT. Either way the group is broken: every later
 * call, on every rank, fails with -EPIPE, and a new group needs the region
 * formatted again. Functions return 0 or -errno; shmrt_last_error() says
 * more.
 *
 * Threads: a handle belongs to one thread at a time. Handles do not survive
 * fork(): open them in the process that uses them. */
#ifndef SHMRT_TRANSPORT_H
#define SHMRT_TRANSPORT_H

#include "common.h"
#include "dtype.h"

/* Ranks in a group: 1 .. SHMRT_XFER_MAX_WORLD. */
#define SHMRT_XFER_MAX_WORLD 64

/* Default bytes of one slice of a chunk in the shm staging (see
 * shmrt_xfer_footprint): small enough that a chunk stays in the caches
 * between the rank that writes it and the ones that read it. */
#define SHMRT_XFER_DEFAULT_CHUNK ((size_t)64 << 10)

/* Default wait on a live peer before -ETIMEDOUT: 5 minutes (a rank may
 * still be loading its weights when the others make the first call). */
#define SHMRT_XFER_DEFAULT_TIMEOUT_NS ((int64_t)300 * 1000000000)

/* What a rank brings to shmrt_xfer_open. */
struct shmrt_xfer_config {
	int rank, world;      /* 0 <= rank < world <= SHMRT_XFER_MAX_WORLD */
	void *region;         /* shared memory formatted by shmrt_xfer_format, */
	size_t region_size;   /* e.g. a region of the arena */
	int device;           /* CUDA device holding this rank's buffers; -1: host memory */
	int64_t timeout_ns;   /* waits on live peers; 0: the default, SHMRT_WAIT_FOREVER: none */
};

/* A backend. `state` is the backend's own; shmrt_xfer_open has validated
 * the config and registered the rank in the region before init. count is
 * in elements; all_gather's recv holds world * count elements, rank r's
 * at r * count (send may be that very place: in place). all_reduce's send
 * may equal recv. stream: a cudaStream_t for device buffers (NULL: the
 * default stream), ignored for host buffers. */
struct shmrt_transport {
	const char *name;
	int (*init)(void **state, const struct shmrt_xfer_config *cfg);
	int (*all_reduce)(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			  void *stream);
	int (*all_gather)(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			  void *stream);
	int (*barrier)(void *state);
	void (*destroy)(void *state);
};

/* The backend called name ("shm", "nccl"), or NULL when it is unknown or
 * not built in. */
SHMRT_API const struct shmrt_transport *shmrt_transport_find(const char *name);

/* Bytes of shared memory the region of a group of `world` ranks takes, with
 * chunk-byte slices (0: SHMRT_XFER_DEFAULT_CHUNK; a multiple of 64 up to
 * 16 MiB): about 5 * world * world * chunk for the shm staging, plus a page
 * or so of control words. 0 when the arguments are bad. */
SHMRT_API size_t shmrt_xfer_footprint(int world, size_t chunk);

/* Lays out an empty region for one group in mem[0 .. size), mem 64-byte
 * aligned. Call once, before any rank opens it; again (with no rank left
 * in it) before the group is started anew. */
SHMRT_API int shmrt_xfer_format(void *mem, size_t size, int world, size_t chunk);

/* The same with a shared buffer of buffer_bytes (rounded up to a page) per
 * rank in the region (shmrt_xfer_buffer). 0: none, as above. */
SHMRT_API size_t shmrt_xfer_footprint_buffers(int world, size_t chunk, size_t buffer_bytes);
SHMRT_API int shmrt_xfer_format_buffers(void *mem, size_t size, int world, size_t chunk, size_t buffer_bytes);

struct shmrt_xfer; /* a process-local handle on one rank of a group */

/* Joins the group as cfg->rank, with backend name ("shm", "nccl", "auto"
 * or NULL for auto; SHMRT_TRANSPORT overrides it). Waits until all world
 * ranks have joined (at most the timeout). -EBUSY when the rank is taken
 * by a live process, -ESTALE when the region was used by an earlier group
 * (format it again), -EBADMSG for a region that is not one, -ENOTSUP for a
 * backend that is not built or cannot run here (nccl without a GPU). */
SHMRT_API int shmrt_xfer_open(struct shmrt_xfer **out, const char *name, const struct shmrt_xfer_config *cfg);

/* recv[i] = sum over ranks of send[i], i < count. dtype: SHMRT_F32,
 * SHMRT_BF16, SHMRT_F16. */
SHMRT_API int shmrt_xfer_all_reduce(struct shmrt_xfer *x, const void *send, void *recv, size_t count,
				    enum shmrt_dtype dtype, void *stream);

/* recv[r * count .. (r + 1) * count) = rank r's send, for every rank r. */
SHMRT_API int shmrt_xfer_all_gather(struct shmrt_xfer *x, const void *send, void *recv, size_t count,
				    enum shmrt_dtype dtype, void *stream);

/* Returns once every rank has called it. */
SHMRT_API int shmrt_xfer_barrier(struct shmrt_xfer *x);

/* This rank's shared buffer in the region (shm backend, host memory; a
 * region formatted with buffers), else -ENOENT. An all-reduce whose send
 * and/or recv lie in it takes a shortcut: the peers read the rank's input
 * and its reduced slices there, rather than through copies in the staging
 * (zero copy, as NCCL's registered user buffers; in place on it is the
 * fastest). Such a call returns once the peers are done with the buffer,
 * which is then the caller's again. */
SHMRT_API int shmrt_xfer_buffer(struct shmrt_xfer *x, void **ptr, size_t *bytes);

/* The backend in use: "shm" or "nccl". */
SHMRT_API const char *shmrt_xfer_backend(const struct shmrt_xfer *x);

/* Leaves the group and frees the handle. Peers still waiting on this rank
 * get -EPIPE. */
SHMRT_API void shmrt_xfer_close(struct shmrt_xfer *x);

#endif
