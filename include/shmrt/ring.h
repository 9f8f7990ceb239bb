/* shmrt — ring buffers of variable-length records in shared memory.
 *
 * Three kinds share one record format and one API:
 *   SPSC       one producer, one consumer;
 *   MPSC       many producers (threads or processes), one consumer;
 *   BROADCAST  one producer, n_readers consumers; every reader sees every
 *              record and the producer waits for the slowest reader.
 *
 * A ring lives in caller-provided memory (a region of the arena): it is
 * formatted once, then each process opens its own handle on it. Records
 * never wrap: one that does not fit before the end of the buffer starts
 * again at offset 0. Every length and index read from shared memory is
 * bounds-checked, so a corrupt or hostile peer yields -EBADMSG, never a read
 * outside the ring.
 *
 * Waiting spins for a while (shmrt_ring_set_spin) and then sleeps on a
 * futex; the other side makes the wake system call only when somebody
 * sleeps. While it waits, a call checks that the processes on the other
 * side are alive and returns -EPIPE when they are all gone (or -EOWNERDEAD
 * when the record it waits on was reserved by a producer that died).
 *
 * Timeouts are in nanoseconds (SHMRT_WAIT_FOREVER, or 0 to try once and get
 * -EAGAIN, without a message: it is a poll's normal result). Errors:
 * -EMSGSIZE for a record larger than the ring can ever hold, -ETIMEDOUT,
 * -EPIPE, -EOWNERDEAD, -EBADMSG, -EINVAL, -EBUSY (open: the slot is taken;
 * an MPSC reserve: the claim lock stayed held by a live process, a stopped
 * or hostile producer, past the timeout or 10 ms, whichever is longer).
 *
 * Threads: an MPSC producer handle may be shared by threads; any other
 * handle belongs to one thread at a time. Handles do not survive fork():
 * open them in the process that uses them. */
#ifndef SHMRT_RING_H
#define SHMRT_RING_H

#include "common.h"

enum shmrt_ring_kind {
	SHMRT_RING_SPSC = 1,
	SHMRT_RING_MPSC = 2,
	SHMRT_RING_BROADCAST = 3,
};

enum shmrt_ring_role {
	SHMRT_RING_PRODUCER = 1,
	SHMRT_RING_CONSUMER = 2,
};

/* At most this many broadcast readers, and this many live producer
 * processes registered on an MPSC ring (threads of one process share one). */
#define SHMRT_RING_MAX_READERS 64
#define SHMRT_RING_MAX_PRODUCERS 64

struct shmrt_ring; /* a process-local handle */

/* Bytes of shared memory a ring needs for `capacity` bytes of records
 * (capacity: a power of two, at least 4 KiB). 0 if the arguments are bad. */
SHMRT_API size_t shmrt_ring_footprint(enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers);

/* Lays out an empty ring in mem[0 .. mem_size), mem 64-byte aligned.
 * n_readers: 1 except for BROADCAST. Call once, before anyone opens it. */
SHMRT_API int shmrt_ring_format(void *mem, size_t mem_size, enum shmrt_ring_kind kind,
				size_t capacity, unsigned n_readers);

/* Opens a handle on a formatted ring, validating its header against
 * mem_size (-EBADMSG when it is not a valid ring). reader: the broadcast
 * reader index (0 .. n_readers-1), else 0. Registers this process as a live
 * producer or consumer: one consumer per reader index, one producer on
 * SPSC and broadcast rings (-EBUSY while the holder lives; a new one
 * takes over from a dead or closed one where it stopped). */
SHMRT_API int shmrt_ring_open(struct shmrt_ring **out, void *mem, size_t mem_size,
			      enum shmrt_ring_role role, unsigned reader);

/* Unregisters and frees the handle. A consumer that closes counts as gone
 * for producers waiting on it, as does one that dies. */
SHMRT_API void shmrt_ring_close(struct shmrt_ring *r);

/* The largest record this ring accepts: capacity - 32 (a record's 16-byte
 * header, and the 16-byte header of the next one, which a record leaves room
 * for). */
SHMRT_API size_t shmrt_ring_max_record(const struct shmrt_ring *r);

/* How long a waiting call spins before it sleeps on the futex, in ns
 * (default 50 us). 0 sleeps at once; SHMRT_WAIT_FOREVER never sleeps. */
SHMRT_API void shmrt_ring_set_spin(struct shmrt_ring *r, int64_t spin_ns);

/* Producer, zero copy: reserve room for len bytes, write them at *buf, then
 * commit. Several threads may share one MPSC producer handle. commit's len
 * may be smaller than the reserved one. */
SHMRT_API int shmrt_ring_reserve(struct shmrt_ring *r, size_t len, void **buf, int64_t timeout_ns);
SHMRT_API int shmrt_ring_commit(struct shmrt_ring *r, void *buf, size_t len);

/* Consumer, zero copy: peek at the oldest unread record (it stays valid
 * until release; peek again returns it again), then release it. After
 * -EOWNERDEAD (its producer died between reserve and commit), release
 * discards that record and the ring goes on. -EPIPE comes only once the
 * records the gone producers left are read. */
SHMRT_API int shmrt_ring_peek(struct shmrt_ring *r, const void **buf, size_t *len, int64_t timeout_ns);
SHMRT_API int shmrt_ring_release(struct shmrt_ring *r);

/* Copying helpers. recv: -EMSGSIZE (record kept, *len set to its size) when
 * cap is too small. */
SHMRT_API int shmrt_ring_send(struct shmrt_ring *r, const void *data, size_t len, int64_t timeout_ns);
SHMRT_API int shmrt_ring_recv(struct shmrt_ring *r, void *buf, size_t cap, size_t *len, int64_t timeout_ns);

/* Bytes currently queued (for the slowest reader of a broadcast ring), and
 * the capacity; for `shmrt stat`. */
SHMRT_API int shmrt_ring_occupancy(const struct shmrt_ring *r, size_t *used, size_t *capacity);

#endif
