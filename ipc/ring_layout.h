/* Internal: the shared-memory layout of a ring and the process-local handle
 * (see include/shmrt/ring.h for the API).
 *
 * Shared layout, every line 64 bytes:
 *
 *   line 0   ring_shared: magic, version, kind, capacity, n_readers
 *            (written once by format, validated and copied by open)
 *   line 1   head (next write position) and, MPSC, the reservation lock
 *   line 2   data wait queue: consumers sleeping for a record
 *   line 3   space wait queue: producers sleeping for room
 *   lines 4- the producer registry (who may still write)
 *   then     one line per consumer: its read position and registration
 *   then     the data, capacity bytes
 *
 * Positions (head, each consumer's position) are byte counts since format
 * that only grow (64 bits: they never wrap in practice); the offset in the
 * data is position & (capacity - 1). A record is a 16-byte ring_rec header
 * and its payload, padded to 16 bytes; it never wraps: one that does not
 * fit before the end leaves a REC_SKIP record filling the rest.
 *
 * Who polls what (version 3): a consumer of an SPSC or broadcast ring
 * polls the state word of the header at its own position, not head (an
 * MPSC consumer still reads head first, see ring_consume.c). A small record is then one cache
 * line moving from the producer to the consumer (header and up to 48
 * payload bytes share a line; a 64-byte payload adds the next line),
 * where polling head made it two serial misses: head's line, then the
 * record's. What makes the header at a consumer's position trustworthy
 * without head is the terminator: before a producer publishes a record it
 * writes a REC_EMPTY header right after it (where the next record will go),
 * so the header at any position up to head is either a record published
 * for this lap or REC_EMPTY, never stale bytes of an older lap (which a
 * client's payload could have crafted to look like a header). The
 * terminator takes RING_ALIGN bytes of room: a record needs its size plus
 * RING_ALIGN free, and the largest is capacity - 2 * RING_ALIGN.
 *
 * head is still published (after the record, SPSC/broadcast; at the claim,
 * MPSC): for the producers' space accounting, occupancy and stat, and a
 * producer reopening the ring, and the MPSC consumer. SPSC and broadcast
 * consumers read it only on their slow paths
 * (a non-blocking peek that found nothing, and the liveness checks while
 * waiting), to notice a corrupt head; on SPSC/broadcast it may lag a
 * consumer's position by one record. */
#ifndef SHMRT_RING_LAYOUT_H
#define SHMRT_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/ring.h"

#define RING_MAGIC UINT64_C(0x31474e4952544d53) /* "SMTRING1" */
#define RING_VERSION 3 /* 3: consumers poll the record header (REC_EMPTY) */
#define RING_LINE 64
#define RING_ALIGN 16 /* record alignment, and the header's size */
#define RING_MIN_CAPACITY ((uint64_t)4096)
/* Record sizes are 32-bit fields. */
#define RING_MAX_CAPACITY ((uint64_t)1 << 31)

/* ring_rec.state. Distinct magic values, so that a garbled header is seen
 * as such rather than taken for an empty one. */
enum ring_rec_state {
	REC_RESERVED = 0x56534552,  /* "RESV": claimed on MPSC, not yet committed */
	REC_COMMITTED = 0x54494d43, /* "CMIT" */
	REC_SKIP = 0x50494b53,      /* "SKIP": padding to the end of the data */
	REC_EMPTY = 0x54504d45,     /* "EMPT": the terminator, where the next record goes */
};

/* Room a producer keeps after each record for the terminator. */
#define RING_TERM RING_ALIGN

/* Every field is atomic: a peer may write it while we read it, and we read
 * each one once into a local before checking it. */
struct ring_rec {
	_Atomic uint32_t state;
	_Atomic uint32_t len;  /* payload bytes, set by commit */
	_Atomic uint32_t size; /* bytes taken in the data, header included */
	_Atomic int32_t pid;   /* the process that reserved it (-EOWNERDEAD) */
};
_Static_assert(sizeof(struct ring_rec) == RING_ALIGN, "record header is one alignment unit");

/* A futex word and the number of threads sleeping on it. The waker makes
 * the wake system call only when sleepers != 0 (see ring_wake). */
struct ring_waitq {
	alignas(RING_LINE) _Atomic uint32_t seq;
	_Atomic uint32_t sleepers;
};

