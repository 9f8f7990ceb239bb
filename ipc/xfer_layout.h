/* Internal: the shared-memory layout of a transport region and the helpers
 * its backends share (see include/shmrt/transport.h for the API).
 *
 * Layout, in 64-byte lines:
 *
 *   xfer_hdr      geometry (written once by format, validated and copied by
 *                 every rank), then the group's words: the backend rank 0
 *                 chose, the abort word, NCCL's unique id
 *   xfer_rank     one per rank: its registration (process identity, GPU)
 *                 and its sequence words, each on its own line
 *   staging       (shm) per rank r: XFER_SLOTS "in" slots of world * chunk
 *                 bytes, then XFER_SLOTS "out" slots of chunk bytes, from
 *                 a page boundary
 *   buffers       per rank, buffer bytes (rounded up to a page), that rank's
 *                 shared buffer (shmrt_xfer_buffer); none when 0
 *
 * Sequence words count steps since format and only grow (32 bits, compared
 * with wrap-around arithmetic). Geometry read from shared memory is checked
 * once, at open; sequence values read later are only compared, never used
 * as offsets, so a corrupt peer cannot make a rank touch memory outside
 * the region. */
#ifndef SHMRT_XFER_LAYOUT_H
#define SHMRT_XFER_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt_config.h"
#include "shmrt/transport.h"

#define XFER_MAGIC UINT64_C(0x31524658544d5348) /* "HSMTXFR1" */
#define XFER_VERSION 1
#define XFER_LINE 64
/* Slots per rank and direction: three blocks are in flight in the shm
 * pipeline (see xfer_shm.c), the fourth is slack so that writers never
 * wait for readers in steady state. */
#define XFER_SLOTS 4
#define XFER_MAX_CHUNK ((size_t)16 << 20)
#define XFER_MAX_BUFFER ((size_t)1 << 40)
/* How often a waiting rank looks at its peers' liveness and the abort word. */
#define XFER_CHECK_NS (50 * (int64_t)1000000)

enum xfer_backend_id { XFER_UNDECIDED = 0, XFER_SHM = 1, XFER_NCCL = 2 };

/* A futex word and how many wait on it: the writer makes the wake system
 * call only when sleepers != 0 (the protocol is in xfer_wait.c). */
struct xfer_word {
	alignas(XFER_LINE) _Atomic uint32_t seq;
	_Atomic uint32_t sleepers;
};

struct xfer_hdr {
	alignas(XFER_LINE) uint64_t magic;
	uint32_t version, world;
	uint64_t size, chunk;
	uint32_t slots, oneshot_max; /* all-reduces of world * bytes <= oneshot_max: one step */
	uint64_t staging_off;        /* from the region's start, page aligned */
	uint64_t buffer_bytes;       /* each rank's shared buffer, a page multiple */
	uint64_t buffers_off;        /* from the region's start */
	/* Rank 0's choice (enum xfer_backend_id), published once all joined. */
	struct xfer_word backend;
	/* 0, or 1 + the rank that found the group broken. */
	struct xfer_word abort;
	/* NCCL: seq = 1 once rank 0 wrote the id. */
	struct xfer_word nccl_ready;
	alignas(XFER_LINE) unsigned char nccl_id[128];
};

/* Registration: a packed identity (ring_peer_pack: start time << 22 | pid),
 * 0 while free, XFER_CLOSED once its holder left. */
#define XFER_CLOSED UINT64_MAX

struct xfer_rank {
	alignas(XFER_LINE) _Atomic uint64_t id;
	int32_t device;         /* -1: host buffers */
	char pci_bus_id[32];    /* "" without a GPU */
	struct xfer_word joined;   /* 1 once id, device and pci_bus_id are written */
	/* The shm pipeline's words, in the order a block meets them. */
	struct xfer_word in_ready; /* in-steps whose "in" slot this rank has filled */
	struct xfer_word consumed; /* in-steps whose "in" slots of every peer this rank has read */
	struct xfer_word out_ready; /* out-steps whose "out" slot this rank has filled */
	struct xfer_word done;     /* out-steps whose "out" slots of every peer this rank has read */
	struct xfer_word barrier;  /* barriers this rank has entered */
	/* The current all-reduce's send and recv as offsets in this rank's
	 * shared buffer (XFER_PRIVATE: not there), written before the call's
	 * first publish. */
	alignas(XFER_LINE) _Atomic uint64_t send_off;
	_Atomic uint64_t recv_off;
};
#define XFER_PRIVATE UINT64_MAX

