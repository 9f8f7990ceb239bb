/* The IPC benchmark's peers: one transport per file (bench/ipc_*.c) behind
 * a table of functions, driven by bench/ipc.c.
 *
 * A transport carries fixed-size records both ways between two processes:
 * A (the parent, which drives and times) and B (a forked child that
 * answers). Records are at least IPC_MIN_RECORD bytes; their first byte is
 * the harness's message type. */
#ifndef SHMRT_BENCH_IPC_H
#define SHMRT_BENCH_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ipc_side { IPC_A = 0, IPC_B = 1 };

#define IPC_MIN_RECORD 64

/* How long a receive waits before it gives up (a peer that died or hangs),
 * where the transport can tell. */
#define IPC_TIMEOUT_NS (10 * (int64_t)1000000000)

struct ipc_transport {
	const char *name;
	/* False for transports that carry no payload (the floor): no stream. */
	bool stream;
	/* Before fork: a channel for records of `bytes` bytes, both ways. */
	int (*setup)(void **chan, size_t bytes);
	/* After fork, in each process: take this side's ends. */
	int (*attach)(void *chan, enum ipc_side side);
	/* One record of exactly `bytes` bytes; 0 or -errno. */
	int (*send)(void *chan, const void *buf, size_t bytes);
	int (*recv)(void *chan, void *buf, size_t bytes);
	/* In each process after its last record. */
	void (*detach)(void *chan);
	/* In A, after B has exited. */
	void (*teardown)(void *chan);
};

extern const struct ipc_transport ipc_floor;
extern const struct ipc_transport ipc_shmrt_spin;
extern const struct ipc_transport ipc_shmrt_futex;
/* The ring with its default spin-then-sleep: for the idle-consumer figure. */
extern const struct ipc_transport ipc_shmrt_default;
extern const struct ipc_transport ipc_pipe;
extern const struct ipc_transport ipc_uds;
extern const struct ipc_transport ipc_zmq;

/* One row of results; NAN where a figure does not apply (the floor has no
 * MB/s, memcpy no latency). */
struct ipc_row {
	const char *transport;
	size_t bytes;
	double p50_ns, p99_ns, mb_per_s;
};

/* What a run measured, for bench/ipc_report.c. */
struct ipc_report {
	const struct ipc_row *rows; /* grouped by record size */
	int n_rows;
	int cpu_a, cpu_b;
	bool quick;
	int rounds; /* turns each (transport, size) was measured in */
	double idle_cpu_percent, idle_window_s;
	double memcpy_dram_mb_per_s; /* ipc_memcpy_dram, 1 MiB records */
};

/* The table with ratios and issue 2's targets, on stdout. */
void ipc_print_table(const struct ipc_report *r);
/* One JSON document on stdout. 0 or -errno. */
int ipc_print_json(const struct ipc_report *r);
/* The rows as CSV. 0 or -errno. */
int ipc_write_csv(const struct ipc_report *r, const char *path);

/* The data capacity of the rings the shmrt transports use for records of
 * `bytes` bytes (bench/ipc_ring.c). */
size_t ipc_ring_capacity(size_t bytes);

/* The throughput limit of a transport that copies: single-thread memcpy
 * bandwidth in MB/s for records of sizes[i] bytes, each copied from one
 * record-sized buffer into the next slot of a buffer the size of the
 * shmrt transports' ring (ipc_ring_capacity): the producer's own copy,
 * alone, on the same working set. About budget_ns each. 0 or -errno. */
int ipc_memcpy_bandwidth(const size_t *sizes, int n_sizes, int64_t budget_ns, double *mb_per_s);

/* For context: memcpy of `bytes`-byte records between buffers twice the
 * last-level cache, so that every copy goes to memory. 0 or -errno. */
int ipc_memcpy_dram(size_t bytes, int64_t budget_ns, double *mb_per_s);

#endif