/* Registration words hold a packed process identity, start time << 22 |
 * pid (pid_max is at most 2^22 on Linux; 42 bits of clock ticks since boot
 * last a thousand years), so that one atomic word names a process exactly.
 * 0 is a free slot; RING_PEER_CLOSED a consumer that was registered and is
 * gone. */
#define RING_PID_BITS 22
#define RING_PID_MASK ((UINT64_C(1) << RING_PID_BITS) - 1)
#define RING_PEER_CLOSED UINT64_MAX

struct ring_reader {
	alignas(RING_LINE) _Atomic uint64_t pos; /* next record to read */
	_Atomic uint64_t id;                      /* who reads: 0, id, CLOSED */
};

struct ring_shared {
	/* Immutable after format. */
	alignas(RING_LINE) uint64_t magic;
	uint32_t version;
	uint32_t kind;
	uint64_t capacity;
	uint32_t n_readers;
	uint32_t n_producers; /* MPSC: registry words, past producers[] after the readers */

	/* Producer side. lock (MPSC only): 0, or the packed id of the process
	 * whose thread is claiming space (see ring_produce.c). */
	alignas(RING_LINE) _Atomic uint64_t head;
	_Atomic uint64_t lock;

	struct ring_waitq data_wq;
	struct ring_waitq space_wq;

	/* Producers that ever registered (so that a consumer opening first
	 * waits rather than taking "none alive" for "all gone"), then one
	 * word per live producer process handle. */
	alignas(RING_LINE) _Atomic uint64_t producers_ever;
	_Atomic uint64_t producers[SHMRT_RING_MAX_PRODUCERS];

	/* n_readers, then (MPSC) the producer words past
	 * SHMRT_RING_MAX_PRODUCERS, then the data */
	struct ring_reader readers[];
};

/* The process-local handle. Fields marked "owner" belong to the one thread
 * that uses an SPSC/broadcast producer handle or a consumer handle; an MPSC
 * producer handle may be shared by threads and is read-only after open. */
struct shmrt_ring {
	struct ring_shared *sh;
	unsigned char *data;
	uint64_t cap; /* copied from the header at open: never re-read */
	enum shmrt_ring_kind kind;
	enum shmrt_ring_role role;
	unsigned n_readers;
	unsigned n_producers; /* registry words: 1, or an MPSC ring's (copied at open) */
	unsigned reader; /* consumer: its index in sh->readers */
	unsigned slot;   /* producer: its index in sh->producers */
	uint64_t id;     /* this process, packed */
	int32_t pid;
	_Atomic int64_t spin_ns;
	_Atomic int64_t next_check; /* polls with timeout 0: next liveness check */

	/* SPSC / broadcast producer (owner). */
	uint64_t head;          /* next write position; published at commit */
	uint64_t limit;         /* head may reach this without re-reading readers */
	unsigned char *pending; /* reserved payload, NULL when none */
	uint64_t pending_room;  /* bytes reserved at pending */
	uint64_t wait_need;     /* bytes a waiting producer needs at head */

	/* Consumer (owner). */
	uint64_t tail;      /* our position, mirrored in sh->readers[reader].pos */
	uint64_t head_seen; /* MPSC: records below this need no new load of head */
	uint32_t cur_size;  /* size of the record peek returned, 0 if none */
	uint32_t wait_size; /* MPSC: size of the uncommitted record at tail... */
	int32_t wait_pid;   /* ...and the process that reserved it, 0 if none */
	uint32_t dead_size; /* that size once peek said -EOWNERDEAD: release skips it */
};