/* The region as one rank sees it, geometry copied out of shared memory. */
struct xfer_region {
	struct xfer_hdr *hdr;
	struct xfer_rank *ranks; /* [world] */
	unsigned char *staging;
	unsigned char *buffers; /* rank q's at buffers + q * buffer_bytes */
	size_t buffer_bytes;
	int rank, world;
	size_t chunk, oneshot_max;
	int64_t timeout_ns; /* < 0: none */
	int64_t spin_ns;    /* before a wait sleeps */
	bool oversubscribed; /* more ranks than CPUs: spin with sched_yield */
	int64_t next_check; /* next liveness check (xfer_wait) */
	bool broken;        /* this rank saw the group fail: every call is -EPIPE */
};

/* Checks the region's header against cfg and fills r. -EBADMSG, -EPROTO,
 * -EINVAL. */
int xfer_region_map(struct xfer_region *r, const struct shmrt_xfer_config *cfg);

/* Bytes of one rank's staging, and where rank q's slots start. */
size_t xfer_buffer_round(size_t bytes);
size_t xfer_staging_per_rank(int world, size_t chunk);
unsigned char *xfer_in_slot(const struct xfer_region *r, int q, uint32_t step);
unsigned char *xfer_out_slot(const struct xfer_region *r, int q, uint32_t step);

/* Sequence arithmetic: whether a has reached b (32-bit wrap-around). */
static inline bool xfer_reached(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

/* Publishes w = v (release: what this rank wrote before is visible to a
 * reader that sees v) and wakes its sleepers. */
void xfer_publish(struct xfer_word *w, uint32_t v);

/* Waits until peer's word w has reached target: spins, then sleeps on the
 * futex in slices, checking the abort word, the peers' liveness and the
 * timeout between slices. acquire: what peer wrote before publishing is
 * visible after. 0, -EPIPE (peer gone or the group broken), -ETIMEDOUT. */
int xfer_wait(struct xfer_region *r, struct xfer_word *w, uint32_t target, int peer);

/* xfer_wait on the word at word_off in every other rank's xfer_rank. */
int xfer_wait_others(struct xfer_region *r, size_t word_off, uint32_t target);
#define XFER_WAIT_OTHERS(r, field, target) xfer_wait_others(r, offsetof(struct xfer_rank, field), target)

/* A barrier through the ranks' barrier words; *step counts this rank's. */
int xfer_barrier(struct xfer_region *r, uint32_t *step);

/* For waits that poll something else (NCCL's stream): 0 to go on waiting,
 * else the error (group broken, a peer gone, past the deadline), the
 * group then broken. Liveness is looked at every XFER_CHECK_NS. */
int xfer_poll_group(struct xfer_region *r, int64_t deadline, int peer);
/* start + the region's timeout, INT64_MAX for none. */
int64_t xfer_deadline(const struct xfer_region *r, int64_t start);

/* Marks the group broken (abort word), wakes every sleeper, returns err. */
int xfer_break(struct xfer_region *r, int err);

/* -EPIPE with a message when this rank or another has broken the group. */
int xfer_check_broken(struct xfer_region *r);

/* The backends (xfer_shm.c, xfer_nccl.c). */
extern const struct shmrt_transport xfer_shm_transport;
#if SHMRT_HAVE_NCCL
extern const struct shmrt_transport xfer_nccl_transport;
/* Whether every pair of the ranks' GPUs (by PCI bus id) can access each
 * other as peers; false when one of them is not visible here. */
bool xfer_nccl_p2p(const struct xfer_region *r);
#endif

#endif