/* Ring sizes. */
static inline uint64_t ring_rec_size(uint64_t len)
{
	return (sizeof(struct ring_rec) + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

static inline struct ring_rec *ring_rec_at(const struct shmrt_ring *r, uint64_t pos)
{
	return (struct ring_rec *)(r->data + (pos & (r->cap - 1)));
}


/* The sleep/wake handshake (Dekker's pattern). The publishing side stores
 * its index (head, a record's state, a consumer position) with seq_cst and
 * then loads `sleepers` with seq_cst; a sleeper increments `sleepers` with
 * seq_cst and then loads the index with seq_cst (its poll) before it calls
 * futex_wait. In the single total order of seq_cst operations one of the
 * two comes first: either the sleeper's poll sees the new index and does
 * not sleep, or the publisher sees sleepers != 0 and wakes it; never
 * neither. seq_cst operations on the variables themselves rather than
 * seq_cst fences: same cost on x86 (xchg vs mfence) and ThreadSanitizer
 * models them (it does not model fences; gcc 12 warns with -Wtsan).
 * Bumping seq (release, paired with the sleeper's acquire load of it)
 * makes a futex_wait that has not yet started return at once. */
void ring_wake_slow(struct ring_waitq *q);

static inline void ring_wake(struct ring_waitq *q)
{
	if (atomic_load_explicit(&q->sleepers, memory_order_seq_cst) != 0)
		ring_wake_slow(q);
}

/* How often a waiter checks its peers' liveness, and its longest single
 * futex sleep: a death is noticed within this (the API promises a second). */
#define RING_CHECK_NS (50 * 1000 * 1000LL)

/* One attempt at what a call waits for: 0 done, -EAGAIN not yet, or an
 * error to return. */
typedef int (*ring_poll_fn)(struct shmrt_ring *r, void *arg);
/* Called every RING_CHECK_NS while waiting: 0 while the other side may
 * still act, else the error to return (-EPIPE, -EOWNERDEAD). */
typedef int (*ring_peers_fn)(struct shmrt_ring *r);

/* Called after poll returned -EAGAIN: repeats it until it stops doing so,
 * spinning for r's spin time, then sleeping on q in slices, checking peers
 * between slices. timeout_ns as in ring.h; with 0 it only checks peers
 * (at most once per RING_CHECK_NS) and returns -EAGAIN. */
int ring_wait(struct shmrt_ring *r, struct ring_waitq *q, ring_poll_fn poll, void *arg,
	      ring_peers_fn peers, int64_t timeout_ns);

/* The most producer processes an MPSC ring may register. */
#define RING_MAX_PRODUCERS_ALL 4096

/* Producer registry word i of r (i < r->n_producers). */
static inline _Atomic uint64_t *ring_producer_word(const struct shmrt_ring *r, unsigned i)
{
	return i < SHMRT_RING_MAX_PRODUCERS ? &r->sh->producers[i]
					     : (_Atomic uint64_t *)&r->sh->readers[r->n_readers] + (i - SHMRT_RING_MAX_PRODUCERS);
}

/* shmrt_ring_footprint and _format with an MPSC ring's producer count
 * (SHMRT_RING_MAX_PRODUCERS .. RING_MAX_PRODUCERS_ALL; 1 for the others):
 * the runtime's submit ring has one per client slot. */
size_t ring_footprint_n(enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers, unsigned n_producers);
int ring_format_n(void *mem, size_t mem_size, enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers,
		  unsigned n_producers);

/* ring_format_n keeping the producer registry (an MPSC ring's clients stay
 * registered), read where this layout puts it whatever the header says. */
int ring_reformat_n(void *mem, size_t mem_size, enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers,
		    unsigned n_producers);

/* Frees a handle without touching its ring (whose memory is lost). */
void ring_forget(struct shmrt_ring *r);

/* Liveness checks used by the wait loops (ring_wait.c). */
uint64_t ring_peer_pack(int32_t pid, uint64_t start_time);
bool ring_peer_alive(uint64_t id);
int ring_producers_gone(struct shmrt_ring *r); /* consumer side */
int ring_check_head(struct shmrt_ring *r);     /* consumer side: -EBADMSG if corrupt */
/* ring_check_head, and an SPSC ring's corrupt head written back as our
 * position (ring_resync, ring_repair). */
int ring_check_head_spsc(struct shmrt_ring *r);
/* Consumer side, after -EBADMSG at its position: goes on from head (the
 * producer writes every record after it afresh), dropping what lies
 * between. Returns the bytes dropped (0: head is at our position, or lags
 * it), or -EBADMSG if head is corrupt too (ring_check_head_spsc). */
int ring_resync(struct shmrt_ring *r);

/* Consumer side: writes back what the consumer alone knows, the header
 * (immutable since format) as it was at open and its reader's id and
 * position, and an SPSC ring's head when corrupt (ring_check_head_spsc). Returns
 * 1 if any had been rewritten (a message names the first), else 0. */
int ring_repair(struct shmrt_ring *r);
int ring_consumers_gone(struct shmrt_ring *r); /* producer side */

/* -EBADMSG with a message naming what was found corrupt. */
int ring_corrupt(const struct shmrt_ring *r, const char *what, uint64_t value);

#endif
